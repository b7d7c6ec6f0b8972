#include "runner/engine/scheduler.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

namespace lockstep::runner {
namespace {
using namespace std::chrono_literals;

// Blocks a fake job until the test opens it or the job is cancelled.
class Gate {
 public:
  void open() {
    std::lock_guard lk(mu_);
    open_ = true;
    cv_.notify_all();
  }
  // Returns false when cancelled first.
  bool wait(CancelToken& t) {
    t.on_cancel([this] {
      std::lock_guard lk(mu_);
      cv_.notify_all();
    });
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return open_ || t.cancelled(); });
    return !t.cancelled();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

JobOutcome ok() {
  return {JobResult::kSuccess, "", {}, false};
}

// Records the peak number of concurrently running fake jobs.
struct Peak {
  std::atomic<int> running{0}, peak{0};
  JobOutcome run() {
    int now = ++running;
    int p = peak.load();
    while (now > p && !peak.compare_exchange_weak(p, now)) {
    }
    std::this_thread::sleep_for(2ms);
    --running;
    return ok();
  }
};

TEST(JobOutcome, OneRankingFailureCancelledSuccessSkipped) {
  using R = JobResult;
  JobOutcome ok{R::kSuccess, "", {}, false}, failed{R::kFailure, "x", {}, false},
      tolerated{R::kFailure, "x", {}, true}, cancelled{R::kCancelled, "", {}, false},
      skipped{R::kSkipped, "", {}, false};
  EXPECT_TRUE(failed.failed());
  EXPECT_FALSE(tolerated.failed());
  EXPECT_EQ(tolerated.counted(), R::kSuccess);
  auto same = [](const JobOutcome& o) -> const JobOutcome& { return o; };
  using V = std::vector<JobOutcome>;
  EXPECT_EQ(combined(V{cancelled, failed, ok}, same), R::kFailure);
  EXPECT_EQ(combined(V{ok, cancelled, skipped}, same), R::kCancelled);
  EXPECT_EQ(combined(V{skipped, tolerated}, same), R::kSuccess);
  EXPECT_EQ(combined(V{skipped, skipped}, same), R::kSkipped);
  EXPECT_EQ(combined(V{}, same), R::kSkipped);
}

TEST(Scheduler, RunsDependenciesFirstAndPassesOutcomes) {
  // 0 -> 1 -> 2, and 3 independent.
  std::vector<ScheduledJob> jobs(4);
  jobs[1].needs = {0};
  jobs[2].needs = {1};
  std::mutex mu;
  std::vector<size_t> order;
  CancelToken global;
  auto outcomes = run_schedule(
      jobs, {4, 0, 0},
      [&](size_t i, const std::vector<JobOutcome>& seen, CancelToken&) {
        if (i == 2) {
          EXPECT_EQ(seen[1].result, JobResult::kSuccess);
        }
        std::lock_guard lk(mu);
        order.push_back(i);
        return ok();
      },
      global);
  ASSERT_EQ(outcomes.size(), 4u);
  for (auto& o : outcomes) EXPECT_EQ(o.result, JobResult::kSuccess);
  auto pos = [&](size_t v) { return std::find(order.begin(), order.end(), v) - order.begin(); };
  EXPECT_LT(pos(0), pos(1));
  EXPECT_LT(pos(1), pos(2));
}

TEST(Scheduler, NeverExceedsMaxJobs) {
  std::vector<ScheduledJob> jobs(12);
  Peak p;
  CancelToken global;
  // The first job waits (bounded) until a second one runs beside it: that
  // the scheduler runs jobs at once is shown without depending on timing.
  std::mutex mu;
  std::condition_variable cv;
  int started = 0;
  bool overlapped = false;
  run_schedule(
      jobs, {3, 0, 0},
      [&](size_t i, const std::vector<JobOutcome>&, CancelToken&) {
        if (i == 0) {
          std::unique_lock lk(mu);
          ++started;
          overlapped = cv.wait_for(lk, 10s, [&] { return started >= 2; });
          lk.unlock();
          return p.run();
        }
        {
          std::lock_guard lk(mu);
          ++started;
        }
        cv.notify_all();
        return p.run();
      },
      global);
  EXPECT_LE(p.peak.load(), 3);
  EXPECT_TRUE(overlapped) << "no second job started while the first ran";
}

TEST(Scheduler, RespectsMemoryBudgetAndMaxParallel) {
  std::vector<ScheduledJob> jobs(6);
  for (auto& j : jobs) {
    j.memory_bytes = 600;
    j.group = "build";
  }
  CancelToken global;
  Peak p1;
  run_schedule(  // only one 600-byte job fits in 1000 bytes
      jobs, {6, 0, 1000},
      [&](size_t, const std::vector<JobOutcome>&, CancelToken&) { return p1.run(); }, global);
  EXPECT_EQ(p1.peak.load(), 1);

  for (auto& j : jobs) {
    j.memory_bytes = 0;
    j.max_parallel = 2;
  }
  Peak p2;
  run_schedule(
      jobs, {6, 0, 0},
      [&](size_t, const std::vector<JobOutcome>&, CancelToken&) { return p2.run(); }, global);
  EXPECT_EQ(p2.peak.load(), 2);
}

TEST(Scheduler, JobLargerThanHostStillRunsAlone) {
  std::vector<ScheduledJob> jobs(1);
  jobs[0].cpu_millis = 64000;
  CancelToken global;
  auto out = run_schedule(
      jobs, {2, 2000, 0}, [](size_t, const std::vector<JobOutcome>&, CancelToken&) { return ok(); },
      global);
  EXPECT_EQ(out[0].result, JobResult::kSuccess);
}

TEST(Scheduler, FailFastCancelsRunningAndPendingSiblingsOnly) {
  // Group "a" = 0..3, group "b" = 4; three slots. 0 fails once 1 and 2 run;
  // 1 and 2 (running) and 3 (pending) are cancelled; 4 still runs.
  std::vector<ScheduledJob> jobs(5);
  for (int i = 0; i < 4; ++i) jobs[i].group = "a";
  jobs[4].group = "b";
  Gate gate;
  std::atomic<int> waiting{0};
  CancelToken global;
  auto out = run_schedule(
      jobs, {3, 0, 0},
      [&](size_t i, const std::vector<JobOutcome>&, CancelToken& t) -> JobOutcome {
        if (i == 0) {
          while (waiting < 2) std::this_thread::sleep_for(1ms);
          return {JobResult::kFailure, "exit code 1", {}, false};
        }
        if (i == 4) return ok();
        ++waiting;
        if (!gate.wait(t)) return {JobResult::kCancelled, "cancelled", {}, false};
        return ok();
      },
      global);
  EXPECT_EQ(out[0].result, JobResult::kFailure);
  EXPECT_EQ(out[1].result, JobResult::kCancelled);
  EXPECT_EQ(out[2].result, JobResult::kCancelled);
  EXPECT_EQ(out[3].result, JobResult::kCancelled);
  EXPECT_EQ(out[3].reason, "cancelled: a sibling job failed (fail-fast)");
  EXPECT_EQ(out[4].result, JobResult::kSuccess);
}

TEST(Scheduler, ContinueOnErrorFailureDoesNotCancelSiblings) {
  std::vector<ScheduledJob> jobs(3);
  for (auto& j : jobs) j.group = "a";
  CancelToken global;
  auto out = run_schedule(
      jobs, {1, 0, 0},
      [](size_t i, const std::vector<JobOutcome>&, CancelToken&) -> JobOutcome {
        if (i == 0) return {JobResult::kFailure, "exit code 1", {}, true};
        return ok();
      },
      global);
  EXPECT_EQ(out[0].result, JobResult::kFailure);
  EXPECT_EQ(out[1].result, JobResult::kSuccess);
  EXPECT_EQ(out[2].result, JobResult::kSuccess);
}

TEST(Scheduler, FailFastOffKeepsSiblingsRunning) {
  std::vector<ScheduledJob> jobs(3);
  for (auto& j : jobs) {
    j.group = "a";
    j.fail_fast = false;
  }
  CancelToken global;
  auto out = run_schedule(
      jobs, {1, 0, 0},
      [](size_t i, const std::vector<JobOutcome>&, CancelToken&) -> JobOutcome {
        if (i == 0) return {JobResult::kFailure, "exit code 1", {}, false};
        return ok();
      },
      global);
  EXPECT_EQ(out[1].result, JobResult::kSuccess);
  EXPECT_EQ(out[2].result, JobResult::kSuccess);
}

TEST(Scheduler, GlobalCancelStopsRunningAndPending) {
  std::vector<ScheduledJob> jobs(4);
  jobs[3].needs = {0};
  Gate gate;
  std::atomic<int> started{0};
  CancelToken global;
  std::thread canceller([&] {
    while (started < 2) std::this_thread::sleep_for(1ms);
    global.cancel();
  });
  auto out = run_schedule(
      jobs, {2, 0, 0},
      [&](size_t, const std::vector<JobOutcome>&, CancelToken& t) -> JobOutcome {
        ++started;
        if (!gate.wait(t)) return {JobResult::kCancelled, "cancelled", {}, false};
        return ok();
      },
      global);
  canceller.join();
  for (auto& o : out) EXPECT_EQ(o.result, JobResult::kCancelled);
  EXPECT_EQ(started.load(), 2);
}

// A stand-in (a matrix from needs outputs) expands as soon as its own needs
// ended, while an unrelated job still runs: the unrelated job waits (bounded)
// for one of the expanded jobs, which a schedule in waves would never start.
TEST(Scheduler, StandInExpandsWhileUnrelatedJobsRunAndItsDependentsWaitForAllOfIt) {
  // 0 producer; 1 unrelated; 2 stand-in needing 0; 3 needs 2.
  std::vector<ScheduledJob> jobs(4);
  jobs[2].needs = {0};
  jobs[2].expands = true;
  jobs[2].group = "m";
  jobs[3].needs = {2};
  std::mutex mu;
  std::condition_variable cv;
  bool child_ran = false;
  std::vector<size_t> order;
  CancelToken global;
  size_t first_seen = 0;
  auto out = run_schedule(
      jobs, {2, 0, 0},
      [&](size_t i, const std::vector<JobOutcome>& seen, CancelToken&) -> JobOutcome {
        std::unique_lock lk(mu);
        if (i == 1) {
          bool ran = cv.wait_for(lk, 30s, [&] { return child_ran; });
          order.push_back(i);
          return ran ? ok() : JobOutcome{JobResult::kFailure, "no child ran", {}, false};
        }
        if (i == 3) {
          EXPECT_EQ(seen[4].result, JobResult::kSuccess);
          EXPECT_EQ(seen[5].result, JobResult::kSuccess);
        }
        if (i >= 4) {
          child_ran = true;
          cv.notify_all();
        }
        order.push_back(i);
        return ok();
      },
      global,
      [&](size_t i, size_t first, const std::vector<JobOutcome>& seen) -> Expansion {
        EXPECT_EQ(seen[0].result, JobResult::kSuccess);
        EXPECT_EQ(i, 2u);
        first_seen = first;
        Expansion e;
        e.jobs.resize(2);
        for (auto& j : e.jobs) {
          j.needs = {0};
          j.group = "m";
        }
        return e;
      });
  EXPECT_EQ(first_seen, 4u);
  ASSERT_EQ(out.size(), 6u);
  for (size_t i = 0; i < out.size(); ++i)
    EXPECT_EQ(out[i].result, JobResult::kSuccess) << i << " " << out[i].reason;
  auto pos = [&](size_t v) { return std::find(order.begin(), order.end(), v) - order.begin(); };
  EXPECT_LT(pos(4), pos(1));
  EXPECT_LT(pos(4), pos(3));
  EXPECT_LT(pos(5), pos(3));
}

TEST(Scheduler, StandInThatSettlesRunsNothingAndEndsWithItsOutcome) {
  std::vector<ScheduledJob> jobs(3);
  jobs[1].needs = {0};
  jobs[1].expands = true;
  jobs[2].needs = {1};
  CancelToken global;
  std::atomic<int> runs{0};
  auto out = run_schedule(
      jobs, {2, 0, 0},
      [&](size_t, const std::vector<JobOutcome>&, CancelToken&) {
        ++runs;
        return ok();
      },
      global,
      [](size_t, size_t, const std::vector<JobOutcome>&) {
        return Expansion{{}, JobOutcome{JobResult::kSkipped, "a job it needs did not succeed"}};
      });
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[1].result, JobResult::kSkipped);
  EXPECT_EQ(out[1].reason, "a job it needs did not succeed");
  EXPECT_EQ(out[2].result, JobResult::kSuccess);  // whether to skip is the job's to decide
  EXPECT_EQ(runs.load(), 2);
}

TEST(Scheduler, ExpandedJobsFailFastAmongThemselvesAndTheStandInFails) {
  std::vector<ScheduledJob> jobs(2);
  jobs[0].expands = true;
  jobs[0].group = "m";
  jobs[1].group = "other";
  CancelToken global;
  auto out = run_schedule(
      jobs, {1, 0, 0},
      [](size_t i, const std::vector<JobOutcome>&, CancelToken&) -> JobOutcome {
        if (i == 2) return {JobResult::kFailure, "exit code 1", {}, false};
        return ok();
      },
      global,
      [](size_t, size_t, const std::vector<JobOutcome>&) {
        Expansion e;
        e.jobs.resize(3);
        for (auto& j : e.jobs) j.group = "m";
        return e;
      });
  ASSERT_EQ(out.size(), 5u);
  EXPECT_EQ(out[0].result, JobResult::kFailure);
  EXPECT_EQ(out[0].reason, "exit code 1");
  EXPECT_EQ(out[1].result, JobResult::kSuccess);
  EXPECT_EQ(out[2].result, JobResult::kFailure);
  EXPECT_EQ(out[3].result, JobResult::kCancelled);
  EXPECT_EQ(out[4].result, JobResult::kCancelled);
}

TEST(Scheduler, GlobalCancelEndsExpandedJobsAndTheirStandIn) {
  std::vector<ScheduledJob> jobs(2);
  jobs[0].expands = true;
  jobs[1].needs = {0};
  Gate gate;
  std::atomic<int> started{0};
  CancelToken global;
  std::thread canceller([&] {
    while (started < 1) std::this_thread::sleep_for(1ms);
    global.cancel();
  });
  auto out = run_schedule(
      jobs, {1, 0, 0},
      [&](size_t, const std::vector<JobOutcome>&, CancelToken& t) -> JobOutcome {
        ++started;
        if (!gate.wait(t)) return {JobResult::kCancelled, "cancelled", {}, false};
        return ok();
      },
      global,
      [](size_t, size_t, const std::vector<JobOutcome>&) {
        Expansion e;
        e.jobs.resize(2);
        return e;
      });
  canceller.join();
  ASSERT_EQ(out.size(), 4u);
  for (auto& o : out) EXPECT_EQ(o.result, JobResult::kCancelled);
  EXPECT_EQ(started.load(), 1);
}

// Two calls of a workflow (a calling job's matrix): a failure inside one
// cancels the other call's jobs through the callers' fail-fast group, also
// when the failed job's own strategy is not fail-fast; an unrelated job runs.
TEST(Scheduler, FailureInsideAStandInCancelsItsFailFastSiblingsJobs) {
  std::vector<ScheduledJob> jobs(3);
  jobs[0].expands = jobs[1].expands = true;
  jobs[0].group = jobs[1].group = "call";
  jobs[2].group = "other";
  Gate gate;
  std::atomic<int> started{0};
  CancelToken global;
  auto out = run_schedule(
      jobs, {4, 0, 0},
      [&](size_t i, const std::vector<JobOutcome>&, CancelToken& t) -> JobOutcome {
        ++started;
        if (i == 2) return ok();
        if (i == 4) return {JobResult::kSkipped, "a job it needs did not succeed", {}, false};
        if (i == 3) {  // the first call's job fails once the other call's job runs
          while (started < 3) std::this_thread::sleep_for(1ms);
          return {JobResult::kFailure, "exit code 1", {}, false};
        }
        if (!gate.wait(t)) return {JobResult::kCancelled, "cancelled", {}, false};
        return ok();
      },
      global,
      [](size_t i, size_t, const std::vector<JobOutcome>&) {
        Expansion e;
        e.jobs.resize(2);
        e.jobs[0].group = "inner-" + std::to_string(i) + "-a";
        e.jobs[0].fail_fast = false;
        e.jobs[1].group = "inner-" + std::to_string(i) + "-b";
        e.jobs[1].needs = {i == 0 ? size_t{3} : size_t{5}};
        return e;
      });
  ASSERT_EQ(out.size(), 7u);
  EXPECT_EQ(out[2].result, JobResult::kSuccess);
  EXPECT_EQ(out[3].result, JobResult::kFailure);
  EXPECT_EQ(out[4].result, JobResult::kSkipped);    // needs the failed job (its own call)
  EXPECT_EQ(out[5].result, JobResult::kCancelled);  // running in the other call: cancelled
  EXPECT_EQ(out[6].result, JobResult::kCancelled);  // pending in the other call
  EXPECT_EQ(out[6].reason, "cancelled: a sibling job failed (fail-fast)");
  EXPECT_EQ(out[0].result, JobResult::kFailure);
  EXPECT_EQ(out[1].result, JobResult::kCancelled);
}

}  // namespace
}  // namespace lockstep::runner
