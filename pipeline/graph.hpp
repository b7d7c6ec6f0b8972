#pragma once
// The job graph from `needs`: validated (unknown ids, cycles) and ordered.
#include <cstddef>
#include <vector>

#include "common/error.hpp"
#include "pipeline/model.hpp"

namespace lockstep::pipeline {

// Jobs are named by their index in Workflow::jobs.
struct JobGraph {
  std::vector<std::vector<size_t>> needs;       // job -> the jobs it needs, as declared
  std::vector<std::vector<size_t>> dependents;  // job -> the jobs that need it, ascending
  // A topological order; among jobs that are ready together, declaration order.
  std::vector<size_t> order;
};

// Errors are located (kWorkflow): "job 'test' needs unknown job 'biuld' (did
// you mean 'build'?)" at the needs entry, "job 'a' needs itself", "job 'a'
// lists 'b' twice in needs", and "dependency cycle: a -> b -> a" at the needs
// of the cycle's first job (in declaration order).
Result<JobGraph> build_graph(const Workflow& wf);

// The job index for an id, or -1.
std::ptrdiff_t job_index(const Workflow& wf, std::string_view id);

}  // namespace lockstep::pipeline
