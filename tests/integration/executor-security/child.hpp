#pragma once
// A forked test child that waits at a gate until the parent has put it in a
// cgroup, then runs a body. The owner kills and reaps it on destruction, so a
// failing test leaves no process behind.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>

namespace lockstep::executor::testing {

class GatedChild {
 public:
  // Forks; the child blocks until release(), then runs body and _exits with
  // its return value.
  explicit GatedChild(const std::function<int()>& body) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(fds[1]);
      char c;
      if (::read(fds[0], &c, 1) != 1) ::_exit(120);
      ::_exit(body());
    }
    ::close(fds[0]);
    gate_ = fds[1];
  }
  GatedChild(const GatedChild&) = delete;
  GatedChild& operator=(const GatedChild&) = delete;
  ~GatedChild() {
    if (gate_ >= 0) ::close(gate_);
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  pid_t pid() const { return pid_; }
  bool release() {
    const bool ok = ::write(gate_, "x", 1) == 1;
    ::close(gate_);
    gate_ = -1;
    return ok;
  }
  // waitpid status.
  int wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    reaped_ = true;
    return status;
  }

 private:
  pid_t pid_ = -1;
  int gate_ = -1;
  bool reaped_ = false;
};

}  // namespace lockstep::executor::testing
