#pragma once
// pid 1 of every container, in two parts. The child the executor clones sets
// the container up (cgroup, namespaces, rootfs: container_init_main) and then
// execs the init program (executor/init_program/, a small static binary kept
// in a sealed memfd), which stays pid 1 for the container's life: it is never
// the lockstep binary, and it makes itself non-dumpable at once, so /proc/1/exe
// cannot be opened from inside the container (CVE-2019-5736) and, sealed, the
// memfd could not be written anyway. The init program runs an allocation-free
// loop: reap zombies, forward SIGTERM/SIGINT to every process of the
// container, and obey one-byte commands from the runner. When the runner's end
// of the command pipe closes (stop(), or the runner died) it kills everything
// and exits, which takes the whole pid namespace with it.
#include <string>
#include <vector>

#include "common/error.hpp"
#include "executor/init_protocol.hpp"
#include "executor/rootfs.hpp"

namespace lockstep::executor::detail {

struct InitPlan {
  RootfsPlan rootfs;
  std::string hostname;
  std::string domainname;    // the UTS (NIS) domain name; empty: left as "(none)"
  bool loopback_up = false;  // a new network namespace: bring `lo` up
  bool new_cgroup_ns = true;
  // Cgroup::join_files() of the container's cgroup, open (owned by the caller).
  std::vector<int> cgroup_procs;
  // Cloned into its cgroup (CLONE_INTO_CGROUP): cgroup_procs is not written.
  bool born_in_cgroup = false;
  // A user namespace: before setting up the rootfs the init waits on the
  // control channel for the runner to write its id maps and send the
  // detached mounts of rootfs.trees (kCtlTrees messages with SCM_RIGHTS,
  // then kCtlGo). tree_fds (allocated by the caller, one per tree) receives
  // them.
  int* tree_fds = nullptr;
  // init_program_fd(): what the child execs once the container is set up.
  int program_fd = -1;
};

// The init program in a sealed memfd, made on first use and kept open (close
// on exec) for the life of the process.
Result<int> init_program_fd();

// Rootless: after its mounts the init sends its "/" and these namespaces
// (in this order, the order an exec joins them: the user namespace first,
// the mount namespace last); the runner may not open /proc/<init>/ of a
// non-dumpable process, nor setns() through its pidfd.
inline constexpr const char* kRootlessNs[] = {"user", "cgroup", "ipc", "uts", "net", "pid", "mnt"};
inline constexpr size_t kRootlessNsCount = sizeof kRootlessNs / sizeof kRootlessNs[0];
inline constexpr size_t kRootlessNetIndex = 4;

// Child entry after clone(CLONE_NEWNS|NEWPID|NEWUTS|NEWIPC[|NEWNET][|NEWUSER]),
// a fork or sharing the runner's memory (then until its exec, with every
// signal blocked). ctl_fd: read end of the control pipe; report_fd: write end
// of the report pipe (a ChildReport, then acks); netns_fd: a network namespace
// to join, or -1. Ends in the exec of plan.program_fd; all allocation-free.
[[noreturn]] void container_init_main(const InitPlan& plan, int ctl_fd, int report_fd,
                                      int netns_fd) noexcept;

// Parent side: text for a failed step reported by the init.
std::string describe_init_failure(const InitPlan& plan, int step, int detail);

}  // namespace lockstep::executor::detail
