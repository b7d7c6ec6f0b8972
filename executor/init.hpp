#pragma once
// pid 1 of every container. It is the cloned child itself (never an exec of
// the lockstep binary) and made non-dumpable, so /proc/1/exe cannot be opened
// from inside the container (CVE-2019-5736). After setting up the container it
// runs an allocation-free loop: reap zombies, forward SIGTERM/SIGINT to every
// process of the container, and obey one-byte commands from the runner. When
// the runner's end of the command pipe closes (stop(), or the runner died) it
// kills everything and exits, which takes the whole pid namespace with it.
#include <string>
#include <vector>

#include "executor/rootfs.hpp"

namespace lockstep::executor::detail {

// Commands on the control pipe (runner -> init).
inline constexpr char kCtlTerm = 'T';      // SIGTERM every other process
inline constexpr char kCtlKill = 'K';      // SIGKILL every other process
inline constexpr char kCtlKillWait = 'W';  // SIGKILL all, reap own children, ack
inline constexpr char kAck = 'k';          // init -> runner, after kCtlKillWait

enum InitFailure {
  kInitCgroup = 100,
  kInitFds,
  kInitCgroupNs,
  kInitJoinNetns,
  kInitLoopback,
  kInitHostname,
  kInitSignals,
  kInitTrees,       // receiving the detached mounts (user namespace)
  kInitJoinUserns,  // rootless: joining the process's user namespace
  kInitClone,       // rootless: cloning the init from the intermediate
  kInitSendRoot,    // rootless: sending "/" to the runner
};

struct InitPlan {
  RootfsPlan rootfs;
  std::string hostname;
  std::string domainname;    // the UTS (NIS) domain name; empty: left as "(none)"
  bool loopback_up = false;  // a new network namespace: bring `lo` up
  bool new_cgroup_ns = true;
  // Cgroup::join_files() of the container's cgroup, open (owned by the caller).
  std::vector<int> cgroup_procs;
  // A user namespace: before setting up the rootfs the init waits on the
  // control channel for the runner to write its id maps and send the
  // detached mounts of rootfs.trees (kCtlTrees messages with SCM_RIGHTS,
  // then kCtlGo). tree_fds (allocated by the caller, one per tree) receives
  // them.
  int* tree_fds = nullptr;
};

inline constexpr char kCtlTrees = 'F';  // carries descriptors
inline constexpr char kCtlGo = 'G';     // every descriptor sent
// Rootless: after its mounts the init sends its "/" and these namespaces
// (in this order, the order an exec joins them: the user namespace first,
// the mount namespace last); the runner may not open /proc/<init>/ of a
// non-dumpable process, nor setns() through its pidfd.
inline constexpr const char* kRootlessNs[] = {"user", "cgroup", "ipc", "uts", "net", "pid", "mnt"};
inline constexpr size_t kRootlessNsCount = sizeof kRootlessNs / sizeof kRootlessNs[0];
inline constexpr size_t kRootlessNetIndex = 4;

// Child entry after clone3(CLONE_NEWNS|NEWPID|NEWUTS|NEWIPC[|NEWNET][|NEWUSER]).
// ctl_fd: read end of the control pipe; report_fd: write end of the report
// pipe (a ChildReport, then acks); netns_fd: a network namespace to join, or -1.
[[noreturn]] void container_init_main(const InitPlan& plan, int ctl_fd, int report_fd,
                                      int netns_fd) noexcept;

// Parent side: text for a failed step reported by the init.
std::string describe_init_failure(const InitPlan& plan, int step, int detail);

}  // namespace lockstep::executor::detail
