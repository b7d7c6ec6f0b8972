// Starting a container: state dir, cgroup, init clone, rootfs, readiness.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>

#include "common/fs.hpp"
#include "common/userns.hpp"
#include "executor/child_util.hpp"
#include "executor/container.hpp"
#include "executor/init.hpp"
#include "executor/network.hpp"
#include "executor/rootfs.hpp"
#include "executor/rootless.hpp"
#include "executor/state.hpp"

namespace lockstep::executor {
namespace detail {
namespace fs = std::filesystem;

namespace {

// The init's setup report, read with a deadline: a lost report must fail the
// start, never hang the run. Returns the bytes read (short when the init
// exited first), or kReportTimedOut.
constexpr ssize_t kReportTimedOut = -2;
constexpr std::chrono::seconds kReportTimeout{60};

ssize_t read_report(int fd, int pidfd, void* buf, size_t len) {
  char* p = static_cast<char*>(buf);
  size_t got = 0;
  auto deadline = std::chrono::steady_clock::now() + kReportTimeout;
  bool init_gone = false;
  while (got < len) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      if (init_gone) break;  // reported below as "its init exited during setup"
      return kReportTimedOut;
    }
    pollfd fds[2] = {{fd, POLLIN, 0}, {pidfd, POLLIN, 0}};
    int nfds = init_gone || pidfd < 0 ? 1 : 2;
    int rc = ::poll(fds, static_cast<nfds_t>(nfds), static_cast<int>(left.count()));
    if (rc < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (rc == 0) continue;
    if (fds[0].revents != 0) {
      ssize_t n = ::read(fd, p + got, len - got);
      if (n < 0) {
        if (errno == EINTR) continue;
        return -1;
      }
      if (n == 0) break;
      got += static_cast<size_t>(n);
    } else if (nfds == 2 && fds[1].revents != 0) {
      // The init exited; whatever it wrote is still in the pipe, and the
      // pipe ends at EOF unless another process holds its write end.
      init_gone = true;
      deadline = std::min(deadline, std::chrono::steady_clock::now() + std::chrono::seconds(1));
    }
  }
  return static_cast<ssize_t>(got);
}

std::mutex g_registry_mu;
std::map<std::string, LinuxContainer*>& registry() {
  static std::map<std::string, LinuxContainer*> r;
  return r;
}

Status check_id(const std::string& id) {
  bool ok = !id.empty() && id.size() <= 128 && id[0] != '.' && id[0] != '-';
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
      ok = false;
  if (!ok)
    return fail("invalid container id '" + id + "' (letters, digits, '-', '_', '.'; at most 128)",
                ErrorKind::kUsage);
  return {};
}

Result<std::pair<UniqueFd, UniqueFd>> make_channel_pair() {
  int p[2];
  if (int e = make_channel(p); e != 0) return fail(Error::from_errno("socketpair", e));
  return std::make_pair(UniqueFd(p[0]), UniqueFd(p[1]));
}

// ---- user namespaces (docs/containers.md) ----

// The kernel takes at most 340 lines per map.
constexpr size_t kMaxMapLines = 340;

Status check_map(const std::string& id, const char* what, const std::vector<IdMapping>& m) {
  auto bad = [&](const std::string& why) {
    return fail("container " + id + ": user namespace " + what + ": " + why, ErrorKind::kUsage);
  };
  if (m.empty()) return bad("empty (container id 0 must be mapped)");
  if (m.size() > kMaxMapLines) return bad("more than 340 lines");
  bool zero = false;
  for (const auto& e : m) {
    if (e.size == 0) return bad("a mapping of size 0");
    if (uint64_t{e.container_id} + e.size > (uint64_t{1} << 32) - 1 ||
        uint64_t{e.host_id} + e.size > (uint64_t{1} << 32) - 1)
      return bad("a mapping beyond id 4294967294");
    if (e.container_id == 0) zero = true;
  }
  if (!zero) return bad("container id 0 is not mapped");
  return {};
}

uint32_t host_root(const std::vector<IdMapping>& m) {
  for (const auto& e : m)
    if (e.container_id == 0) return e.host_id;
  return 0;
}

std::string map_text(const std::vector<IdMapping>& m) {
  std::string t;
  for (const auto& e : m)
    t += std::to_string(e.container_id) + " " + std::to_string(e.host_id) + " " +
         std::to_string(e.size) + "\n";
  return t;
}

Status write_proc_file(pid_t pid, const char* name, const std::string& text) {
  std::string path = "/proc/" + std::to_string(pid) + "/" + name;
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return fail_errno("open " + path);
  // One write: the kernel takes a map only whole.
  ssize_t n = ::write(fd.get(), text.data(), text.size());
  if (n != static_cast<ssize_t>(text.size()))
    return fail(Error::from_errno("write " + path, n < 0 ? errno : EIO));
  return {};
}

// A detached copy of one tree for the init (open_tree + mount_setattr).
Result<UniqueFd> make_tree(const DetachedTree& t, int userns_fd) {
  unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (t.recursive ? AT_RECURSIVE : 0);
  UniqueFd fd(::open_tree(AT_FDCWD, t.source.c_str(), flags));
  if (!fd) return fail_errno("copy the mount of " + t.source);
  struct mount_attr a;
  std::memset(&a, 0, sizeof a);
  if (t.read_only) a.attr_set |= MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  if (t.idmapped) {
    a.attr_set |= MOUNT_ATTR_IDMAP;
    a.userns_fd = static_cast<uint64_t>(userns_fd);
  }
  if (a.attr_set != 0 &&
      ::mount_setattr(fd.get(), "", AT_EMPTY_PATH | (t.recursive ? AT_RECURSIVE : 0), &a,
                      sizeof a) != 0) {
    int e = errno;
    if (t.idmapped && e == EINVAL)
      return fail(Error::from_errno("idmapped mount of layer " + t.source +
                                        " (its filesystem may not support idmapped mounts)",
                                    e));
    return fail(Error::from_errno(
        (t.idmapped ? "idmapped mount of layer " : "read-only mount of ") + t.source, e));
  }
  return fd;
}

Status send_trees(int ctl, const std::vector<UniqueFd>& fds) {
  auto send = [&](char byte, const UniqueFd* first, size_t n) -> Status {
    struct iovec iov = {&byte, 1};
    alignas(struct cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * 200)];
    struct msghdr msg;
    std::memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (n > 0) {
      msg.msg_control = cbuf;
      msg.msg_controllen = CMSG_SPACE(sizeof(int) * n);
      struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * n);
      for (size_t i = 0; i < n; ++i) {
        int fd = first[i].get();
        std::memcpy(CMSG_DATA(c) + i * sizeof(int), &fd, sizeof fd);
      }
    }
    for (;;) {
      if (::sendmsg(ctl, &msg, MSG_NOSIGNAL) == 1) return {};
      if (errno != EINTR) return fail_errno("send mounts to the container's init");
    }
  };
  for (size_t i = 0; i < fds.size(); i += 200)
    LS_TRY(send(kCtlTrees, fds.data() + i, std::min<size_t>(200, fds.size() - i)));
  return send(kCtlGo, nullptr, 0);
}

