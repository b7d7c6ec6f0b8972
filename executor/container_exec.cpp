// Running processes in a live container: spawn, output capture, timeouts,
// cancellation, exit reasons.
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <optional>

#include "common/fs.hpp"
#include "executor/child_util.hpp"
#include "executor/container.hpp"
#include "executor/init.hpp"
#include "executor/output.hpp"

namespace lockstep::executor::detail {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Waits for a child through its pidfd; returns its siginfo.
Result<siginfo_t> wait_pidfd(int pidfd) {
  siginfo_t si;
  std::memset(&si, 0, sizeof si);
  while (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &si, WEXITED) != 0) {
    if (errno != EINTR) return fail_errno("wait for process");
  }
  return si;
}

std::string signal_reason(int sig) {
  const char* name = ::strsignal(sig);
  return "killed by signal " + std::to_string(sig) + " (" + (name ? name : "unknown") + ")";
}

}  // namespace

std::string describe_duration(milliseconds d) {
  auto ms = d.count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

Status LinuxContainer::send_ctl(char cmd) {
  if (!ctl_) return fail("container " + spec_.id + " is stopped");
  if (int e = send_byte(ctl_.get(), cmd); e != 0)
    return fail(Error::from_errno("signal the init of container " + spec_.id, e));
  return {};
}

void LinuxContainer::kill_all_processes() {
  std::lock_guard lock(ctl_mu_);
  if (!send_ctl(kCtlKillWait)) return;
  char ack = 0;
  (void)read_full(report_.get(), &ack, 1);  // 0 bytes: init is gone, so is everything
}

Result<UniqueFd> LinuxContainer::open_root() const {
  std::string root_path = "/proc/" + std::to_string(init_pid_) + "/root";
  UniqueFd root(root_ ? ::fcntl(root_.get(), F_DUPFD_CLOEXEC, 0)
                      : ::open(root_path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return fail_errno("open the root of container " + spec_.id);
  return root;
}

Result<std::shared_ptr<LinuxContainer::ExecTicket>> LinuxContainer::begin_exec() {
  auto t = std::make_shared<ExecTicket>();
  t->wake = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!t->wake) return fail_errno("eventfd");
  std::lock_guard lock(mu_);
  if (stopped_) return fail("container " + spec_.id + " is stopped");
  t->cancel_generation = cancel_generation_;
  execs_.insert(t);
  return t;
}

void LinuxContainer::end_exec(const std::shared_ptr<ExecTicket>& t) {
  std::lock_guard lock(mu_);
  execs_.erase(t);
  if (execs_.empty()) idle_cv_.notify_all();
}

bool LinuxContainer::cancelled_since(const ExecTicket& t) const {
  std::lock_guard lock(mu_);
  return cancel_generation_ != t.cancel_generation;
}

void LinuxContainer::cancel(milliseconds grace) {
  {
    std::lock_guard lock(mu_);
    ++cancel_generation_;
    for (const auto& t : execs_) {
      uint64_t one = 1;
      (void)::write(t->wake.get(), &one, sizeof one);
    }
  }
  {
    std::lock_guard lock(ctl_mu_);
    (void)send_ctl(kCtlTerm);
  }
  {
    std::unique_lock lock(mu_);
    idle_cv_.wait_for(lock, grace, [&] { return execs_.empty(); });
  }
  kill_all_processes();
}

ResourceUsage LinuxContainer::usage() const {
  return cgroup_.usage();
}

Result<LinuxContainer::Spawned> LinuxContainer::spawn(const ProcessSpec& spec, int stdin_fd,
                                                      int stdout_fd, int stderr_fd) {
  const std::string& user = spec.user.empty() ? spec_.user : spec.user;
  LS_TRY_ASSIGN(UniqueFd root, open_root());
  LS_TRY_ASSIGN(Credentials creds,
                resolve_user_in_root(root.get(), user, spec_.supplementary_groups));
  root.reset();
  LS_TRY_ASSIGN(ExecPlan plan, make_exec_plan(spec_, spec, std::move(creds), confinement_));

  LS_TRY_ASSIGN(auto report, make_pipe());
  SpawnFds fds{cgroup_procs_raw_.data(),
               cgroup_procs_raw_.size(),
               cgroup_.v2_dir_fd(),
               init_pidfd_.get(),
               report.second.get(),
               stdin_fd,
               stdout_fd,
               stderr_fd};
  std::vector<int> ns_fds;
  for (size_t i = 0; i < ns_.size(); ++i)
    if (i != kRootlessNetIndex || plan.join_net) ns_fds.push_back(ns_[i].get());
  fds.ns_fds = ns_fds.data();
  fds.n_ns_fds = ns_fds.size();
  int mid_pidfd_raw = -1;
  ChildStacks stacks;  // released after the reports' EOF, below
  pid_t mid = start_exec_intermediate(plan, fds, &mid_pidfd_raw, stacks);
  if (mid < 0) return fail_errno("start a process in container " + spec_.id);
  UniqueFd mid_pidfd(mid_pidfd_raw);
  report.second.reset();

  // Reports until EOF (the process exec'd: the pipe is CLOEXEC, or it and
  // the intermediate exited): the process's pid from the intermediate and
  // the first failure of either. A forked process's failure comes after
  // its pid, one that shared our memory failed before it.
  std::optional<pid_t> pid;
  std::optional<ChildReport> failed;
  for (;;) {
    ChildReport r{};
    if (read_full(report.first.get(), &r, sizeof r) != static_cast<ssize_t>(sizeof r)) break;
    if (r.kind == kReportPid && !pid)
      pid = static_cast<pid_t>(r.value);
    else if (r.kind == kReportError && !failed)
      failed = r;
  }
  (void)wait_pidfd(mid_pidfd.get());
  Spawned sp;
  if (pid) {
    sp.pid = *pid;
    // Our child (CLONE_PARENT): its pid is not reused before we reap it.
    sp.pidfd = UniqueFd(pidfd_open(sp.pid));
    if (!sp.pidfd) return fail_errno("pidfd_open for exec in container " + spec_.id);
  }
  if (failed && !pid)  // the intermediate's (it reports no pid then)
    return fail(Error::from_errno("exec in container " + spec_.id + ": " +
                                      describe_exec_failure(plan, failed->step, failed->detail),
                                  failed->err));
  if (failed) {  // the process's, before its execve
    (void)wait_pidfd(sp.pidfd.get());
    Error e =
        Error::from_errno(describe_exec_failure(plan, failed->step, failed->detail), failed->err);
    if (failed->step == kExecExecve && (failed->err == ENOENT || failed->err == EACCES))
      e.set_kind(ErrorKind::kNotFound);
    return fail(std::move(e).context("container " + spec_.id));
  }
  if (!pid)
    return fail("exec " + plan.argv_store[0] + " in container " + spec_.id +
                ": the helper process died");
  return sp;
}

Result<ProcessResult> LinuxContainer::exec(const ProcessSpec& spec, const LineSink& sink) {
  if (spec.tty) return fail("exec: tty processes run through run_interactive()", ErrorKind::kUsage);
  LS_TRY_ASSIGN(auto ticket, begin_exec());
  struct Done {
    LinuxContainer* c;
    std::shared_ptr<ExecTicket> t;
    ~Done() { c->end_exec(t); }
  } done{this, ticket};

  LS_TRY_ASSIGN(auto out, make_pipe());
  LS_TRY_ASSIGN(auto err, make_pipe());
  // Bigger pipes: fewer wakeups when a step writes a lot.
  (void)::fcntl(out.first.get(), F_SETPIPE_SZ, 1 << 20);
  (void)::fcntl(err.first.get(), F_SETPIPE_SZ, 1 << 20);
  UniqueFd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!devnull) return fail_errno("open /dev/null");
  bool oom_before = cgroup_.usage().oom_killed;
  auto started = Clock::now();
  LS_TRY_ASSIGN(Spawned sp, spawn(spec, devnull.get(), out.second.get(), err.second.get()));
  out.second.reset();
  err.second.reset();
  devnull.reset();

  LineSplitter split[2] = {LineSplitter(Stream::kStdout), LineSplitter(Stream::kStderr)};
  UniqueFd* pipes[2] = {&out.first, &err.first};
  std::optional<Clock::time_point> deadline, kill_at;
  if (spec.timeout) deadline = started + *spec.timeout;
  bool timed_out = false, cancelled = false, exited = false;
  siginfo_t status{};
  std::vector<char> buf(1 << 16);

  // Reads what one pipe has; false at EOF.
  auto read_pipe = [&](int i) {
    ssize_t n = ::read(pipes[i]->get(), buf.data(), buf.size());
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
    if (n <= 0) {
      split[i].finish(std::chrono::system_clock::now(), sink);
      pipes[i]->reset();
      return false;
    }
    split[i].feed(std::string_view(buf.data(), static_cast<size_t>(n)),
                  std::chrono::system_clock::now(), sink);
    return true;
  };

  while (!exited) {
    struct pollfd pfd[4];
    int idx[4];
    nfds_t n = 0;
    for (int i = 0; i < 2; ++i)
      if (*pipes[i]) {
        pfd[n] = {pipes[i]->get(), POLLIN, 0};
        idx[n++] = i;
      }
    pfd[n] = {sp.pidfd.get(), POLLIN, 0};
    idx[n++] = 2;
    pfd[n] = {ticket->wake.get(), POLLIN, 0};
    idx[n++] = 3;
    int wait_ms = -1;
    auto now = Clock::now();
    for (auto t : {deadline, kill_at})
      if (t) {
        auto left = std::chrono::ceil<milliseconds>(*t - now).count();
        left = left < 0 ? 0 : left;
        if (wait_ms < 0 || left < wait_ms) wait_ms = static_cast<int>(left);
      }
    int r = ::poll(pfd, n, wait_ms);
    if (r < 0 && errno != EINTR) return fail_errno("poll");
    now = Clock::now();
    if (deadline && now >= *deadline) {
      // Step timeout: SIGTERM everything, SIGKILL after a grace period.
      timed_out = true;
      deadline.reset();
      std::lock_guard lock(ctl_mu_);
      (void)send_ctl(kCtlTerm);
      kill_at = now + spec.timeout_grace;
    }
    if (kill_at && now >= *kill_at) {
      kill_at.reset();
      std::lock_guard lock(ctl_mu_);
      (void)send_ctl(kCtlKill);
    }
    if (r <= 0) continue;
    for (nfds_t k = 0; k < n; ++k) {
      if (pfd[k].revents == 0) continue;
      if (idx[k] < 2) {
        (void)read_pipe(idx[k]);
      } else if (idx[k] == 2) {
        LS_TRY_ASSIGN(status, wait_pidfd(sp.pidfd.get()));
        exited = true;
      } else {
        uint64_t v;
        (void)::read(ticket->wake.get(), &v, sizeof v);
        if (cancelled_since(*ticket)) cancelled = true;
      }
    }
  }
  if (timed_out || cancelled_since(*ticket)) {
    cancelled = cancelled || !timed_out;
    // Nothing the step started may outlive it: daemons included.
    kill_all_processes();
    for (int i = 0; i < 2; ++i)
      while (*pipes[i]) {
        struct pollfd p = {pipes[i]->get(), POLLIN, 0};
        if (::poll(&p, 1, 1000) <= 0) break;  // writers are dead; EOF is immediate
        (void)read_pipe(i);
      }
  } else {
    // The process exited: deliver what it wrote, but do not wait for
    // background processes that keep the pipes open.
    for (int i = 0; i < 2; ++i)
      while (*pipes[i]) {
        struct pollfd p = {pipes[i]->get(), POLLIN, 0};
        if (::poll(&p, 1, 0) <= 0) break;
        (void)read_pipe(i);
      }
  }
  auto when = std::chrono::system_clock::now();
  for (int i = 0; i < 2; ++i) split[i].finish(when, sink);

  ProcessResult res;
  res.duration = Clock::now() - started;
  res.network = spec_.network;
  if (status.si_code == CLD_EXITED) {
    res.kind = ExitKind::kExited;
    res.exit_code = status.si_status;
    res.reason = "exit code " + std::to_string(res.exit_code);
  } else {
    res.kind = ExitKind::kSignaled;
    res.signal = status.si_status;
    res.reason = signal_reason(res.signal);
  }
  if (timed_out) {
    res.kind = ExitKind::kTimedOut;
    res.reason = "timed out after " + describe_duration(*spec.timeout);
  } else if (cancelled) {
    res.kind = ExitKind::kCancelled;
    res.reason = "cancelled";
  } else if (!res.ok() && !oom_before && cgroup_.usage().oom_killed) {
    res.kind = ExitKind::kOutOfMemory;
    res.reason = spec_.limits.memory_bytes ? "killed: out of memory (limit " +
                                                 format_bytes(*spec_.limits.memory_bytes) + ")"
                                           : std::string("killed: out of memory");
  }
  return res;
}

}  // namespace lockstep::executor::detail
