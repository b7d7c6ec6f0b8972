// lockstep-init: pid 1 of every container, after the executor's child has set
// the container up (executor/init.cpp) and exec'd this program from a sealed
// memfd. The child that sets the container up shares the runner's memory
// until this exec (no copy of the runner per container), and what stays in the
// container for its life is this, not the runner's binary and memory.
//
// Freestanding (no C library, raw system calls): its exec and start cost two
// page faults, where a static glibc program takes ten times the time to start.
// Made non-dumpable first thing, so nothing in the container may ptrace it or
// open /proc/1/exe. Then an allocation-free loop: reap zombies, forward
// SIGTERM/SIGINT to every process of the container, and obey one-byte commands
// from the runner. When the runner's end of the command channel closes (stop(),
// or the runner died) it kills everything and exits, which takes the whole pid
// namespace with it.
//
// Usage (by the executor only): lockstep-init CTL_FD REPORT_FD MOUNTS_BEGIN_NS
// MOUNTS_END_NS. Reports kReportOk (or kReportError, kInitSignals) on REPORT_FD.
#include <asm/unistd.h>
#include <linux/errno.h>
#include <linux/poll.h>
#include <linux/prctl.h>
#include <linux/signal.h>
#include <linux/signalfd.h>
#include <linux/wait.h>

#include <cstddef>
#include <cstdint>

#include "executor/init_protocol.hpp"

namespace {

using namespace lockstep::executor::detail;

// The layout of executor/child_util.hpp's ChildReport (checked there).
struct Report {
  int32_t kind;
  int32_t step;
  int32_t err;
  int32_t detail;
  int64_t value;
  int64_t mounts_begin_ns;
  int64_t mounts_end_ns;
};
static_assert(sizeof(Report) == 40);
constexpr int32_t kOk = 1;
constexpr int32_t kError = 2;

long sys(long n, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0) {
  long ret;
#if defined(__x86_64__)
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8)
                   : "rcx", "r11", "memory");
#elif defined(__aarch64__)
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  register long x4 __asm__("x4") = e;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4) : "memory");
  ret = x0;
#else
#error "lockstep-init: no system call sequence for this architecture"
#endif
  return ret;  // -errno on failure
}

[[noreturn]] void exit_now(int code) {
  for (;;) sys(__NR_exit_group, code);
}

void write_all(int fd, const void* buf, size_t len) {
  const char* p = static_cast<const char*>(buf);
  while (len > 0) {
    long n = sys(__NR_write, fd, reinterpret_cast<long>(p), static_cast<long>(len));
    if (n == -EINTR) continue;
    if (n <= 0) return;
    p += n;
    len -= static_cast<size_t>(n);
  }
}

int64_t parse_i64(const char* s) {
  int64_t v = 0;
  bool neg = *s == '-';
  if (neg) ++s;
  for (; *s >= '0' && *s <= '9'; ++s) v = v * 10 + (*s - '0');
  return neg ? -v : v;
}

uint64_t bit(int sig) {
  return uint64_t{1} << (sig - 1);
}

long reap(bool block) {
  return sys(__NR_wait4, -1, 0, block ? 0 : WNOHANG, 0);
}

void reap_all() {
  while (reap(false) > 0) {
  }
}

// SIGKILL every process of the namespace and wait until init has no child
// left. Forks racing with kill(-1) fail (their parent has SIGKILL pending), so
// no process survives; processes that are the runner's children (exec'd
// steps) are killed too and reaped by the runner.
void kill_all_and_reap() {
  sys(__NR_kill, -1, SIGKILL);
  for (;;) {
    long p = reap(true);
    if (p > 0 || p == -EINTR) continue;
    break;  // -ECHILD
  }
  sys(__NR_kill, -1, SIGKILL);
  reap_all();
}

