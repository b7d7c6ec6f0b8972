#include "executor/spawn.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/userns.hpp"
#include "executor/child_util.hpp"

namespace lockstep::executor::detail {
namespace {

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

std::string_view env_key(std::string_view kv) {
  return kv.substr(0, kv.find('='));
}

void set_env(std::vector<std::string>& env, const std::string& kv) {
  auto key = env_key(kv);
  for (auto& e : env)
    if (env_key(e) == key) {
      e = kv;
      return;
    }
  env.push_back(kv);
}

const std::string* find_env(const std::vector<std::string>& env, std::string_view key) {
  for (const auto& e : env)
    if (env_key(e) == key && e.size() > key.size()) return &e;
  return nullptr;
}

[[noreturn]] void process_main(const ExecPlan& plan, int report, const int stdio[3]) noexcept {
  for (int i = 0; i < 3; ++i)
    if (::dup2(stdio[i], i) < 0) child_fail(report, kExecStdio, errno);
  // Everything but stdio and the CLOEXEC report pipe goes before any path is
  // resolved (CVE-2024-21626: a leaked directory fd as working directory).
  if (::syscall(SYS_close_range, 4U, ~0U, 0) != 0) child_fail(report, kExecFds, errno);
  if (::setsid() < 0) child_fail(report, kExecSession, errno);
  if (plan.tty && ::ioctl(0, TIOCSCTTY, 0) != 0) child_fail(report, kExecSession, errno);

  // Raw system calls: glibc's setgroups/setresuid/setresgid would try to
  // synchronise with the runner's other threads, which do not exist here
  // (they wait on a futex forever).
  const Credentials& c = plan.creds;
  if (!plan.setgroups_denied && ::syscall(SYS_setgroups, c.groups.size(), c.groups.data()) != 0)
    child_fail(report, kExecGroups, errno);
  if (::syscall(SYS_setresgid, c.gid, c.gid, c.gid) != 0) child_fail(report, kExecGid, errno);
  if (plan.confinement) {
    if (int e = apply_capabilities_in_child(*plan.confinement); e != 0)
      child_fail(report, kExecCaps, e);
  }
  // A non-root uid loses its permitted and effective capabilities here.
  if (::syscall(SYS_setresuid, c.uid, c.uid, c.uid) != 0) child_fail(report, kExecUid, errno);
  ::umask(plan.umask);
  if (::chdir(plan.workdir.c_str()) != 0) child_fail(report, kExecChdir, errno);
  for (size_t i = 0; i < plan.rlimits.size(); ++i) {
    struct rlimit rl;
    rl.rlim_cur = plan.rlimits[i].soft;
    rl.rlim_max = plan.rlimits[i].hard;
    if (::setrlimit(plan.rlimits[i].resource, &rl) != 0)
      child_fail(report, kExecRlimit, errno, static_cast<int>(i));
  }
  // A blocked or ignored signal stays so across execve. The runner's threads
  // block SIGINT and SIGTERM (a watcher thread takes them), and a runner
  // started by systemd ignores SIGPIPE: without this, `kill -TERM` of a
  // step's child does nothing and `yes | head` never ends. Before seccomp,
  // which a custom profile may make refuse these calls.
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    (void)::sigaction(sig, &dfl, nullptr);  // EINVAL for glibc's own: not ignorable anyway
  }
  sigset_t none;
  sigemptyset(&none);
  if (::sigprocmask(SIG_SETMASK, &none, nullptr) != 0) child_fail(report, kExecSignals, errno);
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) child_fail(report, kExecNoNewPrivs, errno);
  if (plan.confinement) {
    if (int e = apply_seccomp_in_child(*plan.confinement); e != 0)
      child_fail(report, kExecSeccomp, e);
  }
  int err = ENOENT;
  for (size_t i = 0; i < plan.candidates.size(); ++i) {
    ::execve(plan.candidates[i].c_str(), plan.argv.data(), plan.envp.data());
    // Like execvp: remember EACCES, keep looking after ENOENT/ENOTDIR.
    if (errno == EACCES) {
      err = EACCES;
    } else if (errno != ENOENT && errno != ENOTDIR) {
      err = errno;
      break;
    }
  }
  child_fail(report, kExecExecve, err);
}

}  // namespace

