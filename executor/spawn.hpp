#pragma once
// Running a process inside a live container (docker exec semantics).
//
// The runner clones an intermediate child, which joins the container's
// cgroup (writing "0" to its Cgroup::join_files(), opened by the runner) and, being
// single-threaded (so setns of a mount namespace works), every namespace of
// the container through the init's pidfd and clones the real process with CLONE_PARENT, so that the
// process is the runner's own child inside the container's pid namespace. The
// process then takes its credentials, umask, working dir, rlimits,
// capabilities, no_new_privs and seccomp filter, closes every inherited
// descriptor and execs. Failures before exec come back as a ChildReport.
//
// Both children share the runner's memory (clone with CLONE_VM|CLONE_VFORK on
// stacks of their own, as posix_spawn does): a fork of the runner, a large
// multi-threaded process with hundreds of mappings, costs ~1 ms to copy its
// page tables and as much again in copy-on-write faults and in tearing the
// copy down, twice per step. The calling thread sleeps until the process has
// exec'd or failed. The runner is made non-dumpable for that (the mm's flag
// is what it shares with the children): between joining the container's pid
// namespace and execve, the process holds the runner's memory, and a
// non-dumpable mm is what keeps the container's processes from ptrace()ing
// or reading /proc/<pid>/mem of it. A container in a user namespace (rootless
// runs included) is joined by forked children instead: the kernel lets only
// a process that shares its mm with nobody enter a user namespace.
#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "executor/confinement.hpp"
#include "executor/spec.hpp"
#include "executor/user.hpp"

namespace lockstep::executor::detail {

struct ExecPlan {
  std::vector<std::string> argv_store;
  std::vector<std::string> env_store;
  std::vector<std::string> candidates;  // full paths to try, in PATH order
  std::vector<char*> argv;              // null-terminated views of the stores
  std::vector<char*> envp;
  Credentials creds;
  std::string workdir;
  mode_t umask = 022;
  std::vector<Rlimit> rlimits;  // already clamped to our hard limits
  std::shared_ptr<const Confinement> confinement;
  bool tty = false;
  // The container has its own user namespace: join it too. With setgroups
  // denied there, the process runs without supplementary groups.
  bool user_namespace = false;
  bool setgroups_denied = false;
  // Rootless: the runner's groups cannot be dropped before joining (no
  // CAP_SETGID on the host), and a container on the host's network shares
  // the runner's network namespace, which it may not setns() into.
  bool rootless = false;
  bool join_net = true;
};

// Builds the plan: the container env overlaid with spec.env, PATH and HOME
// defaults, the executable candidates, rlimits clamped to the hard limits of
// the runner (raising one needs CAP_SYS_RESOURCE, which hosts may lack).
Result<ExecPlan> make_exec_plan(const ContainerSpec& container, const ProcessSpec& spec,
                                Credentials creds, std::shared_ptr<const Confinement> conf);

// Descriptors the intermediate child gets (all owned by the caller).
struct SpawnFds {
  const int* cgroup_procs;  // the container's Cgroup::join_files()
  size_t n_cgroup_procs;
  // Cgroup::v2_dir_fd(): on v2 the intermediate is cloned into the cgroup
  // (CLONE_INTO_CGROUP) and writes no cgroup_procs; -1 on v1.
  int cgroup_dir;
  int init_pidfd;
  int report_write;
  int stdin_fd;
  int stdout_fd;
  int stderr_fd;
  // Rootless: the namespaces to join, in order (init.hpp's kRootlessNs),
  // instead of setns() through init_pidfd.
  const int* ns_fds = nullptr;
  size_t n_ns_fds = 0;
};

// The stacks of children that share our memory (see above), unmapped on
// destruction.
class ChildStacks {
 public:
  ChildStacks() = default;
  ~ChildStacks();
  ChildStacks(const ChildStacks&) = delete;
  ChildStacks& operator=(const ChildStacks&) = delete;

 private:
  friend pid_t start_exec_intermediate(const ExecPlan&, const SpawnFds&, int*,
                                       ChildStacks&) noexcept;
  void* mem_ = nullptr;
  size_t len_ = 0;
};

// Starts the intermediate process (a child of the caller) and returns its pid
// and, in *pidfd, a pidfd of it; -1 with errno when it could not be cloned.
// With shared memory the intermediate has exec'd the process or failed by
// the time this returns, and `stacks` holds their stacks: destroy it only
// after EOF on the report pipe (both exec'd or exited), since an
// intermediate killed from outside ends the wait while the process it
// started may still run on its stack.
pid_t start_exec_intermediate(const ExecPlan& plan, const SpawnFds& fds, int* pidfd,
                              ChildStacks& stacks) noexcept;

// Whether start_exec_intermediate() clones without copying the runner's memory.
bool exec_shares_memory(const ExecPlan& plan) noexcept;

enum ExecFailure {
  kExecFds = 200,
  kExecCgroup,
  kExecSetns,
  kExecClone,
  kExecStdio,
  kExecSession,
  kExecGroups,
  kExecGid,
  kExecCaps,
  kExecUid,
  kExecChdir,
  kExecRlimit,
  kExecNoNewPrivs,
  kExecSeccomp,
  kExecExecve,
  kExecSignals,
};

// Parent side: "exec sh in container build: No such file or directory".
std::string describe_exec_failure(const ExecPlan& plan, int step, int detail);

}  // namespace lockstep::executor::detail
