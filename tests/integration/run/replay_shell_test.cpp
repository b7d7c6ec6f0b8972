// `lockstep replay --shell` through a real pseudo terminal: the replayed job
// fails at a step, and a shell opens in its container with that step's
// environment and working directory, the workspace as the build left it.
#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <regex>

#include <gtest/gtest.h>

#include "tests/support/lockstep_process.hpp"

namespace lockstep::testing {
namespace {

TEST(ReplayShellTest, ShellOpensAtTheFailingStepWithItsEnvironment) {
  if (!is_root()) GTEST_SKIP() << "needs root: containers use mount/pid/net namespaces";
  LockstepHome home;
  ASSERT_FALSE(home.import_busybox("localhost/busybox:test").empty());
  auto wf = home.write("ci.yml", R"yml(name: broken
jobs:
  build:
    runs-on: linux
    container: localhost/busybox:test
    steps:
      - run: |
          echo "half-built" > made.txt
          echo "FROM_EARLIER=exported" >> "$GITHUB_ENV"
      - name: compile
        env:
          STEP_VAR: step-two
        run: |
          mkdir -p sub
          exit 4
        working-directory: .
)yml");
  auto r = home.lockstep({"run", wf.string()});
  ASSERT_EQ(r.exit_code, 1) << r.out << r.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.err, m, std::regex("run (\\S+) recorded in"))) << r.err;
  std::string id = m[1];

  int master = -1;
  pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::setenv("LOCKSTEP_HOME", home.home().c_str(), 1);
    ::setenv("TERM", "dumb", 1);
    ::execl(LOCKSTEP_BINARY, LOCKSTEP_BINARY, "replay", id.c_str(), "--shell", nullptr);
    ::_exit(127);
  }
  std::string typed =
      "echo \"seen:$STEP_VAR:$FROM_EARLIER:$(cat made.txt):$(pwd):$(ls -d sub)\"; exit\n";
  ASSERT_EQ(::write(master, typed.data(), typed.size()), static_cast<ssize_t>(typed.size()));
  std::string seen;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  char buf[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{master, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    ssize_t n = ::read(master, buf, sizeof buf);
    if (n <= 0) break;  // EIO once the child side is closed
    seen.append(buf, static_cast<size_t>(n));
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ::close(master);
  EXPECT_NE(seen.find("opening a shell at the failed step 'compile'"), std::string::npos) << seen;
  EXPECT_NE(seen.find("seen:step-two:exported:half-built:/__w/workspace/workspace:sub"),
            std::string::npos)
      << seen;
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1) << seen;  // the job still failed
}

}  // namespace
}  // namespace lockstep::testing