Result<ExecPlan> make_exec_plan(const ContainerSpec& container, const ProcessSpec& spec,
                                Credentials creds, std::shared_ptr<const Confinement> conf) {
  if (spec.argv.empty() || spec.argv[0].empty()) return fail("empty command", ErrorKind::kUsage);
  ExecPlan p;
  p.argv_store = spec.argv;
  p.env_store = container.env;
  for (const auto& kv : spec.env) set_env(p.env_store, kv);
  if (!find_env(p.env_store, "PATH")) p.env_store.push_back(std::string("PATH=") + kDefaultPath);
  if (!find_env(p.env_store, "HOME")) p.env_store.push_back("HOME=" + creds.home);
  const std::string& argv0 = spec.argv[0];
  if (argv0.find('/') != std::string::npos) {
    p.candidates.push_back(argv0);
  } else {
    std::string_view path = std::string_view(*find_env(p.env_store, "PATH")).substr(5);
    size_t start = 0;
    for (;;) {
      size_t colon = path.find(':', start);
      std::string_view dir =
          path.substr(start, colon == std::string_view::npos ? colon : colon - start);
      p.candidates.push_back((dir.empty() ? std::string(".") : std::string(dir)) + "/" + argv0);
      if (colon == std::string_view::npos) break;
      start = colon + 1;
    }
  }
  for (auto& s : p.argv_store) p.argv.push_back(s.data());
  p.argv.push_back(nullptr);
  for (auto& s : p.env_store) p.envp.push_back(s.data());
  p.envp.push_back(nullptr);
  p.creds = std::move(creds);
  p.workdir = spec.workdir.empty() ? container.workdir : spec.workdir;
  if (p.workdir.empty()) p.workdir = "/";
  p.umask = container.umask;
  for (Rlimit r : container.rlimits) {
    struct rlimit cur;
    if (::getrlimit(r.resource, &cur) != 0)
      return fail_errno("getrlimit " + std::to_string(r.resource));
    if (cur.rlim_max != RLIM_INFINITY && (r.hard == RLIM_INFINITY || r.hard > cur.rlim_max))
      r.hard = cur.rlim_max;
    if (r.soft > r.hard) r.soft = r.hard;
    p.rlimits.push_back(r);
  }
  p.confinement = std::move(conf);
  p.tty = spec.tty;
  if (container.user_namespace) {
    p.user_namespace = true;
    p.setgroups_denied = !container.user_namespace->allow_setgroups;
  }
  p.rootless = running_rootless();
  p.join_net = !(p.rootless && container.network.mode == NetworkMode::kHost);
  return p;
}

namespace {

// The process's own stack when it shares the runner's memory: enough for
// process_main (a few hundred bytes of frames; the kernel copies argv and
// envp at execve).
constexpr size_t kChildStack = 64 * 1024;

struct StepArgs {
  const ExecPlan* plan;
  int report;
  int stdio[3];
};

[[noreturn]] void step_main(const StepArgs& a) noexcept {
  // Move the report pipe to 3 and stdio to 0..2 (in process_main).
  int moved[4] = {a.report, a.stdio[0], a.stdio[1], a.stdio[2]};
  if (int e = keep_only_fds(moved, 4); e != 0) child_fail(a.report, kExecFds, e);
  int std_fds[3] = {moved[1], moved[2], moved[3]};
  process_main(*a.plan, moved[0], std_fds);
}

int step_entry(void* arg) {
  step_main(*static_cast<const StepArgs*>(arg));
}

// step_stack: the top of the process's stack when it shares our memory;
// nullptr: it is a fork.
[[noreturn]] void intermediate_main(const ExecPlan& plan, const SpawnFds& f,
                                    char* step_stack) noexcept {
  // Until exec, we are a copy of the runner: nothing in the container may
  // ptrace us or open our /proc/<pid>/exe. (Sharing the runner's memory, the
  // runner already made that mm non-dumpable.)
  if (step_stack == nullptr) ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (int e = join_cgroup(f.cgroup_procs, f.n_cgroup_procs); e != 0)
    child_fail(f.report_write, kExecCgroup, e);
  // Rootless: joined before the descriptors are closed (they are CLOEXEC
  // copies the runner holds).
  for (size_t i = 0; i < f.n_ns_fds; ++i)
    if (::setns(f.ns_fds[i], 0) != 0) child_fail(f.report_write, kExecSetns, errno);
  int fds[5] = {f.init_pidfd, f.report_write, f.stdin_fd, f.stdout_fd, f.stderr_fd};
  if (int e = keep_only_fds(fds, 5); e != 0) child_fail(f.report_write, kExecFds, e);
  int init_pidfd = fds[0], report = fds[1];
  int ns = CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP | CLONE_NEWPID | CLONE_NEWNS;
  if (plan.join_net) ns |= CLONE_NEWNET;
  if (plan.rootless) {
    ns |= CLONE_NEWUSER;
  } else if (plan.user_namespace) {
    // The runner's own groups must not come along: in the namespace they
    // could not be dropped when setgroups is denied.
    if (::syscall(SYS_setgroups, 0, nullptr) != 0) child_fail(report, kExecGroups, errno);
    ns |= CLONE_NEWUSER;
  }
  if (f.n_ns_fds == 0 && ::setns(init_pidfd, ns) != 0) child_fail(report, kExecSetns, errno);
  ::close(init_pidfd);
  StepArgs a{&plan, report, {fds[2], fds[3], fds[4]}};
  pid_t pid;
  if (step_stack != nullptr) {
    // Returns once the process has exec'd or exited. A failure it reported
    // is in the pipe before our pid report; the runner reads both.
    pid = ::clone(step_entry, step_stack, CLONE_VM | CLONE_VFORK | CLONE_PARENT, &a);
  } else {
    pid = clone3_fork(CLONE_PARENT, nullptr);
    if (pid == 0) step_main(a);
  }
  if (pid < 0) child_fail(report, kExecClone, errno);
  ChildReport r{kReportPid, 0, 0, -1, pid, 0, 0};
  (void)write_all(report, &r, sizeof r);
  ::_exit(0);
}

struct IntermediateArgs {
  const ExecPlan* plan;
  const SpawnFds* fds;
  char* step_stack;
};

int intermediate_entry(void* arg) {
  const auto* a = static_cast<const IntermediateArgs*>(arg);
  intermediate_main(*a->plan, *a->fds, a->step_stack);
}

}  // namespace

