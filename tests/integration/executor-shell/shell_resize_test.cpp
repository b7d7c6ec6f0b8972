// `lockstep shell` through a real pseudo terminal: a resized terminal
// reaches the container's pty (SIGWINCH on our side, TIOCSWINSZ on the
// container's), so that `stty size` inside follows it.
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include "tests/support/lockstep_process.hpp"

namespace lockstep::testing {
namespace {
using Clock = std::chrono::steady_clock;

class PtySession {
 public:
  // Starts `lockstep shell IMAGE` on a new pty of the given size.
  PtySession(const LockstepHome& home, const std::string& image, unsigned short rows,
             unsigned short cols) {
    struct winsize ws {};
    ws.ws_row = rows;
    ws.ws_col = cols;
    pid_ = ::forkpty(&master_, nullptr, nullptr, &ws);
    if (pid_ == 0) {
      ::setenv("LOCKSTEP_HOME", home.home().c_str(), 1);
      ::setenv("TERM", "dumb", 1);
      ::execl(LOCKSTEP_BINARY, LOCKSTEP_BINARY, "shell", image.c_str(), nullptr);
      ::_exit(127);
    }
  }
  ~PtySession() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (master_ >= 0) ::close(master_);
  }
  bool started() const { return pid_ > 0 && master_ >= 0; }

  void type(const std::string& s) {
    ASSERT_EQ(::write(master_, s.data(), s.size()), static_cast<ssize_t>(s.size()));
  }
  void resize(unsigned short rows, unsigned short cols) {
    struct winsize ws {};
    ws.ws_row = rows;
    ws.ws_col = cols;
    // Like a terminal emulator: the kernel signals SIGWINCH to lockstep.
    ASSERT_EQ(::ioctl(master_, TIOCSWINSZ, &ws), 0);
  }
  // Reads until `what` appears after the read position or `timeout` passes.
  bool wait_for(const std::string& what, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    for (;;) {
      if (seen_.find(what, pos_) != std::string::npos) {
        pos_ = seen_.find(what, pos_) + what.size();
        return true;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return false;
      pollfd p{master_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      ssize_t n = ::read(master_, buf, sizeof buf);
      if (n <= 0) return false;  // EIO: the child side is closed
      seen_.append(buf, static_cast<size_t>(n));
    }
  }
  // Exit status of lockstep once the shell exited.
  int wait_exit() {
    // Drain until EOF so that lockstep never blocks writing.
    (void)wait_for("\x01never\x01", std::chrono::seconds(20));
    int status = 0;
    if (::waitpid(pid_, &status, 0) != pid_) return -1;
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  const std::string& seen() const { return seen_; }

 private:
  int master_ = -1;
  pid_t pid_ = -1;
  std::string seen_;
  size_t pos_ = 0;
};

TEST(ShellResizeTest, WindowSizeChangesReachTheContainer) {
  if (!is_root()) GTEST_SKIP() << "needs root: containers use mount/pid/net namespaces";
  LockstepHome home;
  ASSERT_FALSE(home.import_busybox("localhost/busybox:resize").empty());
  PtySession s(home, "localhost/busybox:resize", 24, 80);
  ASSERT_TRUE(s.started());

  // The size at the start is passed on.
  s.type("echo \"size=$(stty size)\"\n");
  ASSERT_TRUE(s.wait_for("size=24 80", std::chrono::seconds(30))) << s.seen();

  // After a resize the shell inside sees the new size. The signal and the
  // typed line race inside lockstep, so ask again until it shows (or not).
  for (auto [rows, cols] : {std::pair<unsigned short, unsigned short>{40, 132}, {15, 61}}) {
    s.resize(rows, cols);
    std::string want = "size=" + std::to_string(rows) + " " + std::to_string(cols);
    bool got = false;
    for (int i = 0; i < 20 && !got; ++i) {
      s.type("echo \"size=$(stty size)\"\n");
      got = s.wait_for(want, std::chrono::milliseconds(500));
    }
    EXPECT_TRUE(got) << want << " never appeared:\n" << s.seen();
  }
  // The program in the foreground inside is told (SIGWINCH from the
  // container's pty).
  s.type(
      "sh -c 'trap \"echo got-winch; exit 0\" WINCH; echo wait''ing; "
      "while :; do sleep 0.1; done'\n");
  ASSERT_TRUE(s.wait_for("waiting", std::chrono::seconds(10))) << s.seen();
  s.resize(30, 90);
  EXPECT_TRUE(s.wait_for("got-winch", std::chrono::seconds(10))) << s.seen();

  s.type("exit 3\n");
  EXPECT_EQ(s.wait_exit(), 3) << s.seen();
}

}  // namespace
}  // namespace lockstep::testing
