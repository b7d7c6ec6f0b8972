#include "executor/init.hpp"

#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstring>

#include "executor/child_util.hpp"
#include "executor/init_program/blob.hpp"

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

// "<v>" in decimal into buf (at least 24 bytes), without allocating.
void format_i64(int64_t v, char* buf) noexcept {
  char tmp[24];
  int n = 0;
  bool neg = v < 0;
  uint64_t u = neg ? static_cast<uint64_t>(-(v + 1)) + 1 : static_cast<uint64_t>(v);
  do {
    tmp[n++] = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u != 0);
  int i = 0;
  if (neg) buf[i++] = '-';
  while (n > 0) buf[i++] = tmp[--n];
  buf[i] = '\0';
}

}  // namespace

void container_init_main(const InitPlan& plan, int ctl_fd, int report_fd, int netns_fd) noexcept {
  // Nothing inside may ptrace us or open /proc/1/exe (the runner's binary).
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  ::umask(0);
  // Into the container's cgroup before anything else, and root the cgroup
  // namespace there.
  if (!plan.born_in_cgroup) {
    if (int e = join_cgroup(plan.cgroup_procs.data(), plan.cgroup_procs.size()); e != 0)
      child_fail(report_fd, kInitCgroup, e);
  }
  if (plan.new_cgroup_ns && ::unshare(CLONE_NEWCGROUP) != 0)
    child_fail(report_fd, kInitCgroupNs, errno);
  int fds[4] = {ctl_fd, report_fd, plan.program_fd, netns_fd};
  int nfds = netns_fd >= 0 ? 4 : 3;
  // Drop every descriptor inherited from the runner (other containers'
  // control pipes above all) so that only the runner holds our pipe's far end.
  if (int e = keep_only_fds(fds, nfds); e != 0) child_fail(report_fd, kInitFds, e);
  ctl_fd = fds[0];
  report_fd = fds[1];
  const int program_fd = fds[2];
  netns_fd = netns_fd >= 0 ? fds[3] : -1;

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

  // pid 1 from here on is the init program (init.hpp). The descriptor of the
  // program is close-on-exec; the control and report channels are not.
  char a_ctl[24], a_report[24], a_begin[24], a_end[24];
  format_i64(ctl_fd, a_ctl);
  format_i64(report_fd, a_report);
  format_i64(mounts_begin, a_begin);
  format_i64(mounts_end, a_end);
  if (::fcntl(ctl_fd, F_SETFD, 0) != 0 || ::fcntl(report_fd, F_SETFD, 0) != 0 ||
      ::fcntl(program_fd, F_SETFD, FD_CLOEXEC) != 0)
    child_fail(report_fd, kInitExec, errno);
  char name[] = "lockstep-init";
  char* argv[] = {name, a_ctl, a_report, a_begin, a_end, nullptr};
  char* envp[] = {nullptr};
  ::syscall(SYS_execveat, program_fd, "", argv, envp, AT_EMPTY_PATH);
  child_fail(report_fd, kInitExec, errno);
}

// The init program writes its report with its own copy of this layout.
static_assert(sizeof(ChildReport) == 40 && offsetof(ChildReport, mounts_begin_ns) == 24);

Result<int> init_program_fd() {
  static const Result<int> fd = []() -> Result<int> {
    // MFD_EXEC (Linux 6.3): executable even where vm.memfd_noexec makes
    // memfds non-executable by default; older kernels refuse the flag.
    constexpr unsigned kMfdExec = 0x0010U;
    int m = ::memfd_create("lockstep-init", MFD_CLOEXEC | MFD_ALLOW_SEALING | kMfdExec);
    if (m < 0 && errno == EINVAL)
      m = ::memfd_create("lockstep-init", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (m < 0) return fail_errno("create the memfd of the container init program");
    if (int e = write_all(m, kInitProgram, kInitProgramSize); e != 0) {
      ::close(m);
      return fail(Error::from_errno("write the container init program", e));
    }
    if (::fchmod(m, 0555) != 0 ||
        ::fcntl(m, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
      int e = errno;
      ::close(m);
      return fail(Error::from_errno("seal the container init program", e));
    }
    return m;
  }();
  return fd;
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
    case kInitExec:
      return "exec the init program";
    default:
      return describe_rootfs_failure(plan.rootfs, step, detail);
  }
}

}  // namespace lockstep::executor::detail
