#include "executor/rootfs.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "executor/child_util.hpp"

namespace lockstep::executor::detail {
namespace fs = std::filesystem;

namespace {

// Docker's defaults (moby oci/defaults.go): hidden behind /dev/null or an
// empty read-only tmpfs, and remounted read-only.
const char* const kMaskedPaths[] = {
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
};
const char* const kReadonlyPaths[] = {
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};

// mount(2) takes at most one page of options.
constexpr size_t kMaxMountData = 4095;

Result<std::string> relative_target(const std::string& target) {
  if (target.empty() || target[0] != '/')
    return fail("mount target '" + target + "' is not an absolute path", ErrorKind::kUsage);
  fs::path norm = fs::path(target).lexically_normal();
  std::string rel = norm.relative_path().string();
  while (!rel.empty() && rel.back() == '/') rel.pop_back();
  if (rel.empty() || rel == "." || rel.starts_with("..") || rel.size() >= PATH_MAX - 1)
    return fail("mount target '" + target + "' is not allowed", ErrorKind::kUsage);
  return rel;
}

Status check_overlay_path(const fs::path& p) {
  const std::string& s = p.native();
  if (s.find_first_of(",:\\") != std::string::npos)
    return fail("layer path " + s + " contains ',' ':' or '\\', which overlayfs cannot take",
                ErrorKind::kUnsupported);
  return {};
}

bool maps(const std::vector<IdMapping>& m, uint32_t id) {
  for (const auto& e : m)
    if (id >= e.container_id && id - e.container_id < e.size) return true;
  return false;
}

RootfsStep mount_step(std::string target, std::string source, std::string fstype,
                      unsigned long flags, std::string data) {
  RootfsStep s;
  s.kind = RootfsStep::kMount;
  s.target = std::move(target);
  s.source = std::move(source);
  s.fstype = std::move(fstype);
  s.flags = flags;
  s.data = std::move(data);
  return s;
}

RootfsStep node_step(std::string target, unsigned maj, unsigned min) {
  RootfsStep s;
  s.kind = RootfsStep::kMknod;
  s.target = std::move(target);
  s.mode = S_IFCHR | 0666;
  s.dev = makedev(maj, min);
  return s;
}

RootfsStep link_step(std::string target, std::string text) {
  RootfsStep s;
  s.kind = RootfsStep::kSymlink;
  s.target = std::move(target);
  s.source = std::move(text);
  return s;
}

// ---- child side: system calls only ----

constexpr uint64_t kBeneath = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;

// Opens (creating when missing) `rel` below rootfd as an O_PATH fd without
// following any symlink, so that an image cannot redirect a mount onto a
// host path. Returns the fd or -1 with errno.
int open_beneath(int rootfd, const char* rel, bool dir) noexcept {
  char buf[PATH_MAX];
  size_t len = std::strlen(rel);
  if (len >= sizeof buf) {
    errno = ENAMETOOLONG;
    return -1;
  }
  std::memcpy(buf, rel, len + 1);
  int cur = rootfd;
  char* p = buf;
  for (;;) {
    char* slash = std::strchr(p, '/');
    bool last = slash == nullptr;
    if (!last) *slash = '\0';
    if (*p == '\0') {  // "a//b"
      p = slash + 1;
      continue;
    }
    bool want_dir = !last || dir;
    int flags = O_PATH | O_CLOEXEC | (want_dir ? O_DIRECTORY : 0);
    int fd = openat2_resolve(cur, p, flags, kBeneath);
    if (fd < 0 && errno == ENOENT) {
      int r;
      if (want_dir) {
        r = ::mkdirat(cur, p, 0755);
      } else {
        r = ::openat(cur, p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (r >= 0) ::close(r);
      }
      if (r < 0 && errno != EEXIST) {
        int e = errno;
        if (cur != rootfd) ::close(cur);
        errno = e;
        return -1;
      }
      fd = openat2_resolve(cur, p, flags, kBeneath);
    }
    int e = errno;
    if (cur != rootfd) ::close(cur);
    if (fd < 0) {
      errno = e;
      return -1;
    }
    cur = fd;
    if (last) return cur;
    p = slash + 1;
  }
}

// Copies the first of s.seed that exists into `fd`; 0 or -1 with errno.
int copy_seed(int rootfd, const RootfsStep& s, int fd) noexcept {
  constexpr uint64_t kInRoot = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  for (const auto& from : s.seed) {
    int in = openat2_resolve(rootfd, from.c_str(), O_RDONLY | O_CLOEXEC, kInRoot);
    if (in < 0) continue;
    char buf[8192];
    for (;;) {
      ssize_t n = ::read(in, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      if (::write(fd, buf, static_cast<size_t>(n)) != n) {
        int e = errno;
        ::close(in);
        errno = e ? e : EIO;
        return -1;
      }
    }
    ::close(in);
    return 0;
  }
  return 0;
}

// Appends s.source to s.target, following the image's symlinks inside the
// root only; a missing file is created in the directory its path resolves
// to (missing directories are made without following any symlink).
int append_step(int rootfd, const RootfsStep& s, int* step) noexcept {
  constexpr uint64_t kInRoot = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  *step = kFailTarget;
  int fd = openat2_resolve(rootfd, s.target.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC, kInRoot);
  if (fd < 0 && errno == ENOENT) {
    // No allocation here (the child of a threaded parent): split in a copy.
    char dir[PATH_MAX];
    if (s.target.size() >= sizeof dir) return ENAMETOOLONG;
    std::memcpy(dir, s.target.c_str(), s.target.size() + 1);
    char* slash = std::strrchr(dir, '/');
    const char* base = slash ? slash + 1 : dir;
    if (slash) *slash = '\0';
    const char* parent = slash ? dir : ".";
    int d = openat2_resolve(rootfd, parent, O_PATH | O_DIRECTORY | O_CLOEXEC, kInRoot);
    if (d < 0 && errno == ENOENT) d = open_beneath(rootfd, parent, true);
    if (d < 0) return errno;
    fd = ::openat(d, base, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    int e = errno;
    ::close(d);
    errno = e;
    if (fd >= 0 && copy_seed(rootfd, s, fd) != 0) {
      e = errno;
      ::close(fd);
      *step = kFailStep;
      return e;
    }
  }
  if (fd < 0) return errno;
  *step = kFailStep;
  const char* p = s.source.data();
  size_t left = s.source.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = n < 0 ? errno : EIO;
      ::close(fd);
      return e;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  ::close(fd);
  return 0;
}

int run_step(int rootfd, const RootfsStep& s, const int* tree_fds, int* step) noexcept {
  if (s.kind == RootfsStep::kAppend) return append_step(rootfd, s, step);
  if (s.kind == RootfsStep::kMknod) {
    *step = kFailStep;
    if (::mknodat(rootfd, s.target.c_str(), s.mode, s.dev) != 0 && errno != EEXIST) return errno;
    return 0;
  }
  if (s.kind == RootfsStep::kSymlink) {
    *step = kFailStep;
    if (::symlinkat(s.source.c_str(), rootfd, s.target.c_str()) != 0 && errno != EEXIST)
      return errno;
    return 0;
  }
  *step = kFailTarget;
  int fd = open_beneath(rootfd, s.target.c_str(), s.target_dir);
  if (fd < 0) return errno;
  if (s.tree >= 0) {
    // Read-only and nosuid were set on the tree by the runner.
    *step = kFailStep;
    int r = ::move_mount(tree_fds[s.tree], "", fd, "",
                         MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
    int e = errno;
    ::close(fd);
    return r == 0 ? 0 : e;
  }
  char path[32];
  proc_fd_path(fd, path);
  *step = kFailStep;
  int r = s.kind == RootfsStep::kBind ? ::mount(s.source.c_str(), path, nullptr, s.flags, nullptr)
                                      : ::mount(s.source.c_str(), path, s.fstype.c_str(), s.flags,
                                                s.data.empty() ? nullptr : s.data.c_str());
  int e = errno;
  ::close(fd);
  if (r != 0) return e;
  if (s.kind == RootfsStep::kBind && s.read_only) {
    // Remount through the new mount's root: the fd above names the dentry
    // underneath it.
    *step = kFailRemountRo;
    fd = open_beneath(rootfd, s.target.c_str(), s.target_dir);
    if (fd < 0) return errno;
    proc_fd_path(fd, path);
    r = ::mount(nullptr, path, nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
                nullptr);
    e = errno;
    ::close(fd);
    if (r != 0) return e;
  }
  return 0;
}

}  // namespace

Result<RootfsPlan> build_rootfs_plan(const ContainerSpec& spec, const RootfsDirs& dirs) {
  if (spec.layers.empty()) return fail("container has no image layers", ErrorKind::kUsage);
  RootfsPlan plan;
  plan.rootfs_dir = dirs.rootfs.string();
  plan.scratch_tmpfs = dirs.scratch_tmpfs.string();
  const bool userns = spec.user_namespace.has_value();
  std::string lower;
  if (userns) {
    // The layers arrive idmapped as lower/<i> below base_dir, and the
    // overlay is mounted from inside the namespace with paths relative to
    // it (docs/containers.md). userxattr: trusted.* xattrs need the host's
    // CAP_SYS_ADMIN.
    plan.userns = true;
    plan.userns_setgroups = spec.user_namespace->allow_setgroups;
    plan.base_dir = dirs.userns_base.string();
    plan.rootfs_dir = (dirs.userns_base / "root").string();
    plan.make_trees = dirs.rootless;
    if (!dirs.copy_root.empty()) {
      plan.copy_root = true;
      plan.trees.push_back({dirs.copy_root.string(), false, false, false});
    } else {
      plan.n_layers = spec.layers.size();
      for (size_t i = 0; i < spec.layers.size(); ++i) {
        plan.layer_dirs.push_back("lower/" + std::to_string(i));
        plan.trees.push_back({spec.layers[i].string(), false, true, !dirs.rootless});
      }
      for (size_t i = spec.layers.size(); i-- > 0;) {
        if (!lower.empty()) lower += ':';
        lower += plan.layer_dirs[i];
      }
      plan.overlay_data = "lowerdir=" + lower + ",upperdir=upper,workdir=work,volatile,userxattr";
    }
  } else {
    for (auto it = spec.layers.rbegin(); it != spec.layers.rend(); ++it) {  // topmost first
      LS_TRY(check_overlay_path(*it));
      if (!lower.empty()) lower += ':';
      lower += it->string();
    }
    LS_TRY(check_overlay_path(dirs.upper));
    LS_TRY(check_overlay_path(dirs.work));
    // volatile: the upper dir is thrown away, so skip the syncs overlayfs
    // would otherwise do on unmount (~3 ms each on disk).
    plan.overlay_data = "lowerdir=" + lower + ",upperdir=" + dirs.upper.string() +
                        ",workdir=" + dirs.work.string() + ",volatile";
  }
  // A detached copy of a host path, bind-mounted by the init of a container
  // in a user namespace.
  auto tree_step = [&](std::string target, std::string source, bool recursive, bool read_only,
                       bool dir) {
    RootfsStep s;
    s.kind = RootfsStep::kBind;
    s.target = std::move(target);
    s.source = source;
    s.target_dir = dir;
    s.tree = static_cast<int>(plan.trees.size());
    plan.trees.push_back({std::move(source), recursive, read_only, false});
    return s;
  };
  // Device nodes cannot be created in a user namespace: the host's are
  // bind-mounted instead.
  auto device = [&](std::string target, unsigned maj, unsigned min) {
    if (!userns) return node_step(std::move(target), maj, min);
    std::string host = "/" + target;
    return tree_step(std::move(target), std::move(host), false, false, false);
  };
  if (plan.overlay_data.size() > kMaxMountData)
    return fail("too many layers for one overlay mount (" + std::to_string(spec.layers.size()) +
                    " layers, " + std::to_string(plan.overlay_data.size()) + " bytes of options)",
                ErrorKind::kUnsupported);

  auto& st = plan.steps;
  st.push_back(mount_step("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, ""));
  st.push_back(
      mount_step("dev", "tmpfs", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k"));
  st.push_back(device("dev/null", 1, 3));
  st.push_back(device("dev/zero", 1, 5));
  st.push_back(device("dev/full", 1, 7));
  st.push_back(device("dev/random", 1, 8));
  st.push_back(device("dev/urandom", 1, 9));
  st.push_back(device("dev/tty", 5, 0));
  // The tty group (5) must exist in a user namespace for devpts to take it.
  bool tty_gid = !userns || maps(spec.user_namespace->gid_map, 5);
  st.push_back(mount_step("dev/pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC,
                          tty_gid ? "newinstance,ptmxmode=0666,mode=0620,gid=5"
                                  : "newinstance,ptmxmode=0666,mode=0620"));
  st.push_back(link_step("dev/ptmx", "pts/ptmx"));
  st.push_back(mount_step("dev/shm", "shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                          "mode=1777,size=65536k"));
  st.push_back(mount_step("dev/mqueue", "mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, ""));
  st.push_back(link_step("dev/fd", "/proc/self/fd"));
  st.push_back(link_step("dev/stdin", "/proc/self/fd/0"));
  st.push_back(link_step("dev/stdout", "/proc/self/fd/1"));
  st.push_back(link_step("dev/stderr", "/proc/self/fd/2"));
  if (userns && spec.network.mode != NetworkMode::kNone) {
    // sysfs can be mounted only by the owner of the network namespace: the
    // host's is bind-mounted read-only.
    st.push_back(tree_step("sys", "/sys", true, true, true));
  } else {
    st.push_back(
        mount_step("sys", "sysfs", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, ""));
  }

  // Before the bind mounts: an append lands in the rootfs, never in a host
  // file mounted over it.
  for (const auto& a : spec.appends) {
    RootfsStep s;
    s.kind = RootfsStep::kAppend;
    LS_TRY_ASSIGN(s.target, relative_target(a.path));
    s.source = a.text;
    for (const auto& from : a.seed) {
      LS_TRY_ASSIGN(std::string rel, relative_target(from));
      s.seed.push_back(std::move(rel));
    }
    st.push_back(std::move(s));
  }
  for (const auto& m : spec.mounts) {
    LS_TRY_ASSIGN(std::string rel, relative_target(m.target));
    struct stat sb;
    if (::stat(m.source.c_str(), &sb) != 0)
      return fail_errno("bind mount source " + m.source.string());
    if (userns) {
      st.push_back(
          tree_step(std::move(rel), m.source.string(), true, m.read_only, S_ISDIR(sb.st_mode)));
      continue;
    }
    RootfsStep s;
    s.kind = RootfsStep::kBind;
    s.target = std::move(rel);
    s.source = m.source.string();
    s.flags = MS_BIND | MS_REC;
    s.read_only = m.read_only;
    s.target_dir = S_ISDIR(sb.st_mode);
    st.push_back(std::move(s));
  }
  for (const char* p : kMaskedPaths) plan.masked_paths.emplace_back(p);
  for (const char* p : kReadonlyPaths) plan.readonly_paths.emplace_back(p);
  return plan;
}

namespace {

// The overlay on rootfs_dir, mounted as the host's root; returns the opened
// root or -1 with errno and *step set.
int host_overlay(const RootfsPlan& plan, int* step) noexcept {
  if (!plan.scratch_tmpfs.empty()) {
    *step = kFailScratch;
    const char* s = plan.scratch_tmpfs.c_str();
    if (::mount("tmpfs", s, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755") != 0) return -1;
    int fd = ::open(s, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    for (const char* d : {"upper", "work", "root"}) {
      if (::mkdirat(fd, d, 0755) != 0) {
        int e = errno;
        ::close(fd);
        errno = e;
        return -1;
      }
    }
    ::close(fd);
  }
  *step = kFailOverlay;
  if (::mount("overlay", plan.rootfs_dir.c_str(), "overlay", 0, plan.overlay_data.c_str()) != 0)
    return -1;
  *step = kFailOpenRoot;
  return ::open(plan.rootfs_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
}

// Rootless: the detached copies of plan.trees, made by the init (root of its
// user namespace and owner of its mount namespace) before pivot_root, while
// the host's paths are still visible. 0, or -1 with errno and *step/*detail.
int make_trees_here(const RootfsPlan& plan, int* tree_fds, int* step, int* detail) noexcept {
  *step = kFailMakeTree;
  for (size_t i = 0; i < plan.trees.size(); ++i) {
    const DetachedTree& t = plan.trees[i];
    *detail = static_cast<int>(i);
    unsigned flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (t.recursive ? AT_RECURSIVE : 0);
    int fd = ::open_tree(AT_FDCWD, t.source.c_str(), flags);
    if (fd < 0) return -1;
    tree_fds[i] = fd;
    if (!t.read_only) continue;
    struct mount_attr a;
    std::memset(&a, 0, sizeof a);
    a.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
    if (::mount_setattr(fd, "", AT_EMPTY_PATH | (t.recursive ? AT_RECURSIVE : 0), &a, sizeof a) !=
        0)
      return -1;
  }
  *detail = -1;
  return 0;
}

// The overlay of a container in a user namespace, mounted on <base>/root;
// returns the opened root or -1 with errno and *step/*detail set. Entered as
// the host's root with the namespace's capabilities: base_dir is resolved
// while still the host's root (the state dir may be closed to others), all
// the rest as the container's root, so that what it creates belongs to the
// namespace.
int userns_overlay(const RootfsPlan& plan, int* tree_fds, int* step, int* detail) noexcept {
  *step = kFailScratch;
  int base = ::open(plan.base_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (base < 0) return -1;
  *step = kFailUserns;
  // Raw system calls, as in spawn.cpp: the runner's other threads do not
  // exist here.
  if (plan.userns_setgroups && ::syscall(SYS_setgroups, 0, nullptr) != 0) return -1;
  if (::syscall(SYS_setresgid, 0, 0, 0) != 0) return -1;
  if (::syscall(SYS_setresuid, 0, 0, 0) != 0) return -1;
  int dir = base;
  if (!plan.scratch_tmpfs.empty()) {
    *step = kFailScratch;
    int fsfd = ::fsopen("tmpfs", FSOPEN_CLOEXEC);
    if (fsfd < 0) return -1;
    int mfd = -1;
    if (::fsconfig(fsfd, FSCONFIG_SET_STRING, "mode", "755", 0) == 0 &&
        ::fsconfig(fsfd, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) == 0)
      mfd = ::fsmount(fsfd, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
    int e = errno;
    ::close(fsfd);
    if (mfd < 0) {
      errno = e;
      return -1;
    }
    if (::move_mount(mfd, "", base, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0)
      return -1;
    for (const char* d : {"upper", "work", "root", "lower"})
      if (::mkdirat(mfd, d, 0755) != 0) return -1;
    for (const auto& l : plan.layer_dirs)
      if (::mkdirat(mfd, l.c_str(), 0755) != 0) return -1;
    dir = mfd;
  }
  if (::fchdir(dir) != 0) return -1;
  if (plan.make_trees && make_trees_here(plan, tree_fds, step, detail) != 0) return -1;
  *step = kFailMoveTree;
  for (size_t i = 0; i < plan.n_layers; ++i) {
    *detail = static_cast<int>(i);
    if (::move_mount(tree_fds[i], "", dir, plan.layer_dirs[i].c_str(), MOVE_MOUNT_F_EMPTY_PATH) !=
        0)
      return -1;
  }
  *detail = -1;
  if (plan.copy_root) {
    *detail = 0;
    if (::move_mount(tree_fds[0], "", dir, "root", MOVE_MOUNT_F_EMPTY_PATH) != 0) return -1;
    *detail = -1;
  } else {
    *step = kFailOverlay;
    // Relative to the working directory: the overlay resolves its layer
    // paths as the container's root, which may not pass through the state
    // dir.
    if (::mount("overlay", "root", "overlay", 0, plan.overlay_data.c_str()) != 0) return -1;
  }
  *step = kFailOpenRoot;
  int rootfd = ::openat(dir, "root", O_PATH | O_DIRECTORY | O_CLOEXEC);
  int e = errno;
  // Nothing may keep the host's tree reachable once the old root is gone.
  if (dir != base) ::close(dir);
  ::close(base);
  errno = e;
  return rootfd;
}

}  // namespace

int setup_rootfs(const RootfsPlan& plan, int* tree_fds, int* step, int* detail) noexcept {
  *detail = -1;
  *step = kFailMakePrivate;
  // Nothing we mount may propagate back to the host, and the host's later
  // mounts must not appear here.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return errno;
  int rootfd =
      plan.userns ? userns_overlay(plan, tree_fds, step, detail) : host_overlay(plan, step);
  if (rootfd < 0) return errno;
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    *detail = static_cast<int>(i);
    int e = run_step(rootfd, plan.steps[i], tree_fds, step);
    if (e != 0) return e;
  }
  *detail = -1;
  *step = kFailPivot;
  // pivot_root(".", "."): the old root ends up stacked on the new one and is
  // detached right away, so no path leads back to the host tree.
  if (::fchdir(rootfd) != 0) return errno;
  ::close(rootfd);
  if (::syscall(SYS_pivot_root, ".", ".") != 0) return errno;
  *step = kFailDetachOldRoot;
  if (::umount2(".", MNT_DETACH) != 0) return errno;
  if (::chdir("/") != 0) return errno;

  for (size_t i = 0; i < plan.masked_paths.size(); ++i) {
    *step = kFailMask;
    *detail = static_cast<int>(i);
    const char* p = plan.masked_paths[i].c_str();
    if (::mount("/dev/null", p, nullptr, MS_BIND, nullptr) == 0) continue;
    if (errno == ENOENT) continue;
    if (errno != ENOTDIR) return errno;
    if (::mount("tmpfs", p, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0") != 0)
      return errno;
  }
  for (size_t i = 0; i < plan.readonly_paths.size(); ++i) {
    *step = kFailReadonly;
    *detail = static_cast<int>(i);
    const char* p = plan.readonly_paths[i].c_str();
    if (::mount(p, p, nullptr, MS_BIND | MS_REC, nullptr) != 0) {
      if (errno == ENOENT) continue;
      return errno;
    }
    if (::mount(nullptr, p, nullptr,
                MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
      return errno;
  }
  return 0;
}

std::string describe_rootfs_failure(const RootfsPlan& plan, int step, int detail) {
  auto at = [&](const std::vector<std::string>& v) {
    return detail >= 0 && static_cast<size_t>(detail) < v.size() ? v[static_cast<size_t>(detail)]
                                                                 : std::string("?");
  };
  const RootfsStep* s = detail >= 0 && static_cast<size_t>(detail) < plan.steps.size()
                            ? &plan.steps[static_cast<size_t>(detail)]
                            : nullptr;
  switch (step) {
    case kFailMakePrivate:
      return "make the mount namespace private";
    case kFailScratch:
      return "mount the scratch tmpfs on " + (plan.userns ? plan.base_dir : plan.scratch_tmpfs);
    case kFailOverlay:
      return "mount overlay on " + plan.rootfs_dir;
    case kFailOpenRoot:
      return "open " + plan.rootfs_dir;
    case kFailTarget:
      if (s && s->kind == RootfsStep::kAppend) return "open /" + s->target + " to append to it";
      return "create mount point /" + (s ? s->target : std::string("?"));
    case kFailStep:
      if (s == nullptr) return "prepare rootfs";
      if (s->kind == RootfsStep::kMknod) return "create device /" + s->target;
      if (s->kind == RootfsStep::kSymlink) return "create symlink /" + s->target;
      if (s->kind == RootfsStep::kAppend) return "append to /" + s->target;
      if (s->kind == RootfsStep::kBind) return "bind mount " + s->source + " on /" + s->target;
      return "mount /" + s->target + " (" + s->fstype + ")";
    case kFailRemountRo:
      return "remount /" + (s ? s->target : std::string("?")) + " read-only";
    case kFailPivot:
      return "pivot_root into " + plan.rootfs_dir;
    case kFailDetachOldRoot:
      return "detach the old root";
    case kFailMask:
      return "mask " + at(plan.masked_paths);
    case kFailReadonly:
      return "make " + at(plan.readonly_paths) + " read-only";
    case kFailUserns:
      return "become root of the user namespace";
    case kFailMakeTree:
      return "bind " +
             (detail >= 0 && static_cast<size_t>(detail) < plan.trees.size()
                  ? plan.trees[static_cast<size_t>(detail)].source
                  : std::string("?")) +
             " into the container";
    case kFailMoveTree:
      return "mount layer " +
             (detail >= 0 && static_cast<size_t>(detail) < plan.trees.size()
                  ? plan.trees[static_cast<size_t>(detail)].source
                  : std::string("?")) +
             (plan.make_trees ? "" : " (idmapped)");
    default:
      return "prepare rootfs";
  }
}

}  // namespace lockstep::executor::detail
