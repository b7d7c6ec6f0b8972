#include "cache/layer_lower.hpp"

#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <optional>
#include <string_view>

namespace lockstep::cache {
namespace fs = std::filesystem;

bool is_whiteout(const struct stat& st) {
  return S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
}

namespace {

constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

Error integrity(const std::string& what, const std::string& why) {
  return Error(what + ": " + why, 0, ErrorKind::kIntegrity);
}

// trusted.* as root writes it, user.* as a rootless unpack does.
bool is_opaque(int dirfd) {
  char v[2] = {};
  for (const char* name : {"trusted.overlay.opaque", "user.overlay.opaque"})
    if (::fgetxattr(dirfd, name, v, sizeof v) == 1 && v[0] == 'y') return true;
  return false;
}

// Every xattr of an open file except overlayfs' own (trusted.overlay.*),
// which would turn the copy into an instruction to overlayfs.
Result<std::vector<std::pair<std::string, std::string>>> xattrs_of(int fd,
                                                                   const std::string& what) {
  std::vector<std::pair<std::string, std::string>> out;
  ssize_t n = ::flistxattr(fd, nullptr, 0);
  if (n < 0) {
    if (errno == ENOTSUP) return out;
    return fail_errno("list xattrs of '" + what + "'");
  }
  std::string names(static_cast<size_t>(n), '\0');
  n = ::flistxattr(fd, names.data(), names.size());
  if (n < 0) return fail_errno("list xattrs of '" + what + "'");
  names.resize(static_cast<size_t>(n));
  for (size_t i = 0; i < names.size();) {
    std::string name = names.c_str() + i;
    i += name.size() + 1;
    if (name.empty() || std::string_view(name).starts_with("trusted.overlay.") ||
        std::string_view(name).starts_with("user.overlay."))
      continue;
    ssize_t len = ::fgetxattr(fd, name.c_str(), nullptr, 0);
    if (len < 0) return fail_errno("read xattr " + name + " of '" + what + "'");
    std::string value(static_cast<size_t>(len), '\0');
    len = ::fgetxattr(fd, name.c_str(), value.data(), value.size());
    if (len < 0) return fail_errno("read xattr " + name + " of '" + what + "'");
    value.resize(static_cast<size_t>(len));
    out.emplace_back(std::move(name), std::move(value));
  }
  return out;
}

EntryMeta meta_from(const struct stat& st) {
  EntryMeta m;
  m.mode = st.st_mode & 07777;
  m.uid = st.st_uid;
  m.gid = st.st_gid;
  m.mtime_sec = st.st_mtim.tv_sec;
  m.mtime_nsec = st.st_mtim.tv_nsec;
  return m;
}

Status copy_bytes(int from, int to, uint64_t size, const std::string& what) {
  uint64_t done = 0;
  while (done < size) {
    ssize_t n = ::copy_file_range(from, nullptr, to, nullptr, size - done, 0);
    if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL))
      n = ::sendfile(to, from, nullptr, size - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("copy '" + what + "' from the layer below");
    }
    if (n == 0) return fail(Error("copy '" + what + "': the file in the layer below shrank"));
    done += static_cast<uint64_t>(n);
  }
  return {};
}

// Where the merged view finds the target: the directory fd in the layer
// that holds it, and what is there.
struct Source {
  UniqueFd parent;
  struct stat st {};
};

}  // namespace

