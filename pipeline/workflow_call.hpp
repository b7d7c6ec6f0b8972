#pragma once
// Reusable workflows, as GitHub defines them (docs/reusable-workflows.md):
//
//   jobs:
//     test:
//       strategy: {matrix: {os: [linux, bsd]}}
//       uses: ./.github/workflows/test.yml        # or OWNER/REPO/.github/workflows/X.yml@REF
//       with: {os: '${{ matrix.os }}', fast: true}
//       secrets: inherit                          # or {token: '${{ secrets.TOKEN }}'}
//
// A calling job runs no steps: every instance of it (one per matrix
// combination) runs the jobs of the called workflow, named "test (linux) /
// build", with the inputs (typed as `on.workflow_call.inputs` declares them)
// and secrets it passes; `needs.test.outputs` of later jobs are the called
// workflow's `on.workflow_call.outputs`. Called workflows may call others,
// ten levels of workflows deep in all (GitHub's limit); a cycle is an error.
//
// Pure: reading the files is the loader's job (the runner's), so all of this
// is tested without I/O.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/json.hpp"
#include "pipeline/action.hpp"
#include "pipeline/expr.hpp"
#include "pipeline/model.hpp"

namespace lockstep::pipeline {

// GitHub's limits (docs.github.com, "Reuse workflows"): ten levels of
// workflows - the top-level caller and up to nine levels of reusable
// workflows - and at most 50 unique reusable workflows in one run.
inline constexpr int kMaxWorkflowLevels = 10;
inline constexpr size_t kMaxUniqueWorkflows = 50;

// A reusable workflow as read for a call.
struct CalledWorkflow {
  Workflow workflow;  // parsed; workflow.file is name(), for messages
  // Where it was read: `repository` ("owner/repo") at `ref`, resolved to
  // `commit`, for OWNER/REPO/.github/workflows/X.yml@REF and for local
  // references made inside such a workflow. An empty repository is the
  // run's own, at `commit` (empty: a file outside any repository).
  std::string repository, ref, commit;
  std::string path;    // in its repository: ".github/workflows/build.yml"
  std::string digest;  // "sha256:..." of the file's bytes

  // "owner/repo/.github/workflows/build.yml@v1" or "./.github/workflows/build.yml".
  std::string name() const;
  // The same file at the same commit is the same workflow (cycles, reuse).
  std::string identity() const;
};

// Reads what `ref` names for a call made in `from` (null: the run's own
// workflow). A local reference (./.github/workflows/X.yml) is read where
// `from` was read: its repository at its commit. Errors are one line
// without a location; load_call_graph() adds the calling job's.
using WorkflowLoader = std::function<Result<std::shared_ptr<const CalledWorkflow>>(
    const CalledWorkflow* from, const ActionRef& ref)>;

// Every reusable workflow a run may call, from the calling jobs down.
struct CallGraph {
  // Each calling job (of the run's workflow or of a called one) -> what it calls.
  std::map<const Job*, std::shared_ptr<const CalledWorkflow>> callee;
  std::vector<std::shared_ptr<const CalledWorkflow>> workflows;  // distinct, in load order

  // What `job` calls; null when it runs steps.
  std::shared_ptr<const CalledWorkflow> of(const Job& job) const;
};

// Loads every workflow `root` calls, recursively, and checks each call
// before anything runs: the callee declares `on.workflow_call`; every
// `with:` input and every passed secret is declared; required inputs and
// (unless inherited) required secrets are passed; literal values have the
// input's type; `with:` and `secrets:` read only the contexts GitHub gives
// them; the callee's job graph is valid; no more than kMaxWorkflowLevels
// levels; no cycle ("reusable workflow cycle: a.yml -> b.yml -> a.yml").
// Errors are located at the calling job in its workflow. `root_identity`
// (CalledWorkflow::identity() form, may be empty) lets a call back to the
// run's own workflow count as a cycle. More than kMaxUniqueWorkflows
// workflows is a warning: GitHub refuses, lockstep runs them.
Result<CallGraph> load_call_graph(const Workflow& root, const WorkflowLoader& load,
                                  const std::string& root_identity = "",
                                  std::vector<std::string>* warnings = nullptr);

// One call of a reusable workflow: a calling job instance and what it passed.
struct CallScope {
  std::shared_ptr<const CallScope> parent;  // null: called from the run's own workflow
  const Job* caller = nullptr;              // the calling job, in the parent's workflow
  std::string caller_name;  // its instance's display name, without the parent's prefix
  std::shared_ptr<const CalledWorkflow> called;
  Value inputs = Value::object();   // the called jobs' `inputs` context
  Value secrets = Value::object();  // their `secrets` context
  // False in a preview when `with:` reads what only the run knows (needs):
  // then `inputs` holds only what is known, and expressions that read
  // inputs are not evaluated.
  bool inputs_known = true;