// Rootless: the container's "/" and namespaces its init sent before its
// report (init.hpp's kRootlessNs).
Result<std::vector<UniqueFd>> receive_root(int ctl) {
  constexpr size_t kWant = 1 + kRootlessNsCount;
  char byte = 0;
  struct iovec iov = {&byte, 1};
  alignas(struct cmsghdr) char cbuf[CMSG_SPACE(sizeof(int) * kWant)];
  struct msghdr msg;
  std::memset(&msg, 0, sizeof msg);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cbuf;
  msg.msg_controllen = sizeof cbuf;
  ssize_t n;
  do {
    n = ::recvmsg(ctl, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return fail_errno("receive the container's root from its init");
  struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
  std::vector<UniqueFd> out;
  if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
    size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < k; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      out.emplace_back(fd);
    }
  }
  if (n != 1 || byte != kCtlTrees || out.size() != kWant || (msg.msg_flags & MSG_CTRUNC))
    return fail("receive the container's root from its init: unexpected message");
  return out;
}

// Parent side once the init exists: its id maps, then its mounts.
Status setup_user_namespace(pid_t pid, const UserNamespace& u, const RootfsPlan& rp, int ctl) {
  LS_TRY(write_proc_file(pid, "setgroups", u.allow_setgroups ? "allow" : "deny"));
  LS_TRY(write_proc_file(pid, "uid_map", map_text(u.uid_map)));
  LS_TRY(write_proc_file(pid, "gid_map", map_text(u.gid_map)));
  std::string ns = "/proc/" + std::to_string(pid) + "/ns/user";
  UniqueFd userns(::open(ns.c_str(), O_RDONLY | O_CLOEXEC));
  if (!userns) return fail_errno("open " + ns);
  std::vector<UniqueFd> fds;
  fds.reserve(rp.trees.size());
  for (const auto& t : rp.trees) {
    LS_TRY_ASSIGN(auto fd, make_tree(t, userns.get()));
    fds.push_back(std::move(fd));
  }
  return send_trees(ctl, fds);
}