bool exec_shares_memory(const ExecPlan& plan) noexcept {
  return !plan.rootless && !plan.user_namespace;
}

ChildStacks::~ChildStacks() {
  if (mem_ != nullptr) ::munmap(mem_, len_);
}

pid_t start_exec_intermediate(const ExecPlan& plan, const SpawnFds& fds, int* pidfd,
                              ChildStacks& stacks) noexcept {
  // Born in the container's cgroup on v2, the intermediate has nothing to join.
  SpawnFds born = fds;
  born.n_cgroup_procs = 0;
  if (!exec_shares_memory(plan)) {
    pid_t pid = -1;
    if (fds.cgroup_dir >= 0) {
      pid = clone3_fork(0, pidfd, fds.cgroup_dir);
      if (pid == 0) intermediate_main(plan, born, nullptr);
      if (pid > 0 || !clone3_unsupported(errno)) return pid;
    }
    pid = clone3_fork(0, pidfd);
    if (pid == 0) intermediate_main(plan, fds, nullptr);
    return pid;
  }
  // See spawn.hpp. Once set, for the life of the runner: another thread's
  // exec may be between its setns and its execve at any time.
  if (::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0 && ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
    return -1;
  // Two stacks, each above a guard page: [guard][intermediate][guard][process].
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t len = 2 * (page + kChildStack);
  void* mem =
      ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (mem == MAP_FAILED) return -1;
  stacks.mem_ = mem;
  stacks.len_ = len;
  char* base = static_cast<char*>(mem);
  if (::mprotect(base, page, PROT_NONE) != 0 ||
      ::mprotect(base + page + kChildStack, page, PROT_NONE) != 0)
    return -1;
  IntermediateArgs a{&plan, fds.cgroup_dir >= 0 ? &born : &fds, base + len};
  // The children start with every signal blocked: a handler of the runner
  // must never run on their stacks, in our memory. The process unblocks them
  // after resetting every disposition (process_main).
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = -1;
  int e = ENOSYS;
  if (fds.cgroup_dir >= 0) {
    pid = clone3_on_stack(CLONE_VM | CLONE_VFORK, fds.cgroup_dir, pidfd, base + page, kChildStack,
                          intermediate_entry, &a);
    e = errno;
  }
  if (pid < 0 && clone3_unsupported(e)) {
    a.fds = &fds;
    // CLONE_PIDFD: the pidfd is stored through the parent_tid argument.
    pid = ::clone(intermediate_entry, base + page + kChildStack,
                  CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &a, pidfd);
    e = errno;
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = e;
  return pid;
}

std::string describe_exec_failure(const ExecPlan& plan, int step, int detail) {
  const std::string& cmd = plan.argv_store.empty() ? std::string("?") : plan.argv_store[0];
  switch (step) {
    case kExecFds:
      return "close inherited file descriptors";
    case kExecCgroup:
      return "join the container's cgroup";
    case kExecSetns:
      return "join the container's namespaces";
    case kExecClone:
      return "fork into the container";
    case kExecStdio:
      return "set up stdin/stdout/stderr";
    case kExecSession:
      return "start a session";
    case kExecSignals:
      return "reset signal handling";
    case kExecGroups:
      return "set supplementary groups";
    case kExecGid:
      return "set gid " + std::to_string(plan.creds.gid);
    case kExecCaps:
      return "apply capabilities";
    case kExecUid:
      return "set uid " + std::to_string(plan.creds.uid);
    case kExecChdir:
      return "change to working directory " + plan.workdir;
    case kExecRlimit:
      return "set rlimit " +
             (detail >= 0 && static_cast<size_t>(detail) < plan.rlimits.size()
                  ? std::to_string(plan.rlimits[static_cast<size_t>(detail)].resource)
                  : std::string("?"));
    case kExecNoNewPrivs:
      return "set no_new_privs";
    case kExecSeccomp:
      return "load the seccomp filter";
    case kExecExecve:
      return "exec " + cmd;
    default:
      return "start " + cmd;
  }
}

}  // namespace lockstep::executor::detail
