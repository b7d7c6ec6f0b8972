#include "executor/interactive.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include "executor/child_util.hpp"
#include "executor/container.hpp"

namespace lockstep::executor {
namespace {

// Restores the terminal's mode on scope exit.
class RawMode {
 public:
  explicit RawMode(int fd) : fd_(fd) {
    if (!::isatty(fd) || ::tcgetattr(fd, &saved_) != 0) return;
    struct termios raw = saved_;
    ::cfmakeraw(&raw);
    active_ = ::tcsetattr(fd, TCSANOW, &raw) == 0;
  }
  ~RawMode() {
    if (active_) ::tcsetattr(fd_, TCSANOW, &saved_);
  }
  RawMode(const RawMode&) = delete;
  RawMode& operator=(const RawMode&) = delete;

 private:
  int fd_;
  struct termios saved_ {};
  bool active_ = false;
};

// SIGWINCH on our side: the handler (any thread may run it) writes a byte
// to a pipe that the session's loop polls, and the loop copies the new size
// to the container's pty, whose kernel side signals the foreground process
// group inside. One session per process at a time.
std::atomic<int> g_winch_fd{-1};

void on_winch(int) {
  int saved = errno;
  int fd = g_winch_fd.load(std::memory_order_relaxed);
  if (fd >= 0) {
    char b = 'w';
    (void)!::write(fd, &b, 1);
  }
  errno = saved;
}

class WinchWatch {
 public:
  WinchWatch() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return;
    read_ = UniqueFd(p[0]);
    write_ = UniqueFd(p[1]);
    int expected = -1;
    if (!g_winch_fd.compare_exchange_strong(expected, write_.get())) {
      read_.reset();  // another session watches already
      return;
    }
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_winch;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    installed_ = ::sigaction(SIGWINCH, &sa, &old_) == 0;
  }
  ~WinchWatch() {
    if (installed_) ::sigaction(SIGWINCH, &old_, nullptr);
    if (read_) g_winch_fd.store(-1);
  }
  WinchWatch(const WinchWatch&) = delete;
  WinchWatch& operator=(const WinchWatch&) = delete;

  int fd() const { return read_ ? read_.get() : -1; }
  void drain() const {
    char buf[64];
    while (::read(read_.get(), buf, sizeof buf) > 0) {
    }
  }

 private:
  UniqueFd read_, write_;
  struct sigaction old_ {};
  bool installed_ = false;
};

// Copies the window size of our terminal (`in_fd`, else `out_fd`) to the
// pty master. TIOCSWINSZ sends SIGWINCH to the pty's foreground group when
// the size changed.
void copy_window_size(int in_fd, int out_fd, int master) {
  struct winsize ws;
  for (int fd : {in_fd, out_fd})
    if (::isatty(fd) && ::ioctl(fd, TIOCGWINSZ, &ws) == 0) {
      ::ioctl(master, TIOCSWINSZ, &ws);
      return;
    }
}

}  // namespace

Result<int> run_interactive(Container& container, ProcessSpec spec, int in_fd, int out_fd) {
  auto* lc = dynamic_cast<detail::LinuxContainer*>(&container);
  if (lc == nullptr)
    return fail("run_interactive needs a Linux container", ErrorKind::kUnsupported);
  spec.tty = true;
  // The pty comes from the container's own devpts instance, so that the
  // process sees a terminal that exists in its /dev/pts.
  LS_TRY_ASSIGN(UniqueFd root, lc->open_root());
  UniqueFd master(detail::openat2_resolve(root.get(), "dev/pts/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC,
                                          RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS));
  if (!master) return fail_errno("open /dev/pts/ptmx in container " + container.id());
  if (::unlockpt(master.get()) != 0) return fail_errno("unlock the pseudo terminal");
  UniqueFd slave(::ioctl(master.get(), TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!slave) return fail_errno("open the pseudo terminal's peer");
  // Watch for resizes before taking the first size, so that none is lost.
  WinchWatch winch;
  copy_window_size(in_fd, out_fd, master.get());

  LS_TRY_ASSIGN(auto sp, lc->spawn(spec, slave.get(), slave.get(), slave.get()));
  slave.reset();
  RawMode raw(in_fd);

  char buf[16384];
  bool in_open = true;
  siginfo_t si;
  std::memset(&si, 0, sizeof si);
  for (;;) {
    struct pollfd p[4] = {{master.get(), POLLIN, 0},
                          {sp.pidfd.get(), POLLIN, 0},
                          {in_open ? in_fd : -1, POLLIN, 0},
                          {winch.fd(), POLLIN, 0}};
    if (::poll(p, 4, -1) < 0) {
      if (errno == EINTR) continue;
      return fail_errno("poll");
    }
    if (p[3].revents) {
      winch.drain();
      copy_window_size(in_fd, out_fd, master.get());
    }
    if (p[0].revents) {
      ssize_t n = ::read(master.get(), buf, sizeof buf);
      if (n > 0) (void)detail::write_all(out_fd, buf, static_cast<size_t>(n));
    }
    if (p[2].revents) {
      ssize_t n = ::read(in_fd, buf, sizeof buf);
      if (n > 0) {
        (void)detail::write_all(master.get(), buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        in_open = false;
        char eot = 4;  // our input ended: the terminal's end-of-file
        (void)detail::write_all(master.get(), &eot, 1);
      }
    }
    if (p[1].revents) {
      while (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(sp.pidfd.get()), &si,
                      WEXITED) != 0) {
        if (errno != EINTR) return fail_errno("wait for the interactive process");
      }
      break;
    }
  }
  // Deliver what the process wrote before it exited.
  for (;;) {
    struct pollfd p = {master.get(), POLLIN, 0};
    if (::poll(&p, 1, 0) <= 0) break;
    ssize_t n = ::read(master.get(), buf, sizeof buf);
    if (n <= 0) break;
    (void)detail::write_all(out_fd, buf, static_cast<size_t>(n));
  }
  return si.si_code == CLD_EXITED ? si.si_status : 128 + si.si_status;
}

}  // namespace lockstep::executor
