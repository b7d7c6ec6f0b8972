#include "executor/init.hpp"

#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "executor/child_util.hpp"

namespace lockstep::executor::detail {
namespace {

int bring_loopback_up() noexcept {
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return errno;
  struct ifreq ifr;
  std::memset(&ifr, 0, sizeof ifr);
  std::memcpy(ifr.ifr_name, "lo", 3);
  int e = 0;
  if (::ioctl(s, SIOCGIFFLAGS, &ifr) != 0) {
    e = errno;
  } else {
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
    if (::ioctl(s, SIOCSIFFLAGS, &ifr) != 0) e = errno;
  }
  ::close(s);
  return e;
}

// Receives the runner's detached mounts for a container in a user
// namespace: kCtlTrees messages carrying descriptors until kCtlGo. 0 or errno.
int receive_trees(int ctl_fd, int* out, size_t want) noexcept {
  size_t got = 0;
  for (;;) {
    char byte = 0;
    struct iovec iov = {&byte, 1};
    alignas(struct cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * 253)];
    struct msghdr msg;
    std::memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf;
    msg.msg_controllen = sizeof cbuf;
    ssize_t n = ::recvmsg(ctl_fd, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return EPIPE;  // the runner gave up
    if (msg.msg_flags & MSG_CTRUNC) return EMSGSIZE;
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      const unsigned char* data = CMSG_DATA(c);
      for (size_t i = 0; i < k; ++i) {
        int fd;
        std::memcpy(&fd, data + i * sizeof(int), sizeof fd);
        if (got == want) return EPROTO;
        out[got++] = fd;
      }
    }
    if (byte == kCtlGo) return got == want ? 0 : EPROTO;
    if (byte != kCtlTrees) return EPROTO;
  }
}

// Sends an O_PATH descriptor of "/" and of the init's namespaces, in
// kRootlessNs order (one kCtlTrees message with SCM_RIGHTS). 0 or errno.
int send_root(int ctl_fd) noexcept {
  int fds[1 + kRootlessNsCount];
  int n = 0, e = 0;
  fds[n] = ::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fds[n] < 0) return errno;
  ++n;
  char path[32];
  for (const char* ns : kRootlessNs) {
    std::strcpy(path, "/proc/self/ns/");
    std::strcat(path, ns);
    fds[n] = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fds[n] < 0) {
      e = errno;
      break;
    }
    ++n;
  }
  if (e == 0) {
    char byte = kCtlTrees;
    struct iovec iov = {&byte, 1};
    alignas(struct cmsghdr) char cbuf[CMSG_SPACE(sizeof fds)];
    struct msghdr msg;
    std::memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf;
    msg.msg_controllen = sizeof cbuf;
    struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof fds);
    std::memcpy(CMSG_DATA(c), fds, sizeof fds);
    while (::sendmsg(ctl_fd, &msg, MSG_NOSIGNAL) != 1) {
      if (errno != EINTR) {
        e = errno;
        break;
      }
    }
  }
  for (int i = 0; i < n; ++i) ::close(fds[i]);
  return e;
}

void reap_all() noexcept {
  while (::waitpid(-1, nullptr, WNOHANG) > 0) {
  }
}

// SIGKILL every process of the namespace and wait until init has no child
// left. Forks racing with kill(-1) fail (their parent has SIGKILL pending), so
// no process survives; processes that are the runner's children (exec'd
// steps) are killed too and reaped by the runner.
void kill_all_and_reap() noexcept {
  ::kill(-1, SIGKILL);
  for (;;) {
    pid_t p = ::waitpid(-1, nullptr, 0);
    if (p > 0) continue;
    if (errno == EINTR) continue;
    break;  // ECHILD
  }
  ::kill(-1, SIGKILL);
  reap_all();
}

[[noreturn]] void init_loop(int ctl_fd, int report_fd, int sig_fd) noexcept {
  struct pollfd pfd[2];
  pfd[0].fd = ctl_fd;
  pfd[0].events = POLLIN;
  pfd[1].fd = sig_fd;
  pfd[1].events = POLLIN;
  for (;;) {
    pfd[0].revents = pfd[1].revents = 0;
    if (::poll(pfd, 2, -1) < 0) continue;
    if (pfd[1].revents & POLLIN) {
      struct signalfd_siginfo si[8];
      ssize_t n = ::read(sig_fd, si, sizeof si);
      for (ssize_t i = 0; i < n / static_cast<ssize_t>(sizeof si[0]); ++i) {
        int sig = static_cast<int>(si[i].ssi_signo);
        if (sig == SIGTERM || sig == SIGINT) ::kill(-1, sig);
      }
      reap_all();
    }
    if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      char cmd;
      ssize_t n = ::read(ctl_fd, &cmd, 1);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {  // the runner is gone or stopping us
        ::kill(-1, SIGKILL);
        ::_exit(0);
      }
      if (cmd == kCtlTerm) {
        ::kill(-1, SIGTERM);
      } else if (cmd == kCtlKill) {
        ::kill(-1, SIGKILL);
      } else if (cmd == kCtlKillWait) {
        kill_all_and_reap();
        char ack = kAck;
        (void)write_all(report_fd, &ack, 1);
      }
    }
  }
}

}  // namespace

