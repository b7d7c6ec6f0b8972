#include "cache/volumes.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>

#include "common/fs.hpp"

namespace lockstep::cache {
namespace fs = std::filesystem;

namespace {

// Opens <dir>/lock and takes the flock; fails with EWOULDBLOCK for a
// non-blocking lock another process holds.
Result<UniqueFd> lock_volume(const fs::path& dir, int how) {
  fs::path path = dir / "lock";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd) return fail_errno("open " + path.string());
  while (::flock(fd.get(), how) != 0) {
    if (errno == EINTR) continue;
    return fail_errno("lock " + path.string());
  }
  return fd;
}

// Whether `fd` is still the lock file at `dir` (not one a removal renamed away).
bool still_current(const fs::path& dir, const UniqueFd& fd) {
  struct stat a {
  }, b{};
  return ::fstat(fd.get(), &a) == 0 && ::stat((dir / "lock").c_str(), &b) == 0 &&
         a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

uint64_t tree_bytes(const fs::path& dir) {
  uint64_t n = 0;
  std::error_code ec;
  for (auto it =
           fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::end(it); it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode))
      n += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  return n;
}

std::chrono::system_clock::time_point last_use(const fs::path& dir) {
  struct stat st {};
  if (::stat((dir / "last-use").c_str(), &st) != 0) return {};
  return std::chrono::system_clock::time_point(std::chrono::seconds(st.st_mtim.tv_sec));
}

}  // namespace

bool valid_volume_name(std::string_view name) {
  if (name.size() < 2 || !std::isalnum(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-')
      return false;
  return true;
}

VolumeStore::VolumeStore(fs::path state_dir) : root_(std::move(state_dir) / "volumes") {}

Result<VolumeUse> VolumeStore::use(const std::string& name,
                                   std::optional<std::pair<uint32_t, uint32_t>> owner) {
  if (!valid_volume_name(name))
    return fail("invalid volume name '" + name +
                    "': a name is at least two of [a-zA-Z0-9_.-], starting with a letter or digit",
                ErrorKind::kUsage);
  fs::path dir = root_ / name;
  for (;;) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return fail("create volume " + dir.string() + ": " + ec.message());
    LS_TRY_ASSIGN(UniqueFd lock, lock_volume(dir, LOCK_SH));
    // `cache gc` may have removed the volume between open and lock: then
    // this lock guards nothing, and the volume is made afresh.
    if (!still_current(dir, lock)) continue;
    fs::path data = dir / "data";
    if (::mkdir(data.c_str(), 0755) == 0) {
      if (owner && ::chown(data.c_str(), owner->first, owner->second) != 0)
        return fail_errno("chown " + data.string());
    } else if (errno != EEXIST) {
      return fail_errno("create " + data.string());
    }
    LS_TRY(write_file(dir / "last-use", ""));
    return VolumeUse{data, std::move(lock)};
  }
}

Result<std::vector<VolumeInfo>> VolumeStore::list() const {
  std::vector<VolumeInfo> out;
  std::error_code ec;
  for (auto it = fs::directory_iterator(root_, ec); !ec && it != fs::end(it); it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (!valid_volume_name(name) || !it->is_directory()) continue;
    out.push_back({name, tree_bytes(it->path() / "data"), last_use(it->path())});
  }
  if (ec && ec != std::errc::no_such_file_or_directory)
    return fail("list " + root_.string() + ": " + ec.message());
  std::sort(out.begin(), out.end(),
            [](const VolumeInfo& a, const VolumeInfo& b) { return a.name < b.name; });
  return out;
}

Result<std::vector<VolumeInfo>> VolumeStore::remove_unused(std::chrono::seconds max_age) {
  LS_TRY_ASSIGN(std::vector<VolumeInfo> all, list());
  auto now = std::chrono::system_clock::now();
  std::vector<VolumeInfo> removed;
  for (const auto& v : all) {
    if (now - v.last_use <= max_age) continue;
    fs::path dir = root_ / v.name;
    auto lock = lock_volume(dir, LOCK_EX | LOCK_NB);
    if (!lock) {
      if (lock.error().errnum() == EWOULDBLOCK) continue;  // a job is using it
      return fail(std::move(lock.error()));
    }
    // Out of its name first: a crash leaves a ".removing-" directory the
    // next gc finishes, never a half-removed volume under its name.
    fs::path doomed = root_ / (".removing-" + v.name);
    if (::rename(dir.c_str(), doomed.c_str()) != 0) return fail_errno("rename " + dir.string());
    lock->reset();
    LS_TRY(remove_tree(doomed));
    removed.push_back(v);
  }
  std::error_code ec;
  for (auto it = fs::directory_iterator(root_, ec); !ec && it != fs::end(it); it.increment(ec))
    if (it->path().filename().string().rfind(".removing-", 0) == 0) LS_TRY(remove_tree(it->path()));
  return removed;
}

}  // namespace lockstep::cache
