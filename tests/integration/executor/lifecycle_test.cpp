// Leaving nothing behind: many containers in a row, and a runner killed with
// SIGKILL whose containers the next process reaps.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "common/json.hpp"
#include "harness.hpp"

namespace lockstep::executor::testing {
namespace {
namespace fs = std::filesystem;
using std::chrono::milliseconds;

TEST_F(ExecutorTest, TwoHundredContainersLeaveNothing) {
  size_t mounts = count_mounts();
  for (int i = 0; i < 200; ++i) {
    auto c = start(spec("n" + std::to_string(i)));
    ASSERT_TRUE(c);
    Output o = run(*c, {"true"});
    ASSERT_TRUE(o.result.ok()) << o.result.reason;
    ASSERT_TRUE(c->stop(milliseconds(100)));
  }
  EXPECT_EQ(count_mounts(), mounts);
  EXPECT_EQ(count_entries(state() / "containers"), 0u);
  EXPECT_EQ(count_cgroups_with_prefix(prefix_), 0u);
  EXPECT_EQ(count_children(::getpid()), 0u);
}

TEST_F(ExecutorTest, UpperDirOnDiskLeavesNothing) {
  size_t mounts = count_mounts();
  for (int i = 0; i < 20; ++i) {
    ContainerSpec s = spec("d" + std::to_string(i));
    s.scratch_in_memory = false;
    auto c = start(s);
    ASSERT_TRUE(c);
    Output o = sh(*c, "echo changed > /etc/motd && cat /etc/motd");
    ASSERT_EQ(o.out_text(), "changed");
    EXPECT_TRUE(fs::exists(state() / "containers" / s.id / "upper/etc/motd"));
    ASSERT_TRUE(c->stop(milliseconds(0)));
  }
  EXPECT_FALSE(fs::exists(layer() / "etc/motd"));
  EXPECT_EQ(count_mounts(), mounts);
  EXPECT_EQ(count_entries(state() / "containers"), 0u);
}

// Processes on the host whose command line is exactly `argv`.
size_t count_processes_running(const std::vector<std::string>& argv) {
  std::string want;
  for (const auto& a : argv) want += a + '\0';
  size_t n = 0;
  for (const auto& e : fs::directory_iterator("/proc")) {
    auto text = read_file(e.path() / "cmdline");  // gone meanwhile: not counted
    if (text && *text == want) ++n;
  }
  return n;
}

TEST_F(ExecutorTest, RetireReturnsWithTheProcessesDeadAndTheExecutorRemovesTheRest) {
  size_t mounts = count_mounts();
  const std::string marker = "7357" + std::to_string(::getpid());
  for (int i = 0; i < 20; ++i) {
    auto c = start(spec("r" + std::to_string(i)));
    ASSERT_TRUE(c);
    Output o = sh(*c, "setsid sleep " + marker + " </dev/null >/dev/null 2>&1 & echo ok");
    ASSERT_EQ(o.out_text(), "ok");
    // The shell may return before its child has exec'd sleep.
    for (int t = 0; t < 200 && count_processes_running({"sleep", marker}) == 0; ++t)
      std::this_thread::sleep_for(milliseconds(10));
    ASSERT_EQ(count_processes_running({"sleep", marker}), 1u);
    ASSERT_TRUE(executor_->retire(std::move(c), milliseconds(100)));
    // Back in the caller: the container's processes are gone already.
    EXPECT_EQ(count_processes_running({"sleep", marker}), 0u);
  }
  // The executor waits for the rest: inits, cgroups, state files.
  executor_.reset();
  EXPECT_EQ(count_mounts(), mounts);
  EXPECT_EQ(count_entries(state() / "containers"), 0u);
  EXPECT_EQ(count_cgroups_with_prefix(prefix_), 0u);
  EXPECT_EQ(count_children(::getpid()), 0u);
}

TEST_F(ExecutorTest, DestructorStopsAContainerWithADaemon) {
  {
    auto c = start(spec());
    ASSERT_TRUE(c);
    Output o = sh(*c, "setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo ok");
    EXPECT_EQ(o.out_text(), "ok");
    EXPECT_EQ(count_cgroups_with_prefix(prefix_) > 0, true);
  }
  // TearDown checks that no directory, cgroup or process is left.
}

TEST_F(ExecutorTest, ReapStaleAfterOwnerWasKilled) {
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  ContainerSpec s = spec("orphan");
  s.scratch_in_memory = false;  // an upper dir on disk must be reaped too
  pid_t owner = ::fork();
  ASSERT_GE(owner, 0);
  if (owner == 0) {
    ::close(ready[0]);
    auto ex = make_linux_executor(state());
    auto c = ex->start(s);
    if (!c) ::_exit(1);
    ProcessSpec p;
    p.argv = {"sh", "-c", "setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo up"};
    auto r = (*c)->exec(p, nullptr);
    if (!r) ::_exit(2);
    (void)!::write(ready[1], "r", 1);
    for (;;) ::pause();
  }
  ::close(ready[1]);
  char b = 0;
  ASSERT_EQ(::read(ready[0], &b, 1), 1);
  ::close(ready[0]);
  fs::path file = state() / "containers" / (s.id + ".json");
  auto text = read_file(file);
  ASSERT_TRUE(text);
  auto st = parse_json(*text, "state");
  ASSERT_TRUE(st);
  pid_t init = (*st)["init_pid"].get<pid_t>();
  EXPECT_GT(init, 0);
  EXPECT_GT(count_cgroups_with_prefix(s.id), 0u);

  ASSERT_EQ(::kill(owner, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(owner, &status, 0), owner);
  ASSERT_TRUE(WIFSIGNALED(status));

  ASSERT_TRUE(reap_stale(state()));
  EXPECT_FALSE(fs::exists(file));
  EXPECT_EQ(count_entries(state() / "containers"), 0u);
  EXPECT_EQ(count_cgroups_with_prefix(s.id), 0u);
  // The init and the daemon are gone (the pid may be reused, never by them).
  auto init_stat = read_file("/proc/" + std::to_string(init) + "/stat");
  // A zombie waiting for the host's pid 1 to collect it is no process.
  if (init_stat && init_stat->find("(executor_integ") != std::string::npos) {
    EXPECT_EQ(init_stat->substr(init_stat->rfind(')') + 2, 1), "Z") << *init_stat;
  }
  FILE* ps = ::popen("ps -eo args", "r");
  ASSERT_NE(ps, nullptr);
  char line[512];
  while (std::fgets(line, sizeof line, ps)) EXPECT_NE(std::string(line), "sleep 1000\n");
  ::pclose(ps);
}

TEST_F(ExecutorTest, ReapStaleLeavesLiveContainersAlone) {
  auto c = start(spec());
  ASSERT_TRUE(c);
  ASSERT_TRUE(reap_stale(state()));
  EXPECT_EQ(run(*c, {"echo", "alive"}).out_text(), "alive");
  ASSERT_TRUE(c->stop(milliseconds(0)));
}

TEST_F(ExecutorTest, DuplicateIdIsRefused) {
  auto c = start(spec("dup"));
  ASSERT_TRUE(c);
  auto again = executor_->start(spec("dup"));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().message(),
            "container " + prefix_ + "dup already exists (" +
                (state() / "containers" / (prefix_ + "dup.json")).string() + ")");
}

}  // namespace
}  // namespace lockstep::executor::testing

namespace lockstep::executor::testing {
namespace {

TEST_F(ExecutorTest, StopWhileAStepRunsCancelsIt) {
  auto c = start(spec());
  ASSERT_TRUE(c);
  Output o;
  std::thread t([&] { o = sh(*c, "trap '' TERM; echo up; while true; do sleep 1; done"); });
  // Stop only once the loop's sleep runs: by then "up" has been written.
  auto sleeping = [&] {
    for (const auto& l : other_processes(*c))
      if (l.find(" (sleep) ") != std::string::npos) return true;
    return false;
  };
  for (int i = 0; i < 500 && !sleeping(); ++i) usleep(10000);
  ASSERT_TRUE(c->stop(std::chrono::milliseconds(100)));
  t.join();
  EXPECT_EQ(o.result.kind, ExitKind::kCancelled);
  EXPECT_EQ(o.out_text(), "up");
  ProcessSpec p;
  p.argv = {"true"};
  auto r = c->exec(p, nullptr);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "container " + prefix_ + "c is stopped");
}

}  // namespace
}  // namespace lockstep::executor::testing