[[noreturn]] void init_loop(int ctl_fd, int report_fd, int sig_fd) {
  struct pollfd pfd[2];
  pfd[0].fd = ctl_fd;
  pfd[0].events = POLLIN;
  pfd[1].fd = sig_fd;
  pfd[1].events = POLLIN;
  for (;;) {
    pfd[0].revents = pfd[1].revents = 0;
    if (sys(__NR_ppoll, reinterpret_cast<long>(pfd), 2, 0, 0, 0) < 0) continue;
    if (pfd[1].revents & POLLIN) {
      struct signalfd_siginfo si[8];
      long n = sys(__NR_read, sig_fd, reinterpret_cast<long>(si), sizeof si);
      for (long i = 0; i < n / static_cast<long>(sizeof si[0]); ++i) {
        int sig = static_cast<int>(si[i].ssi_signo);
        if (sig == SIGTERM || sig == SIGINT) sys(__NR_kill, -1, sig);
      }
      reap_all();
    }
    if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      char cmd;
      long n = sys(__NR_read, ctl_fd, reinterpret_cast<long>(&cmd), 1);
      if (n == -EINTR) continue;
      if (n <= 0) {  // the runner is gone or stopping us
        sys(__NR_kill, -1, SIGKILL);
        exit_now(0);
      }
      if (cmd == kCtlTerm) {
        sys(__NR_kill, -1, SIGTERM);
      } else if (cmd == kCtlKill) {
        sys(__NR_kill, -1, SIGKILL);
      } else if (cmd == kCtlKillWait) {
        kill_all_and_reap();
        char ack = kAck;
        write_all(report_fd, &ack, 1);
      }
    }
  }
}

}  // namespace

// Called by _start with the initial stack: argc, argv[], nullptr, envp[]...
extern "C" [[noreturn]] void lockstep_init_main(long* sp) {
  // An exec makes a process dumpable again: undo that before anything else.
  // (Nothing else runs in the container yet: the runner spawns the first
  // process after our report.)
  sys(__NR_prctl, PR_SET_DUMPABLE, 0);
  // The name `ps` shows (an exec from a memfd is named "memfd:...").
  static const char kName[] = "lockstep-init";
  sys(__NR_prctl, PR_SET_NAME, reinterpret_cast<long>(kName));
  const long argc = sp[0];
  char** argv = reinterpret_cast<char**>(sp + 1);
  if (argc != 5) exit_now(125);
  const int ctl_fd = static_cast<int>(parse_i64(argv[1]));
  const int report_fd = static_cast<int>(parse_i64(argv[2]));
  Report report{kError, kInitSignals, 0, -1, 0, 0, 0};
  uint64_t all = ~uint64_t{0};
  long r = sys(__NR_rt_sigprocmask, SIG_BLOCK, reinterpret_cast<long>(&all), 0, sizeof all);
  uint64_t watched = bit(SIGCHLD) | bit(SIGTERM) | bit(SIGINT);
  long sig_fd = r < 0 ? r
                      : sys(__NR_signalfd4, -1, reinterpret_cast<long>(&watched), sizeof watched,
                            SFD_CLOEXEC | SFD_NONBLOCK);
  if (sig_fd < 0) {
    report.err = static_cast<int32_t>(-sig_fd);
    write_all(report_fd, &report, sizeof report);
    exit_now(125);
  }
  Report ok{kOk, 0, 0, -1, 0, parse_i64(argv[3]), parse_i64(argv[4])};
  write_all(report_fd, &ok, sizeof ok);
  init_loop(ctl_fd, report_fd, static_cast<int>(sig_fd));
}

// The entry point: the kernel leaves argc at the stack pointer.
#if defined(__x86_64__)
__asm__(
    ".text\n.global _start\n_start:\n"
    "  xor %rbp, %rbp\n  mov %rsp, %rdi\n  and $-16, %rsp\n  call lockstep_init_main\n  hlt\n");
#elif defined(__aarch64__)
__asm__(
    ".text\n.global _start\n_start:\n"
    "  mov x29, #0\n  mov x30, #0\n  mov x0, sp\n  bl lockstep_init_main\n  brk #0\n");
#endif

// What the compiler may call for copies and zeroing of the structs above.
extern "C" void* memset(void* d, int c, size_t n) {
  auto* p = static_cast<unsigned char*>(d);
  while (n-- > 0) *p++ = static_cast<unsigned char>(c);
  return d;
}
extern "C" void* memcpy(void* d, const void* s, size_t n) {
  auto* p = static_cast<unsigned char*>(d);
  const auto* q = static_cast<const unsigned char*>(s);
  while (n-- > 0) *p++ = *q++;
  return d;
}
