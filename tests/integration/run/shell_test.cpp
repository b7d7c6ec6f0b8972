// `lockstep shell IMAGE` driven through a real pseudo terminal, as a person
// at a terminal would use it.

#include <chrono>

#include <gtest/gtest.h>

#include "tests/support/lockstep_process.hpp"
#include "tests/support/pty_run.hpp"

namespace lockstep::testing {
namespace {

TEST(ShellTest, InteractiveShellThroughAPty) {
  if (!is_root()) GTEST_SKIP() << "needs root: containers use mount/pid/net namespaces";
  LockstepHome home;
  ASSERT_FALSE(home.import_busybox("localhost/busybox:test").empty());

  // The shell reads what we type; its answers come back on the pty.
  auto r = run_in_pty({LOCKSTEP_BINARY, "shell", "localhost/busybox:test"},
                      {"LOCKSTEP_HOME=" + home.home().string()},
                      "echo \"in-$(hostname)-$((40+2))\"; tty; exit 7\n", std::chrono::seconds(30));
  EXPECT_NE(r.out.find("in-lockstep-42"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("/dev/pts/"), std::string::npos) << r.out;  // a real terminal inside
  EXPECT_EQ(r.exit_code, 7) << r.out;
}

}  // namespace
}  // namespace lockstep::testing
