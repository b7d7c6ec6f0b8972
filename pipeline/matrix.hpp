#pragma once
// Matrix expansion with GitHub's semantics, and job x matrix expansion.
//
// 1. The axes (every key but include/exclude) give the cartesian product, in
//    declaration order, the first axis varying slowest.
// 2. exclude removes every combination that matches all of an entry's
//    key/values (a partial match suffices).
// 3. include, entry by entry: the entry's keys are added to every original
//    combination whose original (axis) values the entry does not change;
//    values added by an earlier include may be overwritten. An entry that
//    fits no original combination becomes a combination of its own (its axis
//    keys first), after all the others.
// Values match as GitHub's == does (strings ignoring case, '14' == 14), leaf
// by leaf for objects and arrays.
// A matrix (or an axis, include or exclude) may be a ${{ }} expression such
// as fromJSON(needs.setup.outputs.matrix); it is evaluated first. GitHub caps
// a matrix at 256 jobs; lockstep warns above that and runs them all, up to
// 65536 (the product of the axes plus the includes; more is an error, found
// before any combination is made).
#include <string>
#include <vector>

#include "common/error.hpp"
#include "pipeline/expr.hpp"
#include "pipeline/model.hpp"

namespace lockstep::pipeline {

// The combinations of `matrix` (as Strategy::matrix holds it). A null matrix
// gives one empty combination. Errors are kWorkflow without a location
// ("matrix axis 'os' has no values"); expand_job adds it. `warnings`, when
// given, receives the above-256 warning.
Result<std::vector<OrderedValue>> expand_matrix(const OrderedValue& matrix, const EvalContext& ctx,
                                                std::vector<std::string>* warnings = nullptr);

// "build (gcc, Release)": the job's name (or id) and the scalar leaves of
// `name_values` in order (nested objects and arrays flattened, nulls and
// empty strings left out), as GitHub names matrix jobs. expand_job passes the
// axis values of a product combination (what an include adds is not in the
// name) or all values of a combination an include made. A name holding an
// expression is instead evaluated with `combination` as the matrix context,
// and gets no suffix. `ctx` gives the other contexts.
Result<std::string> display_name(const Job& job, const OrderedValue& combination,
                                 const OrderedValue& name_values, const EvalContext& ctx);
// The same, named by all values of the combination.
Result<std::string> display_name(const Job& job, const OrderedValue& combination,
                                 const EvalContext& ctx);

// Refuses a matrix.KEY used in any of the job's strings (Job::expressions)
// that no combination defines: "undefined matrix key 'compiler' (the matrix
// has: os, version)", located at the string.
Status check_matrix_keys(const Workflow& wf, const Job& job,
                         const std::vector<OrderedValue>& combinations);

// True when the job's matrix reads the `needs` context (a matrix made from
// another job's outputs): it can only be expanded after those jobs ran.
bool matrix_depends_on_needs(const Job& job);

// One job's instances; errors are located in wf.
Result<std::vector<JobInstance>> expand_job(const Workflow& wf, const Job& job,
                                            const EvalContext& ctx,
                                            std::vector<std::string>* warnings = nullptr);

// Every job's instances, jobs in declaration order. A matrix that depends on
// `needs` outputs can only be expanded once those jobs ran: the runner then
// calls expand_job with the needs context filled in.
Result<std::vector<JobInstance>> expand_jobs(const Workflow& wf, const EvalContext& ctx,
                                             std::vector<std::string>* warnings = nullptr);

}  // namespace lockstep::pipeline
