#pragma once
// Primitives for code that runs between clone() and execve() in a child of the
// (multithreaded) runner. Everything here is async-signal-safe: raw system
// calls, no allocation, no locks, no stdio. Parents prepare every string and
// array beforehand; children only read them.
#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace lockstep::executor::detail {

// clone3(2) without a new stack (fork-like). Returns the child's pid in the
// parent (and its pidfd in *pidfd when pidfd != nullptr), 0 in the child, -1
// with errno on failure. `flags` are CLONE_* bits; SIGCHLD is the exit signal.
// cgroup_fd >= 0: CLONE_INTO_CGROUP, the child starts in that cgroup v2
// (Cgroup::v2_dir_fd()) instead of moving itself in, which on v2 would take
// the write side of the kernel's threadgroup rwsem (an RCU grace period).
pid_t clone3_fork(uint64_t flags, int* pidfd, int cgroup_fd = -1) noexcept;

// clone3(2) with a stack of the caller's (for CLONE_VM): the child runs
// fn(arg) on [stack, stack + stack_size) and exits with its return value.
// cgroup_fd and pidfd as for clone3_fork; the exit signal is SIGCHLD. Returns
// the child's pid, or -1 with errno (ENOSYS where this build has no clone3
// entry for the architecture, or the kernel none).
pid_t clone3_on_stack(uint64_t flags, int cgroup_fd, int* pidfd, char* stack, size_t stack_size,
                      int (*fn)(void*), void* arg) noexcept;

// Whether an error of clone3_on_stack() / clone3_fork() with a cgroup means
// this kernel lacks clone3 or CLONE_INTO_CGROUP (Linux 5.7): then clone and
// move the child into its cgroup instead.
bool clone3_unsupported(int err) noexcept;

// openat2(2) with RESOLVE_* flags.
int openat2_resolve(int dirfd, const char* path, int flags, uint64_t resolve,
                    mode_t mode = 0) noexcept;

// pidfd_open(2) and pidfd_send_signal(2) as raw system calls (glibc 2.36's
// <sys/pidfd.h> lacks C linkage for C++).
int pidfd_open(pid_t pid) noexcept;
int pidfd_send_signal(int pidfd, int sig) noexcept;

// write(2) of the whole buffer, retrying on EINTR/short writes. 0 or errno.
int write_all(int fd, const void* buf, size_t len) noexcept;
// read(2) of exactly len bytes. Returns bytes read (short only at EOF) or -1.
ssize_t read_full(int fd, void* buf, size_t len) noexcept;

// A one-way channel parent -> child that cannot raise SIGPIPE in the runner
// when the child died: a socketpair written with send(MSG_NOSIGNAL).
// fds[0] is the child's (read) end, fds[1] the parent's. 0 or errno.
int make_channel(int fds[2]) noexcept;
// Sends one byte on a channel. 0 or errno (EPIPE: the child is gone).
int send_byte(int fd, char c) noexcept;

// Moves the calling process into a cgroup by writing "0" to each of its
// Cgroup::join_files() (one per v1 hierarchy; one on v2), opened by the parent.
// The caller must be single-threaded (on v1 they move one thread).
// Cheaper than the parent attaching the child's pid: no round trip. 0 or errno.
int join_cgroup(const int* procs_fds, size_t n) noexcept;

// Writes "/proc/self/fd/<fd>" into buf (at least 32 bytes).
void proc_fd_path(int fd, char* buf) noexcept;

// Moves fds[0..n) to 3..3+n and closes every other descriptor >= 3. Each
// fds[i] is updated to its new number. 0 or errno.
int keep_only_fds(int* fds, int n) noexcept;

// What a child reports to its parent over a CLOEXEC pipe: the failed step,
// errno, and an index into a table of details the parent prepared (-1: none).
struct ChildReport {
  int32_t kind;  // kReportOk, kReportError, kReportPid
  int32_t step;
  int32_t err;
  int32_t detail;
  int64_t value;  // kReportPid: the pid
  // kReportOk from the init: CLOCK_MONOTONIC (ns) before and after the
  // rootfs was set up, for the cost split of a start.
  int64_t mounts_begin_ns;
  int64_t mounts_end_ns;
};

// CLOCK_MONOTONIC in nanoseconds (vDSO; async-signal-safe).
int64_t monotonic_ns() noexcept;
inline constexpr int32_t kReportOk = 1;
inline constexpr int32_t kReportError = 2;
inline constexpr int32_t kReportPid = 3;

// Reports {step, err, detail} on fd and exits with status 127.
[[noreturn]] void child_fail(int fd, int step, int err, int detail = -1) noexcept;

}  // namespace lockstep::executor::detail