  const Workflow& workflow() const { return called->workflow; }
  // "build (linux) / ", "outer / build (linux) / " for nested calls.
  std::string prefix() const;
  // Levels of workflows down to this one: 2 for a workflow the run's own calls.
  int levels() const;
  // The calling jobs' ids, outermost first.
  std::vector<std::string> caller_ids() const;
};

// The workflow an instance's job belongs to: its call's, else `root`.
const Workflow& workflow_of(const JobInstance& instance, const Workflow& root);

// A stand-in: an instance whose matrix is only known at run time.
inline bool is_stand_in(const JobInstance& instance) {
  return instance.matrix.is_null();
}

// The inputs context of a call of `callee` by `caller` (a job of
// `caller_wf`); `ctx` is the calling instance's context (github, inputs,
// vars, needs, strategy, matrix). A `with:` value keeps the type its YAML
// or expression gives it; a boolean or number input takes only that type
// ("input 'fast' of ./.github/workflows/t.yml expects a boolean, got 'yes'
// (a string)"), a string input takes any scalar as its text. An input not
// given gets its default (evaluated over github, inputs and vars), else
// false, 0 or "". Errors are located at the value in `caller_wf`.
Result<Value> bind_inputs(const Workflow& caller_wf, const Job& caller,
                          const CalledWorkflow& callee, const EvalContext& ctx);

// The secrets context of the call: all of ctx's secrets for `secrets:
// inherit` (a required secret among them: an error naming it), else the
// mapping evaluated. Names are the callee's spelling.
Result<Value> bind_secrets(const Workflow& caller_wf, const Job& caller,
                           const CalledWorkflow& callee, const EvalContext& ctx);

// `on.workflow_call.outputs` evaluated over `jobs` (job id -> {result,
// outputs}); ctx gives github, inputs and vars.
Result<std::map<std::string, std::string>> call_outputs(const CalledWorkflow& callee,
                                                        const Value& jobs, const EvalContext& ctx);

// The jobs of a call as instances (display names prefixed with the call's,
// scope set), jobs in declaration order, matrices expanded with the call's
// inputs; `base` gives github and vars. A job whose matrix reads needs (or,
// in a preview, inputs not known yet) is a stand-in.
Result<std::vector<JobInstance>> expand_call(const std::shared_ptr<const CallScope>& scope,
                                             const EvalContext& base,
                                             std::vector<std::string>* warnings = nullptr);

// The scope of a call made by `instance` (a calling job's instance), its
// inputs bound in `ctx` (see bind_inputs) unless `with:` reads needs while
// `ctx` has none (a preview: inputs_known false). Secrets are not bound.
Result<std::shared_ptr<CallScope>> make_call_scope(const JobInstance& instance,
                                                   const Workflow& root, const CallGraph& graph,
                                                   const EvalContext& ctx);

// Every job instance a run starts as far as it is known before the run
// (lock, --frozen, --list): each calling instance replaced by the jobs it
// calls, recursively. `base` gives github, inputs and vars.
Result<std::vector<JobInstance>> preview_instances(const std::vector<JobInstance>& top,
                                                   const Workflow& root, const CallGraph& graph,
                                                   const EvalContext& base,
                                                   std::vector<std::string>* warnings = nullptr);

// The called workflow a job came from, for its environment hash and record:
// {workflow, repository, ref, commit, path, digest, callers, inputs}.
Json call_document(const CallScope& scope);

}  // namespace lockstep::pipeline
