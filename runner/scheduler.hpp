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
};

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

// Runs everything; returns one outcome per job. Cancelling `global` (Ctrl-C)
// cancels running jobs and marks pending ones cancelled.
std::vector<JobOutcome> run_schedule(const std::vector<ScheduledJob>& jobs, const Budget& budget,
                                     const RunJobFn& run, CancelToken& global);

}  // namespace lockstep::runner
