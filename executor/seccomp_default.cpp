// lockstep's built-in seccomp profile. The policy follows Docker's default
// profile: allow what an unprivileged process may do anyway, refuse (EPERM)
// everything else, and allow a syscall that needs a capability only when the
// container holds that capability (so cap_add keeps working). The list is
// written here by concern; names unknown to an architecture are skipped by
// the compiler, so 32-bit and 64-bit names can share one list.
//
// Changing this list changes what jobs observe: bump kProtocolVersion.
#include <linux/sched.h>
#include <sys/personality.h>
#include <sys/socket.h>

#include "executor/seccomp_profile.hpp"

namespace lockstep::executor::seccomp {
namespace {

// Allowed for every container.
// clang-format off
constexpr const char* kAllowed[] = {
    // files and descriptors
    "access", "faccessat", "faccessat2", "open", "openat", "openat2", "creat", "close",
    "close_range", "read", "readv", "pread64", "preadv", "preadv2", "write", "writev", "pwrite64",
    "pwritev", "pwritev2", "lseek", "_llseek", "dup", "dup2", "dup3", "fcntl", "fcntl64", "flock",
    "fsync", "fdatasync", "syncfs", "sync", "sync_file_range", "sync_file_range2",
    "arm_sync_file_range", "truncate", "truncate64", "ftruncate", "ftruncate64", "fallocate",
    "fadvise64", "fadvise64_64", "arm_fadvise64_64", "readahead", "sendfile", "sendfile64",
    "splice", "tee", "vmsplice", "copy_file_range", "pipe", "pipe2", "ioctl",
    // metadata and directories
    "stat", "stat64", "lstat", "lstat64", "fstat", "fstat64", "newfstatat", "fstatat64", "statx",
    "statfs", "statfs64", "fstatfs", "fstatfs64", "ustat", "getdents", "getdents64", "readdir",
    "getcwd", "chdir", "fchdir", "mkdir", "mkdirat", "rmdir", "rename", "renameat", "renameat2",
    "link", "linkat", "unlink", "unlinkat", "symlink", "symlinkat", "readlink", "readlinkat",
    "mknod", "mknodat", "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "chown32", "fchown",
    "fchown32", "lchown", "lchown32", "fchownat", "umask", "utime", "utimes", "futimesat",
    "utimensat", "utimensat_time64", "getxattr", "lgetxattr", "fgetxattr", "setxattr",
    "lsetxattr", "fsetxattr", "listxattr", "llistxattr", "flistxattr", "removexattr",
    "lremovexattr", "fremovexattr", "inotify_init", "inotify_init1", "inotify_add_watch",
    "inotify_rm_watch", "fanotify_mark", "memfd_create",
    // memory
    "brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "pkey_mprotect", "pkey_alloc",
    "pkey_free", "msync", "mincore", "madvise", "mlock", "mlock2", "munlock", "mlockall",
    "munlockall", "remap_file_pages", "membarrier", "memfd_secret", "map_shadow_stack",
    "cachestat", "mseal",
    // processes and threads
    "fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid", "waitpid",
    "getpid", "getppid", "gettid", "getpgid", "setpgid", "getpgrp", "getsid", "setsid",
    "set_tid_address", "set_robust_list", "get_robust_list", "rseq", "restart_syscall",
    "arch_prctl", "set_thread_area", "get_thread_area", "modify_ldt", "set_tls", "get_tls",
    "prctl", "seccomp", "capget", "capset", "getrlimit", "ugetrlimit", "setrlimit", "prlimit64",
    "getrusage", "times", "getpriority", "setpriority", "sched_yield", "sched_getaffinity",
    "sched_setaffinity", "sched_getparam", "sched_setparam", "sched_getscheduler",
    "sched_setscheduler", "sched_getattr", "sched_setattr", "sched_get_priority_max",
    "sched_get_priority_min", "sched_rr_get_interval", "sched_rr_get_interval_time64",
    "ioprio_get", "ioprio_set", "getcpu", "pidfd_open", "pidfd_send_signal", "process_mrelease",
    "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self", "breakpoint",
    "cacheflush", "riscv_flush_icache",
    // credentials (the kernel checks CAP_SETUID/CAP_SETGID itself)
    "getuid", "getuid32", "geteuid", "geteuid32", "getgid", "getgid32", "getegid", "getegid32",
    "getresuid", "getresuid32", "getresgid", "getresgid32", "getgroups", "getgroups32", "setuid",
    "setuid32", "setgid", "setgid32", "setreuid", "setreuid32", "setregid", "setregid32",
    "setresuid", "setresuid32", "setresgid", "setresgid32", "setfsuid", "setfsuid32", "setfsgid",
    "setfsgid32", "setgroups", "setgroups32",
    // signals
    "kill", "tkill", "tgkill", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending",
    "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_sigqueueinfo",
    "rt_tgsigqueueinfo", "sigaction", "sigprocmask", "sigreturn", "sigpending", "sigsuspend",
    "signal", "sigaltstack", "signalfd", "signalfd4", "pause", "alarm",
    // time (reading, sleeping and timers; setting the clock needs CAP_SYS_TIME)
    "time", "gettimeofday", "clock_gettime", "clock_gettime64", "clock_getres",
    "clock_getres_time64", "clock_nanosleep", "clock_nanosleep_time64", "nanosleep", "getitimer",
    "setitimer", "timer_create", "timer_settime", "timer_settime64", "timer_gettime",
    "timer_gettime64", "timer_getoverrun", "timer_delete", "timerfd_create", "timerfd_settime",
    "timerfd_settime64", "timerfd_gettime", "timerfd_gettime64",
    // waiting and events
    "select", "_newselect", "pselect6", "pselect6_time64", "poll", "ppoll", "ppoll_time64",
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2",
    "eventfd", "eventfd2", "futex", "futex_time64", "futex_waitv", "futex_wake", "futex_wait",
    "futex_requeue", "io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents",
    "io_pgetevents", "io_pgetevents_time64",
    // IPC (inside the container's own IPC namespace)
    "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semctl", "semtimedop",
    "semtimedop_time64", "msgget", "msgsnd", "msgrcv", "msgctl", "ipc", "mq_open", "mq_unlink",
    "mq_timedsend", "mq_timedsend_time64", "mq_timedreceive", "mq_timedreceive_time64",
    "mq_notify", "mq_getsetattr",
    // networking (socket() itself is conditional below)
    "socketpair", "socketcall", "bind", "listen", "connect", "accept", "accept4", "getsockname",
    "getpeername", "getsockopt", "setsockopt", "shutdown", "send", "sendto", "sendmsg",
    "sendmmsg", "recv", "recvfrom", "recvmsg", "recvmmsg", "recvmmsg_time64",
    // system information
    "uname", "sysinfo", "getrandom",
};
// clang-format on

// Allowed only when the container holds the capability the kernel checks.
struct CapRule {
  const char* cap;
  std::vector<std::string> names;
};
const CapRule kByCapability[] = {
    {"CAP_SYS_ADMIN",
     {"bpf",
      "fanotify_init",
      "fsconfig",
      "fsmount",
      "fsopen",
      "fspick",
      "lookup_dcookie",
      "mount",
      "mount_setattr",
      "move_mount",
      "name_to_handle_at",
      "open_tree",
      "perf_event_open",
      "quotactl",
      "quotactl_fd",
      "setdomainname",
      "sethostname",
      "setns",
      "syslog",
      "umount",
      "umount2",
      "unshare",
      "clone",
      "clone3"}},
    {"CAP_SYS_BOOT", {"reboot"}},
    {"CAP_SYS_CHROOT", {"chroot"}},
    {"CAP_SYS_MODULE", {"init_module", "finit_module", "delete_module"}},
    {"CAP_SYS_PACCT", {"acct"}},
    {"CAP_SYS_PTRACE",
     {"ptrace", "kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev"}},
    {"CAP_SYS_RAWIO", {"iopl", "ioperm"}},
    {"CAP_SYS_TIME",
     {"settimeofday", "stime", "clock_settime", "clock_settime64", "adjtimex", "clock_adjtime",
      "clock_adjtime64"}},
    {"CAP_SYS_TTY_CONFIG", {"vhangup"}},
    {"CAP_SYS_NICE", {"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"}},
    {"CAP_SYSLOG", {"syslog"}},
    {"CAP_BPF", {"bpf"}},
    {"CAP_PERFMON", {"perf_event_open"}},
    {"CAP_DAC_READ_SEARCH", {"open_by_handle_at"}},
};

// clone flags that create namespaces; without CAP_SYS_ADMIN a clone carrying
// any of them is refused.
constexpr uint64_t kNamespaceFlags = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC |
                                     CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET;
static_assert(kNamespaceFlags == 0x7E020000);

constexpr int kEnosys = 38;

Rule allow(std::vector<std::string> names) {
  Rule r;
  r.names = std::move(names);
  r.action = "SCMP_ACT_ALLOW";
  return r;
}

}  // namespace

Profile default_profile() {
  Profile p;
  p.default_action = "SCMP_ACT_ERRNO";
  p.default_errno_ret = 1;  // EPERM
  p.arch_map = {
      // 32-bit x86 binaries keep working. x32 is left out: distributions boot
      // with it disabled, almost nothing uses it, and it would double the
      // filter; its syscalls hit the bad-architecture action (kill).
      {"SCMP_ARCH_X86_64", {"SCMP_ARCH_X86"}},
      {"SCMP_ARCH_AARCH64", {"SCMP_ARCH_ARM"}},
      {"SCMP_ARCH_RISCV64", {}},
  };
  p.rules.push_back(allow({std::begin(kAllowed), std::end(kAllowed)}));

  // personality: only the values that change nothing dangerous (Linux,
  // 32-bit Linux, UNAME26 and the query).
  for (uint64_t v : {uint64_t{PER_LINUX}, uint64_t{PER_LINUX32}, uint64_t{UNAME26},
                     uint64_t{UNAME26} | uint64_t{PER_LINUX32}, uint64_t{0xffffffff}}) {
    Rule r = allow({"personality"});
    r.args.push_back({0, v, 0, "SCMP_CMP_EQ"});
    p.rules.push_back(r);
  }
  // socket: every family but AF_VSOCK (a path to the hypervisor's host).
  {
    Rule r = allow({"socket"});
    r.args.push_back({0, AF_VSOCK, 0, "SCMP_CMP_NE"});
    p.rules.push_back(r);
  }
  // clone without namespace flags; clone3 passes its flags in memory that a
  // filter cannot read, so it fails with ENOSYS and libc falls back to clone.
  {
    Rule r = allow({"clone"});
    r.args.push_back({0, kNamespaceFlags, 0, "SCMP_CMP_MASKED_EQ"});
    r.excludes.caps = {"CAP_SYS_ADMIN"};
    p.rules.push_back(r);
    Rule c3;
    c3.names = {"clone3"};
    c3.action = "SCMP_ACT_ERRNO";
    c3.errno_ret = kEnosys;
    c3.excludes.caps = {"CAP_SYS_ADMIN"};
    p.rules.push_back(c3);
  }
  for (const CapRule& c : kByCapability) {
    Rule r = allow(c.names);
    r.includes.caps = {c.cap};
    p.rules.push_back(r);
  }
  return p;
}

}  // namespace lockstep::executor::seccomp
