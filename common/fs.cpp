#include "common/fs.hpp"
#include "common/userns.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <system_error>

#include "common/fd.hpp"

namespace lockstep {
namespace fs = std::filesystem;

Result<std::string> read_file(const fs::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail_errno("open " + path.string());
  std::string out;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("read " + path.string());
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Status fsync_dir(const fs::path& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return fail_errno("open " + dir.string());
  if (::fsync(fd.get()) != 0) return fail_errno("fsync " + dir.string());
  return {};
}

Status write_file_atomic(const fs::path& path, std::string_view bytes, int mode) {
  fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::string tmpl = (dir / ("." + path.filename().string() + ".tmp-XXXXXX")).string();
  UniqueFd fd(::mkostemp(tmpl.data(), O_CLOEXEC));
  if (!fd) return fail_errno("create temp file in " + dir.string());
  auto cleanup = [&] { ::unlink(tmpl.c_str()); };
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd.get(), bytes.data() + off, bytes.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      auto e = fail_errno("write " + tmpl);
      cleanup();
      return e;
    }
    off += static_cast<size_t>(n);
  }
  if (::fchmod(fd.get(), static_cast<mode_t>(mode)) != 0 || ::fsync(fd.get()) != 0) {
    auto e = fail_errno("sync " + tmpl);
    cleanup();
    return e;
  }
  fd.reset();
  if (::rename(tmpl.c_str(), path.c_str()) != 0) {
    auto e = fail_errno("rename into " + path.string());
    cleanup();
    return e;
  }
  return fsync_dir(dir);
}

Status write_file(const fs::path& path, std::string_view bytes, int mode) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
                     static_cast<mode_t>(mode)));
  if (!fd) return fail_errno("create " + path.string());
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd.get(), bytes.data() + off, bytes.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("write " + path.string());
    }
    off += static_cast<size_t>(n);
  }
  if (::fchmod(fd.get(), static_cast<mode_t>(mode)) != 0)
    return fail_errno("chmod " + path.string());
  return {};
}

Result<TempDir> TempDir::create(const fs::path& parent, std::string_view prefix) {
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) return fail(Error("create " + parent.string() + ": " + ec.message(), ec.value()));
  std::string tmpl = (parent / (std::string(prefix) + "XXXXXX")).string();
  if (!::mkdtemp(tmpl.data())) return fail_errno("mkdtemp in " + parent.string());
  return TempDir(fs::path(tmpl));
}

TempDir& TempDir::operator=(TempDir&& o) noexcept {
  if (this != &o) {
    if (!path_.empty()) (void)remove_tree(path_);
    path_ = std::move(o.path_);
    o.path_.clear();
  }
  return *this;
}

TempDir::~TempDir() {
  if (!path_.empty()) (void)remove_tree(path_);
}

fs::path TempDir::release() {
  fs::path p = std::move(path_);
  path_.clear();
  return p;
}

namespace {

Status remove_at(int dirfd, const char* name, dev_t dev) {
  struct stat st {};
  if (::fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return {};
    return fail_errno(std::string("stat ") + name);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(dirfd, name, 0) != 0 && errno != ENOENT)
      return fail_errno(std::string("unlink ") + name);
    return {};
  }
  if (st.st_dev != dev) return fail(std::string("refusing to remove mount point ") + name);
  if ((st.st_mode & 0700) != 0700) ::fchmodat(dirfd, name, st.st_mode | 0700, 0);
  UniqueFd sub(::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!sub) return fail_errno(std::string("open ") + name);
  int dupfd = ::dup(sub.get());
  if (dupfd < 0) return fail_errno("dup");
  DIR* d = ::fdopendir(dupfd);
  if (!d) {
    ::close(dupfd);
    return fail_errno(std::string("opendir ") + name);
  }
  Status status;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n == "." || n == "..") continue;
    auto r = remove_at(sub.get(), e->d_name, dev);
    if (!r && status) status = r;
  }
  ::closedir(d);
  if (!status) return status;
  if (::unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
    return fail_errno(std::string("rmdir ") + name);
  return {};
}

}  // namespace

Status remove_tree(const fs::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {};
    return fail_errno("stat " + path.string());
  }
  fs::path parent = path.has_parent_path() ? path.parent_path() : fs::path(".");
  UniqueFd pfd(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!pfd) return fail_errno("open " + parent.string());
  auto r = remove_at(pfd.get(), path.filename().c_str(), st.st_dev);
  if (!r && running_rootless() && (r.error().errnum() == EACCES || r.error().errnum() == EPERM)) {
    // Files a rootless job wrote belong to subordinate ids the user cannot
    // remove directly; root of the user namespace can.
    r = run_as_userns_root(
        [&]() -> Status { return remove_at(pfd.get(), path.filename().c_str(), st.st_dev); },
        "remove " + path.string());
    if (!r) return fail(std::move(r.error()));
    return {};
  }
  if (!r) return fail(std::move(r.error()).context("remove " + path.string()));
  return {};
}

Result<std::pair<UniqueFd, UniqueFd>> make_pipe() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return fail_errno("pipe");
  return std::make_pair(UniqueFd(p[0]), UniqueFd(p[1]));
}

}  // namespace lockstep
