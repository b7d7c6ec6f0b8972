// `lockstep replay --shell` through a real pseudo terminal: the replayed job
// fails at a step, and a shell opens in its container with that step's
// environment and working directory, the workspace as the build left it.

#include <chrono>
#include <regex>

#include <gtest/gtest.h>

#include "tests/support/lockstep_process.hpp"
#include "tests/support/pty_run.hpp"

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

  auto shell = run_in_pty(
      {LOCKSTEP_BINARY, "replay", id, "--shell"}, {"LOCKSTEP_HOME=" + home.home().string()},
      "echo \"seen:$STEP_VAR:$FROM_EARLIER:$(cat made.txt):$(pwd):$(ls -d sub)\"; exit\n");
  EXPECT_NE(shell.out.find("opening a shell at the failed step 'compile'"), std::string::npos)
      << shell.out;
  EXPECT_NE(shell.out.find("seen:step-two:exported:half-built:/__w/workspace/workspace:sub"),
            std::string::npos)
      << shell.out;
  EXPECT_EQ(shell.exit_code, 1) << shell.out;  // the job still failed
}

}  // namespace
}  // namespace lockstep::testing
