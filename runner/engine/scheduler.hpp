#pragma once
// Runs a DAG of job instances in parallel within a budget: at most `max_jobs`
// at once and, summed over running jobs, at most the host's CPU and memory as
// reserved by each job's limits. Knows nothing of containers: the work of one
// job is a callback, so scheduling is tested with a fake in milliseconds.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace lockstep::runner {

enum class JobResult { kSuccess, kFailure, kCancelled, kSkipped };
const char* to_string(JobResult r);

struct JobOutcome {
  JobResult result = JobResult::kSkipped;
  std::string reason;  // why it failed, was cancelled or skipped
  std::chrono::milliseconds duration{0};
  // A failure that must not cancel siblings (job continue-on-error).
  bool continue_on_error = false;

  // Whether the job failed the run: a failure without continue-on-error.
  bool failed() const { return result == JobResult::kFailure && !continue_on_error; }
  // What it counts as for needs, the run and its exit code: a failure under
  // continue-on-error counts as a success.
  JobResult counted() const {
    return result == JobResult::kFailure && continue_on_error ? JobResult::kSuccess : result;
  }
};

// The one ranking of results, where several combine into one (a matrix's
// instances in needs.<id>.result, a called workflow's jobs, a run): failure
// over cancelled over success over skipped, as GitHub ranks them.
JobResult worse(JobResult a, JobResult b);
// The combined result of `outcomes` (skipped when there are none).
template <class Range, class Get>
JobResult combined(const Range& outcomes, Get get) {
  JobResult r = JobResult::kSkipped;
  for (const auto& x : outcomes) r = worse(r, get(x).counted());
  return r;
}

// Cancellation shared between the scheduler and a running job. The job
// registers what to do (stop its container); cancel() runs it once.
class CancelToken {
 public:
  void cancel();
  bool cancelled() const { return cancelled_.load(); }
  // Runs `fn` now if already cancelled, else on cancel(). Replaces any earlier one.
  void on_cancel(std::function<void()> fn);

 private:
  std::atomic<bool> cancelled_{false};
  std::mutex mu_;
  std::function<void()> fn_;
};

struct ScheduledJob {
  std::vector<size_t> needs;  // indices of jobs that must finish first
  std::string group;          // matrix siblings share a group (the job id)
  bool fail_fast = true;
  int max_parallel = 0;       // per group; 0 = unlimited
  uint64_t cpu_millis = 0;    // reserved while it runs (0 = one CPU)
  uint64_t memory_bytes = 0;  // reserved while it runs
  // A stand-in for jobs known only once its needs ran (a matrix made from
  // their outputs): when its needs are done, the ExpandFn is called instead
  // of the run function. It ends once every job it expanded into has ended;
  // what needs it waits for all of them. Reserves nothing.
  bool expands = false;
};
// fail-fast: a job that fails (without continue-on-error) cancels the
// pending and running jobs of its group when its own fail_fast is set, and
// for every stand-in it was expanded from whose fail_fast is set, that
// stand-in's group too (a stand-in's jobs are cancelled in its place).

// What a stand-in became: jobs appended to the schedule (their indices start
// at the `first` passed to the ExpandFn; `needs` index the whole schedule),
// or, when `outcome` is set, nothing to run and the stand-in ends with it.
struct Expansion {
  std::vector<ScheduledJob> jobs;
  std::optional<JobOutcome> outcome;
};

struct Budget {
  size_t max_jobs = 1;
  uint64_t cpu_millis = 0;    // 0 = unlimited
  uint64_t memory_bytes = 0;  // 0 = unlimited
};

// The host's budget: CPUs and memory available to this process.
Budget host_budget();

// Called on a pool thread once every job in `needs` has finished; `outcomes`
// holds their results (other entries may be in flight).
using RunJobFn = std::function<JobOutcome(size_t index, const std::vector<JobOutcome>& outcomes,
                                          CancelToken& token)>;

// Called, with the schedule's lock held, once every job a stand-in needs has
// ended; `first` is the index its first new job gets; `outcomes` as for
// RunJobFn. Must not block.
using ExpandFn =
    std::function<Expansion(size_t index, size_t first, const std::vector<JobOutcome>& outcomes)>;

// Runs everything; returns one outcome per job, the expanded ones included
// (after the given ones, in the order they were added). A stand-in ends with
// success when every job it became succeeded (or failed with
// continue-on-error), else with the first other result. Cancelling `global`
// (Ctrl-C) cancels running jobs and marks pending ones cancelled.
std::vector<JobOutcome> run_schedule(const std::vector<ScheduledJob>& jobs, const Budget& budget,
                                     const RunJobFn& run, CancelToken& global,
                                     const ExpandFn& expand = {});

}  // namespace lockstep::runner
