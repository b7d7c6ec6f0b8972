#include "runner/engine/scheduler.hpp"

#include <sys/sysinfo.h>
#include <unistd.h>

#include <condition_variable>
#include <memory>
#include <thread>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

namespace lockstep::runner {

JobResult worse(JobResult a, JobResult b) {
  auto rank = [](JobResult r) {
    switch (r) {
      case JobResult::kSkipped:
        return 0;
      case JobResult::kSuccess:
        return 1;
      case JobResult::kCancelled:
        return 2;
      case JobResult::kFailure:
        return 3;
    }
    return 3;
  };
  return rank(a) >= rank(b) ? a : b;
}

const char* to_string(JobResult r) {
  switch (r) {
    case JobResult::kSuccess:
      return "success";
    case JobResult::kFailure:
      return "failure";
    case JobResult::kCancelled:
      return "cancelled";
    case JobResult::kSkipped:
      return "skipped";
  }
  return "unknown";
}

void CancelToken::cancel() {
  std::function<void()> fn;
  {
    std::lock_guard lk(mu_);
    if (cancelled_.exchange(true)) return;
    fn = fn_;
  }
  if (fn) fn();
}

void CancelToken::on_cancel(std::function<void()> fn) {
  {
    std::lock_guard lk(mu_);
    if (!cancelled_.load()) {
      fn_ = std::move(fn);
      return;
    }
  }
  if (fn) fn();
}

Budget host_budget() {
  Budget b;
  long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  if (cpus < 1) cpus = 1;
  b.max_jobs = static_cast<size_t>(cpus);
  b.cpu_millis = static_cast<uint64_t>(cpus) * 1000;
  struct sysinfo si {};
  if (::sysinfo(&si) == 0) b.memory_bytes = static_cast<uint64_t>(si.totalram) * si.mem_unit;
  return b;
}

namespace {

// kExpanded: a stand-in whose jobs were added and have not all ended.
enum class State { kPending, kRunning, kExpanded, kDone };

class Run {
 public:
  Run(const std::vector<ScheduledJob>& jobs, const Budget& budget, const RunJobFn& fn,
      CancelToken& global, const ExpandFn& expand)
      : jobs_(jobs), budget_(budget), fn_(fn), expand_(expand), global_(global) {
    state_.assign(jobs_.size(), State::kPending);
    outcomes_.resize(jobs_.size());
    parent_.assign(jobs_.size(), kNone);
    open_children_.assign(jobs_.size(), 0);
    for (size_t i = 0; i < jobs_.size(); ++i) tokens_.push_back(std::make_unique<CancelToken>());
  }

  std::vector<JobOutcome> execute() {
    boost::asio::thread_pool pool(std::max<size_t>(1, budget_.max_jobs));
    global_.on_cancel([this] {
      std::lock_guard lk(mu_);
      cancel_all_locked("cancelled");
      cv_.notify_all();
    });
    {
      std::unique_lock lk(mu_);
      dispatch_locked(pool);
      cv_.wait(lk, [this] { return done_ == jobs_.size(); });
    }
    global_.on_cancel(nullptr);
    pool.join();
    return outcomes_;
  }

 private:
  static constexpr size_t kNone = static_cast<size_t>(-1);

  bool deps_done_locked(size_t i) const {
    for (size_t d : jobs_[i].needs)
      if (state_[d] != State::kDone) return false;
    return true;
  }

  uint64_t cpu_of(size_t i) const { return jobs_[i].cpu_millis ? jobs_[i].cpu_millis : 1000; }

  bool fits_locked(size_t i) const {
    if (running_ >= budget_.max_jobs) return false;
    if (running_ == 0) return true;  // a job bigger than the host still runs, alone
    if (budget_.cpu_millis && cpu_used_ + cpu_of(i) > budget_.cpu_millis) return false;
    if (budget_.memory_bytes && mem_used_ + jobs_[i].memory_bytes > budget_.memory_bytes)
      return false;
    return true;
  }

  bool group_allows_locked(size_t i) const {
    int limit = jobs_[i].max_parallel;
    if (limit <= 0) return true;
    int n = 0;
    for (size_t j = 0; j < jobs_.size(); ++j)
      if (state_[j] == State::kRunning && jobs_[j].group == jobs_[i].group) ++n;
    return n < limit;
  }

  static bool counts_as_success(const JobOutcome& o) { return o.counted() == JobResult::kSuccess; }

  void finish_locked(size_t i, JobOutcome o) {
    state_[i] = State::kDone;
    outcomes_[i] = std::move(o);
    ++done_;
    size_t p = parent_[i];
    if (p == kNone) return;
    // The stand-in's result: the first of its jobs that did not succeed.
    if (!counts_as_success(outcomes_[i]) && counts_as_success(outcomes_[p])) {
      outcomes_[p] = outcomes_[i];
      outcomes_[p].continue_on_error = false;
    }
    if (--open_children_[p] == 0) {
      JobOutcome whole = outcomes_[p];
      finish_locked(p, std::move(whole));
    }
  }

  void cancel_all_locked(const std::string& reason) {
    for (size_t j = 0; j < jobs_.size(); ++j) {
      if (state_[j] == State::kPending) {
        finish_locked(j, {JobResult::kCancelled, reason, {}, false});
      } else if (state_[j] == State::kRunning) {
        to_cancel_.push_back(j);
      }
    }
    for (size_t j : to_cancel_) tokens_[j]->cancel();
    to_cancel_.clear();
  }

