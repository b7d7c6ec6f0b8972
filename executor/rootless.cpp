// Rootless containers: the mapping, the host probe (rootfs driver, cgroup
// delegation) and the copy fallback of the root filesystem.
#include "executor/rootless.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <sstream>

#include "common/fd.hpp"
#include "common/fs.hpp"
#include "common/userns.hpp"
#include "executor/cgroup_layout.hpp"
#include "executor/state.hpp"

namespace lockstep::executor {
namespace fs = std::filesystem;
namespace {

// Mounts a throwaway overlay in a new mount namespace owned by the user
// namespace: what the kernel allows there decides the rootfs driver.
Status probe_overlay() {
  return run_as_userns_root(
      []() -> Status {
        if (::unshare(CLONE_NEWNS) != 0) return fail_errno("unshare the mount namespace");
        if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
          return fail_errno("make / private");
        if (::mount("tmpfs", "/tmp", "tmpfs", 0, "mode=700") != 0) return fail_errno("mount tmpfs");
        for (const char* d : {"/tmp/l", "/tmp/u", "/tmp/w", "/tmp/r"})
          if (::mkdir(d, 0755) != 0) return fail_errno(std::string("mkdir ") + d);
        if (::mount("overlay", "/tmp/r", "overlay", 0,
                    "lowerdir=/tmp/l,upperdir=/tmp/u,workdir=/tmp/w,userxattr") != 0)
          return fail_errno("mount overlay");
        return {};
      },
      "probe overlayfs in a user namespace");
}

std::set<std::string> words(const std::string& text) {
  std::set<std::string> out;
  std::istringstream in(text);
  for (std::string w; in >> w;) out.insert(w);
  return out;
}

bool pid_alive(pid_t pid) {
  return ::kill(pid, 0) == 0 || errno == EPERM;
}

// The process's own cgroup v2 directory, or "" with `why` set.
fs::path own_v2_cgroup(std::string* why) {
  auto mi = read_file("/proc/self/mountinfo");
  fs::path mount;
  if (mi) {
    std::istringstream in(*mi);
    for (std::string line; std::getline(in, line);) {
      size_t dash = line.find(" - cgroup2 ");
      if (dash == std::string::npos) continue;
      std::istringstream head(line.substr(0, dash));
      std::string f[5];
      for (auto& x : f) head >> x;
      mount = f[4];
      break;
    }
  }
  if (mount.empty()) {
    *why = "no cgroup v2 hierarchy is mounted";
    return {};
  }
  auto self = read_file("/proc/self/cgroup");
  std::string rel;
  if (self) {
    std::istringstream in(*self);
    for (std::string line; std::getline(in, line);)
      if (line.rfind("0::", 0) == 0) rel = line.substr(3);
  }
  if (rel.empty() || rel[0] != '/') {
    *why = "this process has no cgroup v2 path";
    return {};
  }
  return mount / rel.substr(1);
}

Result<CgroupRoots> compute_rootless_roots() {
  CgroupRoots roots;
  roots.none = true;
  std::string why;
  fs::path base = own_v2_cgroup(&why);
  auto controllers =
      base.empty() ? Result<std::string>(std::string()) : read_file(base / "cgroup.controllers");
  std::set<std::string> offered = controllers ? words(*controllers) : std::set<std::string>{};
  if (base.empty()) {
    roots.none_reason = why + " (cgroup v1 host)";
    return roots;
  }
  if (!offered.count("memory") || !offered.count("pids")) {
    roots.none_reason = "the memory and pids controllers are not delegated to " + base.string() +
                        " (on a cgroup v2 host, run under 'systemd-run --user --scope -p "
                        "Delegate=yes')";
    return roots;
  }
  if (::access((base / "cgroup.procs").c_str(), W_OK) != 0 ||
      ::access((base / "cgroup.subtree_control").c_str(), W_OK) != 0) {
    roots.none_reason = base.string() +
                        " is not delegated to this user (run under 'systemd-run --user --scope "
                        "-p Delegate=yes', or ask the administrator to delegate a subtree)";
    return roots;
  }
  // Controllers can be enabled only in a cgroup without processes: this
  // process moves into a leaf of lockstep/ first. Leaves of dead processes
  // are removed here.
  const fs::path parent = base / Cgroup::kParent;
  if (::mkdir(parent.c_str(), 0755) != 0 && errno != EEXIST)
    return fail_errno("create cgroup " + parent.string());
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(parent, ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind("runner-", 0) != 0) continue;
    pid_t pid = static_cast<pid_t>(std::strtol(name.c_str() + 7, nullptr, 10));
    if (pid > 0 && !pid_alive(pid)) ::rmdir(e.path().c_str());
  }
  const fs::path leaf = parent / ("runner-" + std::to_string(::getpid()));
  if (::mkdir(leaf.c_str(), 0755) != 0 && errno != EEXIST)
    return fail_errno("create cgroup " + leaf.string());
  LS_TRY(cgroup_layout::write_control(leaf / "cgroup.procs", std::to_string(::getpid())));
  std::vector<std::string> enable = {"memory", "pids"};
  if (offered.count("cpu")) enable.push_back("cpu");
  for (const fs::path& p : {base, parent}) {
    for (const auto& c : enable) {
      if (auto s = cgroup_layout::write_control(p / "cgroup.subtree_control", "+" + c); !s) {
        // Other processes share the delegated cgroup: go back and do without.
        (void)cgroup_layout::write_control(base / "cgroup.procs", std::to_string(::getpid()));
        ::rmdir(leaf.c_str());
        roots.none_reason = "cannot enable the " + c + " controller in " + p.string() + " (" +
                            s.error().message() +
                            "); run lockstep in a cgroup of its own ('systemd-run --user --scope "
                            "-p Delegate=yes')";
        return roots;
      }
    }
  }
  roots.none = false;
  roots.unified = base;
  return roots;
}

// ---- the copy rootfs ----

bool is_whiteout(const struct stat& st) {
  return S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
}

bool is_opaque(const fs::path& dir) {
  char v[2];
  for (const char* name : {"user.overlay.opaque", "trusted.overlay.opaque"})
    if (::lgetxattr(dir.c_str(), name, v, sizeof v) == 1 && v[0] == 'y') return true;
  return false;
}

Status copy_meta(const fs::path& to, const struct stat& st) {
  if (::lchown(to.c_str(), st.st_uid, st.st_gid) != 0) return fail_errno("chown " + to.string());
  if (!S_ISLNK(st.st_mode) && ::chmod(to.c_str(), st.st_mode & 07777) != 0)
    return fail_errno("chmod " + to.string());
  timespec ts[2] = {st.st_atim, st.st_mtim};
  if (::utimensat(AT_FDCWD, to.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0)
    return fail_errno("set times of " + to.string());
  return {};
}

Status copy_one(const fs::path& from, const fs::path& to, const struct stat& st) {
  std::error_code ec;
  struct stat cur {};
  bool exists = ::lstat(to.c_str(), &cur) == 0;
  if (is_whiteout(st)) {
    fs::remove_all(to, ec);
    return {};
  }
  if (S_ISDIR(st.st_mode)) {
    if (exists && !S_ISDIR(cur.st_mode)) fs::remove(to, ec);
    if (exists && S_ISDIR(cur.st_mode) && is_opaque(from))
      for (const auto& e : fs::directory_iterator(to, ec)) fs::remove_all(e.path(), ec);
    if (::mkdir(to.c_str(), 0700) != 0 && errno != EEXIST)
      return fail_errno("mkdir " + to.string());
    return {};  // metadata after its contents
  }
  if (exists) fs::remove_all(to, ec);
  if (S_ISLNK(st.st_mode)) {
    std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
    ssize_t n = ::readlink(from.c_str(), target.data(), target.size());
    if (n < 0) return fail_errno("readlink " + from.string());
    target.resize(static_cast<size_t>(n));
    if (::symlink(target.c_str(), to.c_str()) != 0) return fail_errno("symlink " + to.string());
  } else if (S_ISREG(st.st_mode)) {
    if (!fs::copy_file(from, to, ec))
      return fail(Error("copy " + from.string() + ": " + ec.message(), ec.value()));
  } else if (S_ISFIFO(st.st_mode)) {
    if (::mkfifo(to.c_str(), 0600) != 0) return fail_errno("mkfifo " + to.string());
  } else {
    return {};  // device nodes cannot exist in a user namespace
  }
  return copy_meta(to, st);
}

Status copy_tree(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  std::vector<std::pair<fs::path, struct stat>> dirs;
  for (auto it = fs::recursive_directory_iterator(from, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const fs::path rel = fs::relative(it->path(), from, ec);
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) return fail_errno("stat " + it->path().string());
    LS_TRY(copy_one(it->path(), to / rel, st));
    if (S_ISDIR(st.st_mode)) dirs.emplace_back(to / rel, st);
    if (it->is_symlink(ec)) it.disable_recursion_pending();
  }
  if (ec) return fail(Error("walk " + from.string() + ": " + ec.message(), ec.value()));
  for (auto d = dirs.rbegin(); d != dirs.rend(); ++d) LS_TRY(copy_meta(d->first, d->second));
  return {};
}

}  // namespace

Result<UserNamespace> rootless_user_namespace() {
  LS_TRY_ASSIGN(RootlessMapping m, rootless_mapping());
  UserNamespace u;
  for (const auto& r : m.uid_map) u.uid_map.push_back({r.inside, r.outside, r.count});
  for (const auto& r : m.gid_map) u.gid_map.push_back({r.inside, r.outside, r.count});
  u.allow_setgroups = m.subordinate;
  return u;
}

Result<CgroupRoots> rootless_cgroup_roots() {
  static const Result<CgroupRoots> cached = compute_rootless_roots();
  return cached;
}

Result<RootlessHost> rootless_host() {
  static const Result<RootlessHost> cached = []() -> Result<RootlessHost> {
    RootlessHost h;
    LS_TRY(rootless_userns_fd());
    h.rootfs = probe_overlay() ? "overlay" : "copy";
    if (const char* force = std::getenv("LOCKSTEP_ROOTLESS_ROOTFS"); force && *force) {
      if (std::string(force) != "overlay" && std::string(force) != "copy")
        return fail(std::string("LOCKSTEP_ROOTLESS_ROOTFS must be 'overlay' or 'copy', not '") +
                        force + "'",
                    ErrorKind::kUsage);
      h.rootfs = force;
    }
    LS_TRY_ASSIGN(CgroupRoots roots, rootless_cgroup_roots());
    h.limits_enforced = !roots.none;
    h.limits_note = roots.none_reason;
    h.cgroup_base = roots.unified;
    return h;
  }();
  return cached;
}

namespace detail {

Status copy_layers(const std::vector<fs::path>& layers, const fs::path& dest) {
  return run_as_userns_root(
      [&]() -> Status {
        for (const auto& l : layers) LS_TRY(copy_tree(l, dest));
        return {};
      },
      "copy the layers into " + dest.string());
}

}  // namespace detail
}  // namespace lockstep::executor