// On-disk scratch in a user namespace: what the init mounts on, owned by the
// container's root.
Status make_userns_dirs(const fs::path& dir, size_t n_layers, uid_t uid, gid_t gid) {
  std::vector<fs::path> dirs = {dir / "upper", dir / "work", dir / "root", dir / "lower"};
  for (size_t i = 0; i < n_layers; ++i) dirs.push_back(dir / "lower" / std::to_string(i));
  for (const auto& d : dirs)
    if (::mkdir(d.c_str(), 0755) != 0) return fail_errno("create " + d.string());
  dirs.push_back(dir);
  for (const auto& d : dirs)
    if (::chown(d.c_str(), uid, gid) != 0) return fail_errno("chown " + d.string());
  return {};
}

bool same_map(const std::vector<IdMapping>& a, const std::vector<IdMapping>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].container_id != b[i].container_id || a[i].host_id != b[i].host_id ||
        a[i].size != b[i].size)
      return false;
  return true;
}

// Rootless: a container cannot own a user namespace of its own (its maps
// would need the setuid helpers per container), so it joins the process's
// (common/userns.hpp). This child of the runner joins it (and the network
// namespace to share, which that user namespace owns), then clones the init
// as the runner's own child (CLONE_PARENT) and reports its pid.
[[noreturn]] void rootless_intermediate_main(const InitPlan& plan, uint64_t flags, int userns_fd,
                                             int netns_fd, int ctl_fd, int report_fd,
                                             int pid_fd) noexcept {
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (::setns(userns_fd, CLONE_NEWUSER) != 0) child_fail(pid_fd, kInitJoinUserns, errno);
  if (netns_fd >= 0 && ::setns(netns_fd, CLONE_NEWNET) != 0)
    child_fail(pid_fd, kInitJoinNetns, errno);
  pid_t pid = clone3_fork(flags | CLONE_PARENT, nullptr);
  if (pid < 0) child_fail(pid_fd, kInitClone, errno);
  if (pid == 0) container_init_main(plan, ctl_fd, report_fd, -1);
  ChildReport r{kReportPid, 0, 0, -1, pid, 0, 0};
  (void)write_all(pid_fd, &r, sizeof r);
  ::_exit(0);
}

struct InitArgs {
  const InitPlan* plan;
  int ctl_fd;
  int report_fd;
  int netns_fd;
};

int init_entry(void* arg) {
  const auto* a = static_cast<const InitArgs*>(arg);
  container_init_main(*a->plan, a->ctl_fd, a->report_fd, a->netns_fd);
}

// The stack of an init that shares the runner's memory until its exec: the
// rootfs setup's deepest frames take a few KiB.
constexpr size_t kInitStack = 256 * 1024;

}  // namespace

Result<UniqueFd> open_container_netns(const std::string& id) {
  std::lock_guard lock(g_registry_mu);
  auto it = registry().find(id);
  if (it == registry().end())
    return fail("network container:" + id + ": no such running container", ErrorKind::kNotFound);
  return it->second->open_network_namespace();
}

Result<UniqueFd> LinuxContainer::open_network_namespace() const {
  if (ns_.size() > kRootlessNetIndex) {
    UniqueFd fd(::fcntl(ns_[kRootlessNetIndex].get(), F_DUPFD_CLOEXEC, 0));
    if (!fd) return fail_errno("duplicate the network namespace of container " + spec_.id);
    return fd;
  }
  std::string path = "/proc/" + std::to_string(init_pid_) + "/ns/net";
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail_errno("open " + path);
  return fd;
}