  // fail-fast: a failed job cancels its group's other jobs, and every
  // stand-in it was expanded from whose job is fail-fast cancels its own
  // group's (a failure in a called workflow cancels the other calls of the
  // calling job's matrix, as on GitHub).
  void fail_fast_locked(size_t failed) {
    const std::string reason = "cancelled: a sibling job failed (fail-fast)";
    if (jobs_[failed].fail_fast) cancel_group_locked(failed, reason);
    for (size_t p = parent_[failed]; p != kNone; p = parent_[p])
      if (jobs_[p].fail_fast) cancel_group_locked(p, reason);
  }

  void cancel_group_locked(size_t member, const std::string& reason) {
    const std::string g = jobs_[member].group;
    for (size_t j = 0; j < jobs_.size(); ++j)
      if (j != member && jobs_[j].group == g) cancel_tree_locked(j, reason);
  }

  // Cancels a job, or everything a stand-in became that has not ended.
  void cancel_tree_locked(size_t j, const std::string& reason) {
    if (state_[j] == State::kPending) {
      finish_locked(j, {JobResult::kCancelled, reason, {}, false});
    } else if (state_[j] == State::kRunning) {
      tokens_[j]->cancel();
    } else if (state_[j] == State::kExpanded) {
      for (size_t c = 0; c < jobs_.size(); ++c)
        if (parent_[c] == j && state_[c] != State::kDone) cancel_tree_locked(c, reason);
    }
  }

  // A stand-in whose needs ended: its jobs join the schedule (or it ends).
  void expand_locked(size_t i) {
    Expansion e = expand_ ? expand_(i, jobs_.size(), outcomes_) : Expansion{{}, JobOutcome{}};
    if (e.outcome) {
      bool failed = e.outcome->failed();
      finish_locked(i, std::move(*e.outcome));
      if (failed) fail_fast_locked(i);
      return;
    }
    if (e.jobs.empty()) {
      finish_locked(i, {JobResult::kSuccess, "", {}, false});
      return;
    }
    state_[i] = State::kExpanded;
    outcomes_[i] = {JobResult::kSuccess, "", {}, false};
    open_children_[i] = e.jobs.size();
    for (auto& j : e.jobs) {
      jobs_.push_back(std::move(j));
      state_.push_back(State::kPending);
      outcomes_.emplace_back();
      parent_.push_back(i);
      open_children_.push_back(0);
      tokens_.push_back(std::make_unique<CancelToken>());
    }
  }

  // Starts every ready job that fits, in declaration order; expands ready
  // stand-ins (which may make more jobs ready, so it goes round again).
  void dispatch_locked(boost::asio::thread_pool& pool) {
    for (bool again = true; again;) {
      again = false;
      for (size_t i = 0; i < jobs_.size(); ++i) {
        if (state_[i] != State::kPending || !deps_done_locked(i)) continue;
        if (global_.cancelled()) {
          finish_locked(i, {JobResult::kCancelled, "cancelled", {}, false});
          continue;
        }
        if (jobs_[i].expands) {
          expand_locked(i);
          again = true;
          continue;
        }
        if (!group_allows_locked(i) || !fits_locked(i)) continue;
        state_[i] = State::kRunning;
        ++running_;
        cpu_used_ += cpu_of(i);
        mem_used_ += jobs_[i].memory_bytes;
        std::vector<JobOutcome> snapshot = outcomes_;
        // The token is taken here, under the lock: tokens_ grows as stand-ins expand.
        CancelToken* token = tokens_[i].get();
        boost::asio::post(pool, [this, i, token, snapshot = std::move(snapshot), &pool] {
          JobOutcome o = fn_(i, snapshot, *token);
          std::lock_guard lk(mu_);
          --running_;
          cpu_used_ -= cpu_of(i);
          mem_used_ -= jobs_[i].memory_bytes;
          if (state_[i] == State::kRunning) {
            bool failed = o.failed();
            finish_locked(i, std::move(o));
            if (failed) fail_fast_locked(i);
          }
          dispatch_locked(pool);
          cv_.notify_all();
        });
      }
    }
  }

  std::vector<ScheduledJob> jobs_;
  const Budget& budget_;
  const RunJobFn& fn_;
  const ExpandFn& expand_;
  CancelToken& global_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<State> state_;
  std::vector<JobOutcome> outcomes_;
  std::vector<size_t> parent_;         // the stand-in a job was expanded from, or kNone
  std::vector<size_t> open_children_;  // per stand-in: its jobs not yet ended
  std::vector<std::unique_ptr<CancelToken>> tokens_;
  std::vector<size_t> to_cancel_;
  size_t running_ = 0;
  size_t done_ = 0;
  uint64_t cpu_used_ = 0;
  uint64_t mem_used_ = 0;
};

}  // namespace

std::vector<JobOutcome> run_schedule(const std::vector<ScheduledJob>& jobs, const Budget& budget,
                                     const RunJobFn& run, CancelToken& global,
                                     const ExpandFn& expand) {
  if (jobs.empty()) return {};
  Run r(jobs, budget, run, global, expand);
  return r.execute();
}

}  // namespace lockstep::runner
