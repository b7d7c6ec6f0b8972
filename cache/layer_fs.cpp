#include "cache/layer_fs.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

namespace lockstep::cache {

namespace {

int sys_openat2(int dirfd, const char* path, int flags) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  for (;;) {
    long r = ::syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    if (r >= 0 || errno != EAGAIN) return static_cast<int>(r);
  }
}

Status remove_children(int dirfd, const std::string& what) {
  int dup = ::dup(dirfd);
  if (dup < 0) return fail_errno("dup");
  DIR* d = ::fdopendir(dup);
  if (!d) {
    ::close(dup);
    return fail_errno("opendir " + what);
  }
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  ::closedir(d);
  for (const auto& n : names) {
    struct stat st {};
    if (::fstatat(dirfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      UniqueFd sub(::openat(dirfd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub) return fail_errno("open " + what + "/" + n);
      LS_TRY(remove_children(sub.get(), what + "/" + n));
      if (::unlinkat(dirfd, n.c_str(), AT_REMOVEDIR) != 0) return fail_errno("rmdir " + n);
    } else if (::unlinkat(dirfd, n.c_str(), 0) != 0) {
      return fail_errno("unlink " + what + "/" + n);
    }
  }
  return {};
}

}  // namespace

std::string join_path(const std::vector<std::string>& comps, size_t n) {
  std::string out;
  for (size_t i = 0; i < n && i < comps.size(); ++i) {
    if (i) out += '/';
    out += comps[i];
  }
  return out;
}

Result<std::vector<std::string>> split_entry_path(std::string_view path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view c = path.substr(i, j - i);
    if (c == "..")
      return fail(Error("entry '" + std::string(path) + "' escapes the layer directory ('..')", 0,
                        ErrorKind::kIntegrity));
    if (!c.empty() && c != ".") out.emplace_back(c);
    i = j + 1;
  }
  return out;
}

Result<RootedWriter> RootedWriter::open(const std::string& root) {
  UniqueFd fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return fail_errno("open " + root);
  return RootedWriter(std::move(fd));
}

Result<UniqueFd> RootedWriter::resolve(const std::string& rel, int flags) {
  if (rel.empty()) {
    UniqueFd fd(::dup(root_.get()));
    if (!fd) return fail_errno("dup");
    return fd;
  }
  UniqueFd fd(sys_openat2(root_.get(), rel.c_str(), flags));
  if (!fd) return fail_errno("open '" + rel + "' in the layer");
  return fd;
}

Result<UniqueFd> RootedWriter::dir(const std::vector<std::string>& comps) {
  return resolve(join_path(comps, comps.size()), O_RDONLY | O_DIRECTORY);
}

Result<UniqueFd> RootedWriter::parent_dir(const std::vector<std::string>& comps, bool create) {
  size_t n = comps.empty() ? 0 : comps.size() - 1;
  auto whole = resolve(join_path(comps, n), O_RDONLY | O_DIRECTORY);
  if (whole || !create || whole.error().errnum() != ENOENT) return whole;
  // Create the missing directories one at a time, each inside the resolved
  // previous one (mkdirat never follows its last component).
  LS_TRY_ASSIGN(UniqueFd cur, resolve("", 0));
  for (size_t i = 0; i < n; ++i) {
    if (::mkdirat(cur.get(), comps[i].c_str(), 0755) != 0 && errno != EEXIST)
      return fail_errno("create directory '" + join_path(comps, i + 1) + "' in the layer");
    LS_TRY_ASSIGN(cur, resolve(join_path(comps, i + 1), O_RDONLY | O_DIRECTORY));
  }
  return cur;
}

Result<std::optional<struct stat>> RootedWriter::lookup(const std::vector<std::string>& comps) {
  if (comps.empty()) return std::nullopt;
  auto parent = parent_dir(comps, false);
  if (!parent) {
    int e = parent.error().errnum();
    if (e == ENOENT || e == ENOTDIR) return std::nullopt;
    return fail(std::move(parent.error()));
  }
  struct stat st {};
  if (::fstatat(parent->get(), comps.back().c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return std::nullopt;
    return fail_errno("stat '" + join_path(comps, comps.size()) + "' in the layer");
  }
  return st;
}

Status RootedWriter::remove_at(int parent, const std::string& name) {
  struct stat st {};
  if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return {};
    return fail_errno("stat '" + name + "'");
  }
  if (S_ISDIR(st.st_mode)) {
    UniqueFd sub(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!sub) return fail_errno("open '" + name + "'");
    LS_TRY(remove_children(sub.get(), name));
    if (::unlinkat(parent, name.c_str(), AT_REMOVEDIR) != 0)
      return fail_errno("remove directory '" + name + "'");
    return {};
  }
  if (::unlinkat(parent, name.c_str(), 0) != 0 && errno != ENOENT)
    return fail_errno("remove '" + name + "'");
  return {};
}

Result<UniqueFd> RootedWriter::create_file(int parent, const std::string& name) {
  LS_TRY(remove_at(parent, name));
  UniqueFd fd(
      ::openat(parent, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) return fail_errno("create '" + name + "'");
  return fd;
}

Status RootedWriter::make_dir(int parent, const std::string& name, const EntryMeta& m) {
  struct stat st {};
  if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode))
    LS_TRY(remove_at(parent, name));
  if (::mkdirat(parent, name.c_str(), 0700) != 0 && errno != EEXIST)
    return fail_errno("create directory '" + name + "'");
  UniqueFd fd(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return fail_errno("open directory '" + name + "'");
  return apply_meta(fd.get(), m, name);
}

Status RootedWriter::make_symlink(int parent, const std::string& name, const std::string& target,
                                  const EntryMeta& m) {
  LS_TRY(remove_at(parent, name));
  if (::symlinkat(target.c_str(), parent, name.c_str()) != 0)
    return fail_errno("create symlink '" + name + "'");
  if (keep_owner_ && ::fchownat(parent, name.c_str(), m.uid, m.gid, AT_SYMLINK_NOFOLLOW) != 0)
    return fail_errno("chown symlink '" + name + "'");
  timespec ts[2] = {{m.mtime_sec, m.mtime_nsec}, {m.mtime_sec, m.mtime_nsec}};
  if (::utimensat(parent, name.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0)
    return fail_errno("set mtime of symlink '" + name + "'");
  return {};
}

Status RootedWriter::make_hardlink(int parent, const std::string& name,
                                   const std::vector<std::string>& target) {
  if (target.empty()) return fail("hardlink '" + name + "' points at the layer root");
  auto tparent_r = parent_dir(target, false);
  if (!tparent_r)
    return fail(
        std::move(tparent_r.error())
            .context("hardlink '" + name + "' to '" + join_path(target, target.size()) + "'"));
  UniqueFd tparent = std::move(*tparent_r);
  struct stat st {};
  if (::fstatat(tparent.get(), target.back().c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
    return fail_errno("hardlink '" + name + "' to '" + join_path(target, target.size()) + "'");
  if (S_ISDIR(st.st_mode))
    return fail("hardlink '" + name + "' points at directory '" + join_path(target, target.size()) +
                "'");
  LS_TRY(remove_at(parent, name));
  if (::linkat(tparent.get(), target.back().c_str(), parent, name.c_str(), 0) != 0)
    return fail_errno("hardlink '" + name + "' to '" + join_path(target, target.size()) + "'");
  return {};
}

Status RootedWriter::make_node(int parent, const std::string& name, mode_t type, dev_t rdev,
                               const EntryMeta& m) {
  LS_TRY(remove_at(parent, name));
  if (::mknodat(parent, name.c_str(), type | (m.mode & 07777), rdev) != 0)
    return fail_errno("create device node '" + name + "'");
  if (keep_owner_ && ::fchownat(parent, name.c_str(), m.uid, m.gid, AT_SYMLINK_NOFOLLOW) != 0)
    return fail_errno("chown '" + name + "'");
  if (::fchmodat(parent, name.c_str(), m.mode & 07777, 0) != 0)
    return fail_errno("chmod '" + name + "'");
  timespec ts[2] = {{m.mtime_sec, m.mtime_nsec}, {m.mtime_sec, m.mtime_nsec}};
  if (::utimensat(parent, name.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0)
    return fail_errno("set mtime of '" + name + "'");
  return {};
}

Status RootedWriter::apply_meta(int fd, const EntryMeta& m, std::string_view what) {
  if (keep_owner_ && ::fchown(fd, m.uid, m.gid) != 0)
    return fail_errno("chown '" + std::string(what) + "'");
  for (const auto& [k, v] : m.xattrs) {
    if (::fsetxattr(fd, k.c_str(), v.data(), v.size(), 0) != 0)
      return fail_errno("set xattr " + k + " on '" + std::string(what) + "'");
  }
  // After xattrs: security.capability is dropped by a later chown, not chmod.
  if (::fchmod(fd, m.mode & 07777) != 0) return fail_errno("chmod '" + std::string(what) + "'");
  timespec ts[2] = {{m.mtime_sec, m.mtime_nsec}, {m.mtime_sec, m.mtime_nsec}};
  if (::futimens(fd, ts) != 0) return fail_errno("set mtime of '" + std::string(what) + "'");
  return {};
}

void RootedWriter::defer_dir_mtime(std::vector<std::string> comps, int64_t sec, long nsec) {
  dir_mtimes_[std::move(comps)] = {sec, nsec};
}

Status RootedWriter::finish_dir_mtimes() {
  // Deepest first is not needed: setting a directory's mtime does not change
  // its parent's. Directories replaced later by other types are skipped.
  for (const auto& [comps, t] : dir_mtimes_) {
    auto fd = resolve(join_path(comps, comps.size()), O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (!fd) continue;
    timespec ts[2] = {{t.first, t.second}, {t.first, t.second}};
    if (::futimens(fd->get(), ts) != 0)
      return fail_errno("set mtime of '" + join_path(comps, comps.size()) + "'");
  }
  dir_mtimes_.clear();
  return {};
}

}  // namespace lockstep::cache
