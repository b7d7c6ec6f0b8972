// Ctrl-C during a run: every container stops, the summary says so, exit 130.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>

#include <gtest/gtest.h>

#include "tests/support/lockstep_process.hpp"

namespace lockstep::testing {
namespace {

TEST(InterruptTest, SigintStopsEveryContainerAndExits130) {
  if (!is_root()) GTEST_SKIP() << "needs root: containers use mount/pid/net namespaces";
  LockstepHome home;
  ASSERT_FALSE(home.import_busybox("localhost/busybox:test").empty());
  // A sleep long enough to outlive the test, whose length is unique to this
  // test process, so that its processes can be counted afterwards.
  std::string marker = "sleep 900" + std::to_string(::getpid());
  auto wf = home.write("wf.yml", R"(on: push
jobs:
  long:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    strategy:
      matrix:
        n: [1, 2]
    steps:
      - run: |
          echo started
          )" + marker + R"(
)");
  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::setenv("LOCKSTEP_HOME", home.home().c_str(), 1);
    ::execl(LOCKSTEP_BINARY, LOCKSTEP_BINARY, "run", wf.c_str(), "--jobs", "2", nullptr);
    ::_exit(127);
  }
  ::close(out[1]);
  // Wait until both jobs are in their step, then interrupt.
  std::string seen;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  char buf[4096];
  size_t started = 0;
  while (started < 2 && std::chrono::steady_clock::now() < deadline) {
    pollfd p{out[0], POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    seen.append(buf, static_cast<size_t>(n));
    started = 0;
    for (size_t at = seen.find("] started"); at != std::string::npos;
         at = seen.find("] started", at + 1))
      ++started;
  }
  ASSERT_EQ(started, 2u) << seen;
  ::kill(pid, SIGINT);
  for (;;) {
    ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n <= 0) break;
    seen.append(buf, static_cast<size_t>(n));
  }
  ::close(out[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << seen;
  EXPECT_EQ(WEXITSTATUS(status), 130) << seen;
  EXPECT_NE(seen.find("(interrupted)"), std::string::npos) << seen;
  EXPECT_NE(seen.find("cancelled"), std::string::npos) << seen;
  auto ps = run_process({"/bin/sh", "-c", "ps -eo args | grep -c '^" + marker + "$' || true"});
  EXPECT_EQ(ps.out, "0\n") << "a step process survived the interrupt";
}

}  // namespace
}  // namespace lockstep::testing
