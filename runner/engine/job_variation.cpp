// The variations a verify build applies to a job (verify.hpp): the
// container's host name, umask, user and CPUs, the workspace seen through
// disorderfs, and the workspace and $HOME owned by the build's user.
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <tuple>

#include "common/userns.hpp"
#include "runner/engine/job_internal.hpp"

namespace lockstep::runner::detail {

namespace {

Status chown_tree(const fs::path& root, uid_t uid, gid_t gid) {
  std::error_code ec;
  if (::lchown(root.c_str(), uid, gid) != 0)
    return fail(Error::from_errno("chown " + root.string(), errno));
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (::lchown(it->path().c_str(), uid, gid) != 0)
      return fail(Error::from_errno("chown " + it->path().string(), errno));
  }
  if (ec) return fail("walk " + root.string() + ": " + ec.message());
  return {};
}

// disorderfs resolves its root to a real path and reaches it with the
// caller's uid: a state dir under a private parent (mode 0700) would make a
// verify build running as another uid fail. The root is therefore a bind of
// the workspace under /run/lockstep-disorder/<pid>-<name>/, whose parents
// anyone may traverse. What a killed lockstep left there is swept by the next.
constexpr const char* kDisorderRoot = "/run/lockstep-disorder";

void sweep_stale_disorder_binds() {
  std::error_code ec;
  for (auto it = fs::directory_iterator(kDisorderRoot, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    std::string name = it->path().filename().string();
    pid_t owner = static_cast<pid_t>(std::strtol(name.c_str(), nullptr, 10));
    if (owner > 0 && (::kill(owner, 0) == 0 || errno == EPERM)) continue;
    ::umount2(it->path().c_str(), MNT_DETACH);
    fs::remove(it->path(), ec);
  }
}

}  // namespace

Status DisorderMount::mount(const fs::path& real, const fs::path& at) {
  static const char* kBinary = "/usr/bin/disorderfs";
  if (::access(kBinary, X_OK) != 0)
    return fail(
        "verify's dir-order variation needs disorderfs (apt-get install disorderfs), or leave it "
        "out with --vary -dir-order",
        ErrorKind::kUnsupported);
  std::error_code ec;
  if (::mkdir(kDisorderRoot, 0755) != 0 && errno != EEXIST)
    return fail(Error::from_errno(std::string("create ") + kDisorderRoot, errno));
  sweep_stale_disorder_binds();
  bind = fs::path(kDisorderRoot) /
         (std::to_string(::getpid()) + "-" + at.parent_path().filename().string());
  fs::create_directories(bind, ec);
  fs::create_directories(at, ec);
  if (ec) return fail("create " + at.string() + ": " + ec.message());
  if (::mount(real.c_str(), bind.c_str(), nullptr, MS_BIND | MS_PRIVATE, nullptr) != 0) {
    int e = errno;
    unmount();
    return fail(Error::from_errno("bind " + real.string() + " to " + bind.string(), e));
  }
  // Forks into the background once mounted; auto_unmount cleans up should
  // lockstep die.
  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    unmount();
    return fail(Error::from_errno("fork", e));
  }
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull >= 0) {
      ::dup2(devnull, 0);
      ::dup2(devnull, 1);
    }
    ::execl(kBinary, kBinary, "--quiet", "--multi-user=yes", "--reverse-dirents=yes", "-o",
            "auto_unmount,attr_timeout=0,entry_timeout=0,negative_timeout=0", bind.c_str(),
            at.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    unmount();
    return fail("disorderfs " + bind.string() + " " + at.string() + " failed (status " +
                std::to_string(status) + ")");
  }
  view = at;
  return {};
}

void DisorderMount::unmount() {
  std::error_code ec;
  if (!view.empty()) {
    ::umount2(view.c_str(), MNT_DETACH);
    fs::remove(view, ec);
    view.clear();
  }
  if (!bind.empty()) {
    ::umount2(bind.c_str(), MNT_DETACH);
    fs::remove(bind, ec);
    bind.clear();
  }
}

void JobExecution::apply_variation(executor::ContainerSpec& spec) {
  const auto& v = run_.vary;
  if (!v.hostname.empty()) spec.hostname = v.hostname;
  if (!v.domainname.empty()) spec.domainname = v.domainname;
  if (v.umask) spec.umask = *v.umask;
  if (!v.cpuset.empty()) spec.limits.cpuset = v.cpuset;
  if (v.uid_gid)
    spec.user = std::to_string(v.uid_gid->first) + ":" + std::to_string(v.uid_gid->second);
}

Status JobExecution::own_workspace(bool for_build) {
  if (!run_.vary.uid_gid && !run_.userns) return {};
  // Without root the user is root of the containers: what it writes on the
  // host side already belongs to container id 0, and other container ids
  // are given as root of the user namespace.
  if (running_rootless()) {
    if (!run_.vary.uid_gid) return {};
    std::pair<uint32_t, uint32_t> ids{0, 0};
    if (for_build) ids = *run_.vary.uid_gid;
    if (workspace_owner_ == ids) return {};
    std::vector<fs::path> dirs = {workspace_host_.parent_path().parent_path(), home_host_};
    LS_TRY(run_as_userns_root(
        [&]() -> Status {
          for (const auto& d : dirs)
            if (Status s = chown_tree(d, ids.first, ids.second); !s) return s;
          return {};
        },
        "give the workspace to the build's user"));
    workspace_owner_ = ids;
    return {};
  }
  // Built-in actions write on the host side as root; a build running as
  // another user, or as root of a user namespace (a host id of its own),
  // must own what it builds in.
  uint32_t uid = 0, gid = 0;
  if (for_build) {
    if (run_.vary.uid_gid) std::tie(uid, gid) = *run_.vary.uid_gid;
    if (run_.userns) {
      auto to_host = [](const std::vector<executor::IdMapping>& map, uint32_t id) {
        for (const auto& m : map)
          if (id >= m.container_id && id - m.container_id < m.size)
            return m.host_id + (id - m.container_id);
        return map.empty() ? id : map.front().host_id;
      };
      uid = to_host(run_.userns->uid_map, uid);
      gid = to_host(run_.userns->gid_map, gid);
    }
  }
  // Consecutive steps of one kind need no second walk over the tree: what a
  // run step creates already belongs to the ids it runs as.
  if (workspace_owner_ == std::make_pair(uid, gid)) return {};
  for (const auto& d : {workspace_host_.parent_path().parent_path(), home_host_})
    LS_TRY(chown_tree(d, uid, gid));
  workspace_owner_ = std::make_pair(uid, gid);
  return {};
}

}  // namespace lockstep::runner::detail
