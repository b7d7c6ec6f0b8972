#include "executor/child_util.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>

namespace lockstep::executor::detail {

pid_t clone3_fork(uint64_t flags, int* pidfd, int cgroup_fd) noexcept {
  struct clone_args args;
  std::memset(&args, 0, sizeof args);
  args.flags = flags;
  // With CLONE_PARENT the kernel takes the exit signal from the caller (our
  // SIGCHLD) and refuses any other value.
  args.exit_signal = (flags & CLONE_PARENT) ? 0 : SIGCHLD;
  if (pidfd != nullptr) {
    args.flags |= CLONE_PIDFD;
    args.pidfd = reinterpret_cast<uint64_t>(pidfd);
  }
  if (cgroup_fd >= 0) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = static_cast<uint64_t>(cgroup_fd);
  }
  return static_cast<pid_t>(::syscall(SYS_clone3, &args, sizeof args));
}

}  // namespace lockstep::executor::detail

// The child of a clone3 with a new stack returns from the system call on that
// stack, with nothing to return to: it must call its function from here.
// lockstep_clone3_on_stack(args, size, fn, arg): the raw result (pid, or
// -errno) in the parent; fn(arg) then exit in the child.
extern "C" long lockstep_clone3_on_stack(void* args, size_t size, int (*fn)(void*), void* arg);
#if defined(__x86_64__)
__asm__(
    ".text\n"
    ".globl lockstep_clone3_on_stack\n"
    ".type lockstep_clone3_on_stack, @function\n"
    "lockstep_clone3_on_stack:\n"
    "  mov %rdx, %r8\n"  // fn and arg survive the system call in r8, r9
    "  mov %rcx, %r9\n"
    "  mov $435, %eax\n"  // __NR_clone3
    "  syscall\n"
    "  test %rax, %rax\n"
    "  jnz 1f\n"
    "  xor %ebp, %ebp\n"  // the child, on its own stack (16-byte aligned)
    "  mov %r9, %rdi\n"
    "  call *%r8\n"
    "  mov %eax, %edi\n"
    "  mov $60, %eax\n"  // __NR_exit
    "  syscall\n"
    "  hlt\n"
    "1:\n"
    "  ret\n"
    ".size lockstep_clone3_on_stack, .-lockstep_clone3_on_stack\n");
#define LOCKSTEP_HAVE_CLONE3_ON_STACK 1
#elif defined(__aarch64__)
__asm__(
    ".text\n"
    ".globl lockstep_clone3_on_stack\n"
    ".type lockstep_clone3_on_stack, %function\n"
    "lockstep_clone3_on_stack:\n"
    "  mov x9, x2\n"
    "  mov x10, x3\n"
    "  mov x8, #435\n"  // __NR_clone3
    "  svc #0\n"
    "  cbnz x0, 1f\n"
    "  mov x29, #0\n"
    "  mov x30, #0\n"
    "  mov x0, x10\n"
    "  blr x9\n"
    "  mov x8, #93\n"  // __NR_exit
    "  svc #0\n"
    "  brk #0\n"
    "1:\n"
    "  ret\n"
    ".size lockstep_clone3_on_stack, .-lockstep_clone3_on_stack\n");
#define LOCKSTEP_HAVE_CLONE3_ON_STACK 1
#endif

namespace lockstep::executor::detail {

pid_t clone3_on_stack(uint64_t flags, int cgroup_fd, int* pidfd, char* stack, size_t stack_size,
                      int (*fn)(void*), void* arg) noexcept {
#ifdef LOCKSTEP_HAVE_CLONE3_ON_STACK
  struct clone_args args;
  std::memset(&args, 0, sizeof args);
  args.flags = flags;
  args.exit_signal = SIGCHLD;
  args.stack = reinterpret_cast<uint64_t>(stack);
  args.stack_size = stack_size;
  if (pidfd != nullptr) {
    args.flags |= CLONE_PIDFD;
    args.pidfd = reinterpret_cast<uint64_t>(pidfd);
  }
  if (cgroup_fd >= 0) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = static_cast<uint64_t>(cgroup_fd);
  }
  long r = lockstep_clone3_on_stack(&args, sizeof args, fn, arg);
  if (r < 0) {
    errno = static_cast<int>(-r);
    return -1;
  }
  return static_cast<pid_t>(r);
#else
  (void)flags, (void)cgroup_fd, (void)pidfd, (void)stack, (void)stack_size, (void)fn, (void)arg;
  errno = ENOSYS;
  return -1;
#endif
}

