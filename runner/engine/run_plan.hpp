#pragma once
// The jobs of one run as the scheduler sees them (runner/engine/scheduler.hpp):
// one entry per job instance, in plan order, and stand-ins the scheduler
// expands once their own needs ended, while unrelated jobs keep running:
//
// - a job whose matrix comes from needs outputs becomes its instances;
// - each instance of a calling job (docs/reusable-workflows.md) evaluates its
//   if:, binds the inputs and secrets it passes, and becomes the jobs of the
//   workflow it calls (which may hold stand-ins again).
//
// What needs a stand-in waits for everything it became. `needs` of a called
// job names jobs of its own call; `needs.<calling job>` of a later job is
// the call's result and outputs. Thread-safe: the scheduler's callbacks come
// from its pool.
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/json.hpp"
#include "pipeline/expr.hpp"
#include "pipeline/model.hpp"
#include "pipeline/workflow_call.hpp"
#include "runner/engine/job.hpp"
#include "runner/engine/output.hpp"
#include "runner/engine/scheduler.hpp"

namespace lockstep::runner {

class ActionSources;

// --matrix K=V: every pair matches the instance's matrix value (as text).
bool matrix_matches(const pipeline::OrderedValue& m,
                    const std::vector<std::pair<std::string, std::string>>& filter);

class RunPlan {
 public:
  struct Context {
    const pipeline::Workflow* workflow = nullptr;  // the run's own
    const pipeline::CallGraph* calls = nullptr;
    pipeline::EvalContext base;                                      // github, inputs, vars
    pipeline::Value secrets = pipeline::Value::object();             // the run's (--secret)
    std::vector<std::string> jobs;                                   // --job
    std::vector<std::pair<std::string, std::string>> matrix_filter;  // --matrix
    // --plan: the one cell to run (an empty object: every cell).
    std::optional<Json> matrix_exact;
    Masker* masker = nullptr;  // secrets a call passes are masked
    Console* console = nullptr;
    const ActionSources* actions = nullptr;  // what the workflows' repositories pinned
    // Jobs of the run's own workflow that ran elsewhere (--needs): what
    // `needs` sees of them. They are not in the plan.
    std::map<std::string, JobReport> given_needs;
  };

  // `plan`: the selected instances of the run's own jobs, stand-ins included.
  RunPlan(Context ctx, std::vector<pipeline::JobInstance> plan);

  // The schedule to start with (one entry per plan instance).
  std::vector<ScheduledJob> schedule();

  // The scheduler's ExpandFn.
  Expansion expand(size_t i, const std::vector<JobOutcome>& done);

  // What a job needs to start (the scheduler's RunJobFn, under the plan's
  // lock): its instance and report row (they stay where they are), its
  // position among its job's instances, and the reports of everything it
  // needs.
  struct Start {
    const pipeline::JobInstance* instance = nullptr;
    JobReport* report = nullptr;
    MatrixPosition position;
    std::vector<const JobReport*> needed;
  };
  Start start(size_t i, const std::vector<JobOutcome>& done);

  // Every instance's report row in plan order, a stand-in's instances in its
  // place (a call's jobs in the call's place); jobs that never started
  // (skipped, cancelled) too. Called once, after the schedule ended.
  std::vector<JobReport> reports(const std::vector<JobOutcome>& outcomes);

 private:
  using Key = std::pair<const pipeline::CallScope*, std::string>;  // (call, job id)
  static Key key_of(const pipeline::JobInstance& inst) { return {inst.scope.get(), inst.job->id}; }
  static bool is_call(const pipeline::JobInstance& inst) {
    return !pipeline::is_stand_in(inst) && inst.job->call.has_value();
  }
  size_t add(pipeline::JobInstance inst);
  ScheduledJob entry(size_t i) const;
  const JobReport* report_of(size_t d, const std::vector<JobOutcome>& outcomes);
  const JobReport* call_report(size_t d, const std::vector<JobOutcome>& outcomes);
  std::vector<const JobReport*> needed(const pipeline::JobInstance& inst,
                                       const std::vector<JobOutcome>& outcomes);
  Expansion expand_matrix(size_t i, const std::vector<const JobReport*>& needed,
                          pipeline::EvalContext ctx);
  Expansion expand_call(size_t i, const std::vector<const JobReport*>& needed,
                        pipeline::EvalContext ctx);
  void describe(const pipeline::JobInstance& inst, JobReport& report) const;

  Context ctx_;
  std::mutex mu_;
  // Schedule index == index here: deques, so the references running jobs
  // hold stay valid as expansions append.
  std::deque<pipeline::JobInstance> instances_;
  std::deque<JobReport> reports_;
  std::deque<MatrixPosition> positions_;
  std::map<Key, std::vector<size_t>> by_job_;     // (call, job id) -> its instances
  std::map<Key, size_t> total_, seen_;            // matrix positions per (call, job id)
  std::map<size_t, std::vector<size_t>> became_;  // stand-in -> the instances it became
  std::map<size_t, std::shared_ptr<const pipeline::CallScope>> call_of_;  // call -> its scope
  std::deque<JobReport> call_reports_;  // what `needs` sees of calls (kept for its pointers)
};

}  // namespace lockstep::runner
