// The cgroup v2 code path on a real cgroup2 hierarchy. On the hybrid
// development machines the cgroup2 mount at /sys/fs/cgroup/unified offers no
// controllers, so limits cannot be tested there (the fake-tree unit tests
// cover them), but membership, cgroup.kill, cpu.stat, removal, reaping and
// CLONE_INTO_CGROUP are all real.
#include <gtest/gtest.h>
#include <linux/sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <thread>

#include "common/fs.hpp"
#include "executor/cgroup.hpp"
#include "tests/integration/executor-security/child.hpp"

namespace lockstep::executor {
namespace {
namespace fs = std::filesystem;
using testing::GatedChild;

class CgroupV2 : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to create cgroups";
    auto mountinfo = read_file("/proc/self/mountinfo");
    ASSERT_TRUE(mountinfo);
    std::istringstream in(*mountinfo);
    for (std::string line; std::getline(in, line);) {
      if (line.find(" - cgroup2 ") == std::string::npos) continue;
      std::istringstream fields(line);
      std::string skip, mount_point;
      fields >> skip >> skip >> skip >> skip >> mount_point;
      roots_.unified = mount_point;
      break;
    }
    if (roots_.unified.empty()) GTEST_SKIP() << "needs a cgroup2 mount";
    static std::atomic<int> n{0};
    id_ = "sectest-v2-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
  }
  fs::path dir() const { return roots_.unified / Cgroup::kParent / id_; }

  CgroupRoots roots_;
  std::string id_;
};

template <class Pred>
bool eventually(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

TEST_F(CgroupV2, KillAllEmptiesATreeWithASetsidDaemon) {
  auto cg = Cgroup::create(roots_, id_, Limits{});
  ASSERT_TRUE(cg) << cg.error().message();
  EXPECT_GE(cg->v2_dir_fd(), 0);
  GatedChild parent([]() -> int {
    if (::fork() == 0) {
      ::setsid();
      if (::fork() == 0) {
        for (;;) ::pause();
      }
      ::_exit(0);
    }
    for (;;) ::pause();
  });
  ASSERT_TRUE(cg->attach(parent.pid()));
  ASSERT_TRUE(parent.release());
  ASSERT_TRUE(eventually([&] { return cg->pids().size() == 2; })) << cg->pids().size();
  ASSERT_TRUE(cg->kill_all());
  EXPECT_TRUE(cg->pids().empty());
  const int status = parent.wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  ASSERT_TRUE(cg->remove());
  EXPECT_FALSE(fs::exists(dir()));
}

TEST_F(CgroupV2, UsageReportsCpuTimeFromCpuStat) {
  auto cg = Cgroup::create(roots_, id_, Limits{});
  ASSERT_TRUE(cg) << cg.error().message();
  // 150 ms of the child's CPU, of which at least 100 ms after it joined
  // the cgroup: what it used before (fork, the gate) is its own but not
  // the cgroup's (seen under TCG: 99.76 ms in cpu.stat for a 100 ms spin).
  GatedChild spin([]() -> int {
    timespec t{};
    do {
      ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    } while (t.tv_sec == 0 && t.tv_nsec < 150'000'000);
    return 0;
  });
  ASSERT_TRUE(cg->attach(spin.pid()));
  ASSERT_TRUE(spin.release());
  const int status = spin.wait();
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_GE(cg->usage().cpu_time, std::chrono::milliseconds(100));
  EXPECT_LT(cg->usage().cpu_time, std::chrono::seconds(5));
}

TEST_F(CgroupV2, DirFdWorksWithCloneIntoCgroup) {
  auto cg = Cgroup::create(roots_, id_, Limits{});
  ASSERT_TRUE(cg) << cg.error().message();
  clone_args args{};
  args.flags = CLONE_INTO_CGROUP;
  args.exit_signal = SIGCHLD;
  args.cgroup = static_cast<uint64_t>(cg->v2_dir_fd());
  const long pid = ::syscall(SYS_clone3, &args, sizeof args);
  if (pid == 0) {
    // Born inside: /proc/self/cgroup names it from the first instruction.
    auto self = read_file("/proc/self/cgroup");
    const std::string want = "0::/" + std::string(Cgroup::kParent) + "/";
    ::_exit(self && self->find(want) != std::string::npos ? 0 : 1);
  }
  ASSERT_GT(pid, 0) << "clone3: " << std::strerror(errno);
  int status = 0;
  ASSERT_EQ(::waitpid(static_cast<pid_t>(pid), &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST_F(CgroupV2, ReapStaleRemovesALeftover) {
  pid_t runner = ::fork();
  if (runner == 0) {  // a runner that dies without cleaning up
    auto cg = Cgroup::create(roots_, id_, Limits{});
    ::_exit(cg ? 0 : 1);
  }
  int rs = 0;
  ASSERT_EQ(::waitpid(runner, &rs, 0), runner);
  ASSERT_TRUE(WIFEXITED(rs) && WEXITSTATUS(rs) == 0);
  ASSERT_TRUE(fs::exists(dir()));
  ASSERT_TRUE(Cgroup::reap_stale(roots_, [&](const std::string& id) { return id == id_; }));
  EXPECT_FALSE(fs::exists(dir()));
}

}  // namespace
}  // namespace lockstep::executor
