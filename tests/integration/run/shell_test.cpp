// `lockstep shell IMAGE` driven through a real pseudo terminal, as a person
// at a terminal would use it.
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>

#include <gtest/gtest.h>

#include "tests/support/lockstep_process.hpp"

namespace lockstep::testing {
namespace {

TEST(ShellTest, InteractiveShellThroughAPty) {
  if (!is_root()) GTEST_SKIP() << "needs root: containers use mount/pid/net namespaces";
  LockstepHome home;
  ASSERT_FALSE(home.import_busybox("localhost/busybox:test").empty());

  int master = -1;
  pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::setenv("LOCKSTEP_HOME", home.home().c_str(), 1);
    ::setenv("TERM", "dumb", 1);
    ::execl(LOCKSTEP_BINARY, LOCKSTEP_BINARY, "shell", "localhost/busybox:test", nullptr);
    ::_exit(127);
  }
  // The shell reads what we type; its answers come back on the pty.
  std::string typed = "echo \"in-$(hostname)-$((40+2))\"; tty; exit 7\n";
  ASSERT_EQ(::write(master, typed.data(), typed.size()), static_cast<ssize_t>(typed.size()));
  std::string seen;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
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
  EXPECT_NE(seen.find("in-lockstep-42"), std::string::npos) << seen;
  EXPECT_NE(seen.find("/dev/pts/"), std::string::npos) << seen;  // a real terminal inside
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 7) << seen;
}

}  // namespace
}  // namespace lockstep::testing