Result<std::unique_ptr<LinuxContainer>> LinuxContainer::start(const fs::path& state_dir,
                                                              const ContainerSpec& spec) {
  if (running_rootless() && !spec.user_namespace) {
    // Without root every container is in the user's user namespace.
    ContainerSpec own = spec;
    LS_TRY_ASSIGN(own.user_namespace, rootless_user_namespace());
    return start(state_dir, own);
  }
  LS_TRY(check_id(spec.id));
  if (spec.user_namespace) {
    LS_TRY(check_map(spec.id, "uid_map", spec.user_namespace->uid_map));
    LS_TRY(check_map(spec.id, "gid_map", spec.user_namespace->gid_map));
  }
  const bool rootless = running_rootless();
  RootlessHost host;
  int userns_fd = -1;
  if (rootless) {
    LS_TRY_ASSIGN(UserNamespace mine, rootless_user_namespace());
    if (!same_map(mine.uid_map, spec.user_namespace->uid_map) ||
        !same_map(mine.gid_map, spec.user_namespace->gid_map))
      return fail("container " + spec.id +
                      ": without root a container maps the user's own ids and subordinate "
                      "ranges (executor::rootless_user_namespace()), not another mapping",
                  ErrorKind::kUsage);
    LS_TRY_ASSIGN(host, rootless_host());
    LS_TRY_ASSIGN(userns_fd, rootless_userns_fd());
  }
  auto now = [] { return std::chrono::nanoseconds(monotonic_ns()); };
  auto t0 = now();
  std::unique_ptr<LinuxContainer> c(new LinuxContainer());
  c->spec_ = spec;
  fs::path parent = containers_dir(state_dir);
  fs::path mnt = parent / kMountPointName;
  if (::mkdir(mnt.c_str(), 0755) != 0 && errno != EEXIST) {
    std::error_code ec;
    fs::create_directories(mnt, ec);
    if (ec) return fail(Error("create " + mnt.string() + ": " + ec.message(), ec.value()));
  }
  fs::path file = parent / (spec.id + kStateSuffix);
  ContainerState st;
  st.id = spec.id;
  st.owner_pid = ::getpid();
  st.owner_start = process_start_time(st.owner_pid).value_or(0);
  if (auto s = write_state(file, st, true); !s) {
    if (s.error().errnum() == EEXIST)
      return fail("container " + spec.id + " already exists (" + file.string() + ")",
                  ErrorKind::kUsage);
    return fail(s.error());
  }
  // From here on the destructor (teardown) removes whatever exists.
  c->state_file_ = file;
  c->stopped_ = false;

  RootfsDirs dirs;
  if (spec.scratch_in_memory) {
    // The tmpfs exists only in the container's mount namespace, mounted on
    // the shared mount point: there is nothing on disk to create or delete.
    dirs = {mnt / "root", mnt / "upper", mnt / "work", mnt};
  } else {
    fs::path dir = parent / spec.id;
    if (::mkdir(dir.c_str(), 0700) != 0) return fail_errno("create " + dir.string());
    c->dir_ = dir;
    dirs = {mnt, dir / "upper", dir / "work", {}};
    if (spec.user_namespace) {
      dirs.userns_base = dir;
      LS_TRY(make_userns_dirs(dir, spec.layers.size(), host_root(spec.user_namespace->uid_map),
                              host_root(spec.user_namespace->gid_map)));
    } else {
      for (const auto& d : {dirs.upper, dirs.work})
        if (::mkdir(d.c_str(), 0755) != 0) return fail_errno("create " + d.string());
    }
  }
  if (spec.user_namespace && spec.scratch_in_memory) dirs.userns_base = mnt;
  dirs.rootless = rootless;
  if (rootless && host.rootfs == "copy") {
    // No overlay in a user namespace here: the container gets a copy.
    fs::path dir = parent / spec.id;
    if (c->dir_.empty()) {
      if (::mkdir(dir.c_str(), 0700) != 0) return fail_errno("create " + dir.string());
      c->dir_ = dir;
    }
    dirs.copy_root = dir / "rootfs";
    if (::mkdir(dirs.copy_root.c_str(), 0755) != 0)
      return fail_errno("create " + dirs.copy_root.string());
    if (auto s = copy_layers(spec.layers, dirs.copy_root); !s)
      return fail(std::move(s.error()).context("start container " + spec.id));
  }
  auto t_state = now();
  c->timings_.state = t_state - t0;
  InitPlan plan;
  LS_TRY_ASSIGN(plan.rootfs, build_rootfs_plan(spec, dirs));
  plan.hostname = spec.hostname;
  plan.domainname = spec.domainname;
  if (plan.domainname.size() > 64)
    return fail("domain name '" + spec.domainname + "' is longer than 64 bytes", ErrorKind::kUsage);
  if (plan.hostname.size() > 64)
    return fail("hostname '" + spec.hostname + "' is longer than 64 bytes", ErrorKind::kUsage);
  LS_TRY_ASSIGN(c->confinement_, prepare_confinement(spec));
  auto t_conf = now();
  c->timings_.confinement = t_conf - t_state;
  uint64_t flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC;
  std::vector<int> tree_fds;
  if (spec.user_namespace) {
    if (!rootless) flags |= CLONE_NEWUSER;
    tree_fds.assign(plan.rootfs.trees.size(), -1);
    plan.tree_fds = tree_fds.data();
  }
  UniqueFd netns;
  switch (spec.network.mode) {
    case NetworkMode::kNone:
      flags |= CLONE_NEWNET;
      plan.loopback_up = true;
      break;
    case NetworkMode::kHost:
      break;
    case NetworkMode::kContainer: {
      LS_TRY_ASSIGN(netns, open_container_netns(spec.network.container));
      break;
    }
    case NetworkMode::kEgress: {
      if (!spec.network.ns)
        return fail("container " + spec.id + ": network egress without a namespace",
                    ErrorKind::kUsage);
      netns = UniqueFd(::fcntl(spec.network.ns->fd(), F_DUPFD_CLOEXEC, 0));
      if (!netns) return fail_errno("duplicate the network namespace fd");
      break;
    }
  }
  auto t_net = now();
  LS_TRY_ASSIGN(c->cgroup_, Cgroup::create(spec.id, spec.limits));
  for (const fs::path& procs : c->cgroup_.join_files()) {
    UniqueFd fd(::open(procs.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) return fail_errno("open " + procs.string());
    c->cgroup_procs_raw_.push_back(fd.get());
    c->cgroup_procs_.push_back(std::move(fd));
  }
  plan.cgroup_procs = c->cgroup_procs_raw_;
  LS_TRY_ASSIGN(plan.program_fd, init_program_fd());
  auto t_clone = now();
  c->timings_.cgroup = t_clone - t_net;

  LS_TRY_ASSIGN(auto ctl, make_channel_pair());
  LS_TRY_ASSIGN(auto report, make_pipe());
  if (rootless) {
    LS_TRY(c->start_rootless(plan, flags, userns_fd, std::move(netns), std::move(ctl),
                             std::move(report)));
  } else {
    LS_TRY(c->start_init(plan, flags, std::move(netns), std::move(ctl), std::move(report)));
  }
  return finish_start(std::move(c), plan, file, st, t_clone);
}

Status LinuxContainer::start_init(InitPlan& plan, uint64_t flags, UniqueFd netns,
                                  std::pair<UniqueFd, UniqueFd> ctl,
                                  std::pair<UniqueFd, UniqueFd> report) {
  const ContainerSpec& spec = spec_;
  // From its own user namespace the init could not setns() into a network
  // namespace the host's user namespace owns. So this thread joins it for the
  // clone (the child inherits the thread's network namespace) and goes back
  // right after; other threads are not affected.
  UniqueFd own_netns;
  const bool join_here = spec.user_namespace && netns;
  if (join_here) {
    own_netns = UniqueFd(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!own_netns) return fail_errno("open /proc/thread-self/ns/net");
    if (::setns(netns.get(), CLONE_NEWNET) != 0)
      return fail_errno("join the network of container " + spec.network.container);
  }
  int pidfd = -1;
  pid_t pid;
  int clone_errno;
  InitArgs args{&plan, ctl.first.get(), report.second.get(),
                netns && !join_here ? netns.get() : -1};
  if (!spec.user_namespace) {
    // The child shares our memory until it execs the init program: no copy
    // of the runner per container. This thread waits meanwhile (CLONE_VFORK);
    // the child runs on a stack of its own with every signal blocked, so no
    // handler of the runner runs on it.
    const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    const size_t len = page + kInitStack;
    void* mem = ::mmap(nullptr, len, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (mem == MAP_FAILED) return fail_errno("map the stack of the init of container " + spec.id);
    if (::mprotect(mem, page, PROT_NONE) != 0) {
      ::munmap(mem, len);
      return fail_errno("guard the stack of the init of container " + spec.id);
    }
    sigset_t all, old;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &old);
    // On cgroup v2 the child is born in the container's cgroup (Cgroup::join_files()).
    pid = -1;
    clone_errno = ENOSYS;
    if (cgroup_.v2_dir_fd() >= 0) {
      plan.born_in_cgroup = true;
      pid = clone3_on_stack(flags | CLONE_VM | CLONE_VFORK, cgroup_.v2_dir_fd(), &pidfd,
                            static_cast<char*>(mem) + page, kInitStack, init_entry, &args);
      clone_errno = errno;
    }
    if (pid < 0 && clone3_unsupported(clone_errno)) {
      plan.born_in_cgroup = false;
      pid = ::clone(init_entry, static_cast<char*>(mem) + len,
                    static_cast<int>(flags) | CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, &args,
                    &pidfd);
      clone_errno = errno;
    }
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    ::munmap(mem, len);
  } else {
    // The runner writes the id maps of the user namespace while the child
    // waits for them: it cannot share our memory and stop us (a fork).
    plan.born_in_cgroup = cgroup_.v2_dir_fd() >= 0;
    pid = clone3_fork(flags, &pidfd, cgroup_.v2_dir_fd());
    clone_errno = errno;
    if (pid < 0 && plan.born_in_cgroup && clone3_unsupported(clone_errno)) {
      plan.born_in_cgroup = false;
      pid = clone3_fork(flags, &pidfd);
      clone_errno = errno;
    }
    if (pid == 0) container_init_main(plan, args.ctl_fd, args.report_fd, args.netns_fd);
  }
  if (join_here && ::setns(own_netns.get(), CLONE_NEWNET) != 0) {
    // This thread would go on in a container's network: nothing it does
    // afterwards could be trusted.
    std::fprintf(stderr, "lockstep: fatal: cannot return to the host network namespace: %s\n",
                 std::strerror(errno));
    std::abort();
  }
  if (pid < 0)
    return fail(Error::from_errno("clone the init of container " + spec.id, clone_errno));
  init_pid_ = pid;
  init_pidfd_ = UniqueFd(pidfd);
  ctl_ = std::move(ctl.second);
  report_ = std::move(report.first);
  ctl.first.reset();
  report.second.reset();
  netns.reset();
  if (spec.user_namespace) {
    if (auto s = setup_user_namespace(pid, *spec.user_namespace, plan.rootfs, ctl_.get()); !s)
      return fail(std::move(s.error()).context("start container " + spec.id));
  }
  return {};
}

Status LinuxContainer::start_rootless(InitPlan& plan, uint64_t flags, int userns_fd, UniqueFd netns,
                                      std::pair<UniqueFd, UniqueFd> ctl,
                                      std::pair<UniqueFd, UniqueFd> report) {
  const ContainerSpec& spec = spec_;
  LS_TRY_ASSIGN(auto pid_pipe, make_pipe());
  int mid_pidfd_raw = -1;
  pid_t mid = clone3_fork(0, &mid_pidfd_raw);
  if (mid < 0) return fail_errno("clone to start container " + spec.id);
  if (mid == 0)
    rootless_intermediate_main(plan, flags, userns_fd, netns ? netns.get() : -1, ctl.first.get(),
                               report.second.get(), pid_pipe.second.get());
  UniqueFd mid_pidfd(mid_pidfd_raw);
  pid_pipe.second.reset();
  ctl.first.reset();
  report.second.reset();
  netns.reset();
  ctl_ = std::move(ctl.second);
  report_ = std::move(report.first);
  ChildReport r{};
  ssize_t n = read_full(pid_pipe.first.get(), &r, sizeof r);
  siginfo_t si;
  while (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(mid_pidfd.get()), &si,
                  WEXITED) != 0 &&
         errno == EINTR) {
  }
  if (n != static_cast<ssize_t>(sizeof r))
    return fail("start container " + spec.id + ": the helper process died");
  if (r.kind == kReportError)
    return fail(Error::from_errno(
        "start container " + spec.id + ": " + describe_init_failure(plan, r.step, r.detail),
        r.err));
  init_pid_ = static_cast<pid_t>(r.value);
  // The init is our child (CLONE_PARENT): its pid cannot be reused before we
  // reap it.
  init_pidfd_ = UniqueFd(pidfd_open(init_pid_));
  if (!init_pidfd_) return fail_errno("pidfd_open for the init of container " + spec.id);
  return {};
}