Result<LowerLayers> LowerLayers::open(const std::vector<fs::path>& lowest_first) {
  LowerLayers l;
  for (auto it = lowest_first.rbegin(); it != lowest_first.rend(); ++it) {
    UniqueFd fd(::open(it->c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) return fail_errno("open layer " + it->string());
    l.top_first_.push_back(std::move(fd));
  }
  return l;
}

Status LowerLayers::copy_up(RootedWriter& layer, const std::vector<std::string>& target,
                            const std::string& what) const {
  if (target.empty()) return fail(integrity(what, "the target is the layer root"));
  const size_t k = target.size();
  // The directories on the way as the merged view shows them: the topmost
  // layer that has each decides its metadata.
  std::vector<std::optional<struct stat>> dir_st(k - 1);
  std::vector<std::optional<std::vector<std::pair<std::string, std::string>>>> dir_xattrs(k - 1);
  std::optional<Source> found;

  // Layer 0 of this walk is the layer being written: its whiteouts, opaque
  // directories and symlinks hide the layers below just as theirs do.
  for (size_t li = 0; li <= top_first_.size() && !found; ++li) {
    const bool top = li == 0;
    int root = top ? layer.root_fd() : top_first_[li - 1].get();
    UniqueFd cur(::dup(root));
    if (!cur) return fail_errno("dup");
    bool hides_below = false, absent = false;
    for (size_t i = 0; i < k && !absent; ++i) {
      const std::string here = join_path(target, i + 1);
      struct stat st {};
      if (::fstatat(cur.get(), target[i].c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno != ENOENT) return fail_errno(what + ": stat '" + here + "'");
        absent = true;
        break;
      }
      if (is_whiteout(st))
        return fail(integrity(what, top ? "'" + here + "' was removed by a whiteout in this layer"
                                        : "'" + here + "' was removed by a layer below"));
      if (i + 1 == k) {
        if (S_ISDIR(st.st_mode)) return fail(integrity(what, "the target is a directory"));
        if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
          return fail(integrity(what, "the target in the layer below is a device, fifo or socket"));
        if (top) return {};  // already here
        found = Source{std::move(cur), st};
        break;
      }
      if (S_ISLNK(st.st_mode))
        return fail(integrity(what, "'" + here +
                                        "' is a symlink; a hard link's target is not looked up "
                                        "through symlinks in the layers below"));
      if (!S_ISDIR(st.st_mode)) return fail(integrity(what, "'" + here + "' is not a directory"));
      UniqueFd next(::openat(cur.get(), target[i].c_str(), kDirFlags));
      if (!next) return fail_errno(what + ": open '" + here + "'");
      if (!top && !dir_st[i]) {
        dir_st[i] = st;
        LS_TRY_ASSIGN(dir_xattrs[i], xattrs_of(next.get(), here));
      }
      hides_below = hides_below || is_opaque(next.get());
      cur = std::move(next);
    }
    if (!found && hides_below) break;  // an opaque directory ends the search
  }
  if (!found)
    return fail(Error(what + ": no such file in this layer or the layers below", ENOENT,
                      ErrorKind::kIntegrity));

  // Create what is missing in the layer being written, from its root down
  // (mkdirat and O_NOFOLLOW: nothing is created through a symlink).
  UniqueFd cur(::dup(layer.root_fd()));
  if (!cur) return fail_errno("dup");
  for (size_t i = 0; i + 1 < k; ++i) {
    const std::vector<std::string> prefix(target.begin(),
                                          target.begin() + static_cast<long>(i + 1));
    const std::string here = join_path(target, i + 1);
    UniqueFd next(::openat(cur.get(), target[i].c_str(), kDirFlags));
    if (!next) {
      if (errno != ENOENT) return fail_errno(what + ": open '" + here + "'");
      if (!dir_st[i]) return fail(Error(what + ": no directory '" + here + "' below"));
      if (::mkdirat(cur.get(), target[i].c_str(), 0700) != 0)
        return fail_errno(what + ": create directory '" + here + "'");
      next = UniqueFd(::openat(cur.get(), target[i].c_str(), kDirFlags));
      if (!next) return fail_errno(what + ": open '" + here + "'");
      EntryMeta m = meta_from(*dir_st[i]);
      m.xattrs = *dir_xattrs[i];
      LS_TRY(layer.apply_meta(next.get(), m, here));
      layer.defer_dir_mtime(prefix, m.mtime_sec, m.mtime_nsec);
    }
    cur = std::move(next);
  }
  const std::string& name = target.back();
  const std::string path = join_path(target, k);
  EntryMeta m = meta_from(found->st);
  if (S_ISLNK(found->st.st_mode)) {
    std::string link(static_cast<size_t>(found->st.st_size) + 1, '\0');
    ssize_t n = ::readlinkat(found->parent.get(), name.c_str(), link.data(), link.size());
    if (n < 0) return fail_errno(what + ": read symlink '" + path + "' in the layer below");
    link.resize(static_cast<size_t>(n));
    return layer.make_symlink(cur.get(), name, link, m);
  }
  UniqueFd src(::openat(found->parent.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!src) return fail_errno(what + ": open '" + path + "' in the layer below");
  struct stat st {};
  if (::fstat(src.get(), &st) != 0 || !S_ISREG(st.st_mode))
    return fail(integrity(what, "'" + path + "' changed in the layer below"));
  LS_TRY_ASSIGN(m.xattrs, xattrs_of(src.get(), path));
  LS_TRY_ASSIGN(UniqueFd dst, layer.create_file(cur.get(), name));
  LS_TRY(copy_bytes(src.get(), dst.get(), static_cast<uint64_t>(st.st_size), path));
  return layer.apply_meta(dst.get(), m, path);
}

}  // namespace lockstep::cache