void container_init_main(const InitPlan& plan, int ctl_fd, int report_fd, int netns_fd) noexcept {
  // Nothing inside may ptrace us or open /proc/1/exe (the runner's binary).
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  ::umask(0);
  // Into the container's cgroup before anything else, and root the cgroup
  // namespace there.
  if (int e = join_cgroup(plan.cgroup_procs.data(), plan.cgroup_procs.size()); e != 0)
    child_fail(report_fd, kInitCgroup, e);
  if (plan.new_cgroup_ns && ::unshare(CLONE_NEWCGROUP) != 0)
    child_fail(report_fd, kInitCgroupNs, errno);
  int fds[3] = {ctl_fd, report_fd, netns_fd};
  int nfds = netns_fd >= 0 ? 3 : 2;
  // Drop every descriptor inherited from the runner (other containers'
  // control pipes above all) so that only the runner holds our pipe's far end.
  if (int e = keep_only_fds(fds, nfds); e != 0) child_fail(report_fd, kInitFds, e);
  ctl_fd = fds[0];
  report_fd = fds[1];
  netns_fd = netns_fd >= 0 ? fds[2] : -1;

  if (netns_fd >= 0) {
    if (::setns(netns_fd, CLONE_NEWNET) != 0) child_fail(report_fd, kInitJoinNetns, errno);
    ::close(netns_fd);
  }
  if (plan.loopback_up) {
    if (int e = bring_loopback_up(); e != 0) child_fail(report_fd, kInitLoopback, e);
  }
  if (::sethostname(plan.hostname.data(), plan.hostname.size()) != 0)
    child_fail(report_fd, kInitHostname, errno);
  if (!plan.domainname.empty() &&
      ::setdomainname(plan.domainname.data(), plan.domainname.size()) != 0)
    child_fail(report_fd, kInitHostname, errno);
  if (plan.rootfs.userns && !plan.rootfs.make_trees) {
    if (int e = receive_trees(ctl_fd, plan.tree_fds, plan.rootfs.trees.size()); e != 0)
      child_fail(report_fd, kInitTrees, e);
  }
  int step = 0, detail = -1;
  int64_t mounts_begin = monotonic_ns();
  if (int e = setup_rootfs(plan.rootfs, plan.tree_fds, &step, &detail); e != 0)
    child_fail(report_fd, step, e, detail);
  for (size_t i = 0; plan.rootfs.userns && i < plan.rootfs.trees.size(); ++i)
    ::close(plan.tree_fds[i]);
  if (plan.rootfs.make_trees) {
    // Rootless: the runner may not open /proc/<init>/root of this
    // non-dumpable process; it gets the root over the control channel.
    if (int e = send_root(ctl_fd); e != 0) child_fail(report_fd, kInitSendRoot, e);
  }
  int64_t mounts_end = monotonic_ns();

  sigset_t all;
  sigfillset(&all);
  if (::sigprocmask(SIG_BLOCK, &all, nullptr) != 0) child_fail(report_fd, kInitSignals, errno);
  sigset_t watched;
  sigemptyset(&watched);
  sigaddset(&watched, SIGCHLD);
  sigaddset(&watched, SIGTERM);
  sigaddset(&watched, SIGINT);
  int sig_fd = ::signalfd(-1, &watched, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sig_fd < 0) child_fail(report_fd, kInitSignals, errno);

  ChildReport ok{kReportOk, 0, 0, -1, 0, mounts_begin, mounts_end};
  if (write_all(report_fd, &ok, sizeof ok) != 0) ::_exit(0);
  init_loop(ctl_fd, report_fd, sig_fd);
}

std::string describe_init_failure(const InitPlan& plan, int step, int detail) {
  switch (step) {
    case kInitCgroup:
      return "join the container's cgroup";
    case kInitFds:
      return "close inherited file descriptors";
    case kInitCgroupNs:
      return "create the cgroup namespace";
    case kInitJoinNetns:
      return "join the network namespace";
    case kInitLoopback:
      return "bring up the loopback interface";
    case kInitHostname:
      return "set hostname '" + plan.hostname + "' / domain name '" + plan.domainname + "'";
    case kInitSignals:
      return "set up signal handling";
    case kInitTrees:
      return "receive the mounts of the user namespace";
    case kInitJoinUserns:
      return "join the user namespace";
    case kInitClone:
      return "clone the init";
    case kInitSendRoot:
      return "send the container's root to the runner";
    default:
      return describe_rootfs_failure(plan.rootfs, step, detail);
  }
}

}  // namespace lockstep::executor::detail