Result<std::unique_ptr<LinuxContainer>> LinuxContainer::finish_start(
    std::unique_ptr<LinuxContainer> c, const InitPlan& plan, const fs::path& file,
    ContainerState st, std::chrono::nanoseconds t_clone) {
  const ContainerSpec& spec = c->spec_;
  auto now = [] { return std::chrono::nanoseconds(monotonic_ns()); };
  ChildReport r{};
  ssize_t n = read_report(c->report_.get(), c->init_pidfd_.get(), &r, sizeof r);
  if (n == kReportTimedOut)
    return fail("start container " + spec.id + ": its init sent no report within " +
                std::to_string(kReportTimeout.count()) + "s");
  if (n != static_cast<ssize_t>(sizeof r) || r.kind != kReportOk) {
    if (n == static_cast<ssize_t>(sizeof r) && r.kind == kReportError)
      return fail(Error::from_errno(
          "start container " + spec.id + ": " + describe_init_failure(plan, r.step, r.detail),
          r.err));
    return fail("start container " + spec.id + ": its init exited during setup");
  }
  if (plan.rootfs.make_trees) {
    auto fds = receive_root(c->ctl_.get());
    if (!fds) return fail(std::move(fds.error()).context("start container " + spec.id));
    c->root_ = std::move((*fds)[0]);
    for (size_t i = 1; i < fds->size(); ++i) c->ns_.push_back(std::move((*fds)[i]));
  }
  c->timings_.namespaces = std::chrono::nanoseconds(r.mounts_begin_ns) - t_clone;
  c->timings_.mounts = std::chrono::nanoseconds(r.mounts_end_ns - r.mounts_begin_ns);
  st.init_pid = c->init_pid_;
  st.init_start = process_start_time(c->init_pid_).value_or(0);
  LS_TRY(write_state(file, st, false));
  {
    std::lock_guard lock(g_registry_mu);
    registry()[spec.id] = c.get();
  }
  c->timings_.ready = now() - std::chrono::nanoseconds(r.mounts_end_ns);
  return c;
}