bool clone3_unsupported(int err) noexcept {
  // ENOSYS: no clone3 (before 5.3); E2BIG: a struct clone_args larger than
  // the kernel knows (CLONE_INTO_CGROUP's field, before 5.7); EINVAL: a flag
  // it does not know. A real EINVAL comes back again from the fallback.
  return err == ENOSYS || err == E2BIG || err == EINVAL;
}

int openat2_resolve(int dirfd, const char* path, int flags, uint64_t resolve,
                    mode_t mode) noexcept {
  struct open_how how;
  std::memset(&how, 0, sizeof how);
  how.flags = static_cast<uint64_t>(flags);
  how.mode = mode;
  how.resolve = resolve;
  return static_cast<int>(::syscall(SYS_openat2, dirfd, path, &how, sizeof how));
}

int64_t monotonic_ns() noexcept {
  struct timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

int pidfd_open(pid_t pid) noexcept {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

int pidfd_send_signal(int pidfd, int sig) noexcept {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

int write_all(int fd, const void* buf, size_t len) noexcept {
  const char* p = static_cast<const char*>(buf);
  while (len > 0) {
    ssize_t n = ::write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  return 0;
}

ssize_t read_full(int fd, void* buf, size_t len) noexcept {
  char* p = static_cast<char*>(buf);
  size_t got = 0;
  while (got < len) {
    ssize_t n = ::read(fd, p + got, len - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  return static_cast<ssize_t>(got);
}

int make_channel(int fds[2]) noexcept {
  return ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0 ? 0 : errno;
}

int send_byte(int fd, char c) noexcept {
  for (;;) {
    ssize_t n = ::send(fd, &c, 1, MSG_NOSIGNAL);
    if (n == 1) return 0;
    if (n < 0 && errno == EINTR) continue;
    return n < 0 ? errno : EIO;
  }
}

int join_cgroup(const int* procs_fds, size_t n) noexcept {
  for (size_t i = 0; i < n; ++i) {
    if (int e = write_all(procs_fds[i], "0", 1); e != 0) return e;
  }
  return 0;
}

void proc_fd_path(int fd, char* buf) noexcept {
  static constexpr char kPrefix[] = "/proc/self/fd/";
  std::memcpy(buf, kPrefix, sizeof kPrefix - 1);
  char digits[16];
  int n = 0;
  unsigned v = static_cast<unsigned>(fd);
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  char* out = buf + sizeof kPrefix - 1;
  while (n > 0) *out++ = digits[--n];
  *out = '\0';
}

int keep_only_fds(int* fds, int n) noexcept {
  // First move every kept fd above the target range so that no dup2 below
  // clobbers a kept fd that has not been moved yet.
  for (int i = 0; i < n; ++i) {
    int tmp = ::fcntl(fds[i], F_DUPFD_CLOEXEC, 3 + n);
    if (tmp < 0) return errno;
    fds[i] = tmp;
  }
  for (int i = 0; i < n; ++i) {
    if (::dup3(fds[i], 3 + i, O_CLOEXEC) < 0) return errno;
    fds[i] = 3 + i;
  }
  if (::syscall(SYS_close_range, 3 + n, ~0U, 0) != 0) return errno;
  return 0;
}

void child_fail(int fd, int step, int err, int detail) noexcept {
  ChildReport r{kReportError, step, err, detail, 0, 0, 0};
  (void)write_all(fd, &r, sizeof r);
  ::_exit(127);
}

}  // namespace lockstep::executor::detail