void unregister_container(const std::string& id, const LinuxContainer* c) {
  std::lock_guard lock(g_registry_mu);
  auto it = registry().find(id);
  if (it != registry().end() && it->second == c) registry().erase(it);
}

namespace {

class LinuxExecutor final : public Executor {
 public:
  explicit LinuxExecutor(fs::path state_dir) : state_dir_(std::move(state_dir)) {}
  Result<std::unique_ptr<Container>> start(const ContainerSpec& spec) override {
    LS_TRY_ASSIGN(auto c, LinuxContainer::start(state_dir_, spec));
    return std::unique_ptr<Container>(std::move(c));
  }

  Status retire(std::unique_ptr<Container> c, std::chrono::milliseconds grace) override {
    auto* lc = dynamic_cast<LinuxContainer*>(c.get());
    if (lc == nullptr) return c->stop(grace);
    lc->kill_processes(grace);
    (void)c.release();
    stops_.add(std::unique_ptr<LinuxContainer>(lc));
    return {};
  }

  Status settle() override {
    if (size_t n = stops_.drain())
      return fail(std::to_string(n) + " job container(s) could not be torn down completely " +
                  "(see the warnings above)");
    return {};
  }

 private:
  fs::path state_dir_;
  BackgroundStops stops_;  // last: destroyed (and waited for) first
};

}  // namespace
}  // namespace detail

std::unique_ptr<Executor> make_linux_executor(const std::filesystem::path& state_dir) {
  return std::make_unique<detail::LinuxExecutor>(state_dir);
}

}  // namespace lockstep::executor
