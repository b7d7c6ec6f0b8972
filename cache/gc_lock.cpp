#include "cache/gc_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <system_error>

namespace lockstep::cache {
namespace fs = std::filesystem;

namespace {

fs::path image_lock_path(const fs::path& state, const Digest& d) {
  return state / "locks" / ("image-" + d.hex() + ".lock");
}

}  // namespace

Result<UniqueFd> lock_file(const fs::path& path, int op) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec)
    return fail(Error("create " + path.parent_path().string() + ": " + ec.message(), ec.value()));
  for (;;) {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644));
    if (!fd) return fail_errno("open lock " + path.string());
    int r;
    do r = ::flock(fd.get(), op);
    while (r != 0 && errno == EINTR);
    if (r != 0) {
      if (errno == EWOULDBLOCK) return UniqueFd();
      return fail_errno("lock " + path.string());
    }
    struct stat held {
    }, now{};
    if (::fstat(fd.get(), &held) != 0) return fail_errno("stat lock " + path.string());
    if (::stat(path.c_str(), &now) == 0 && now.st_ino == held.st_ino && now.st_dev == held.st_dev)
      return fd;
    // Unlinked by gc between our open and our lock: lock the new file instead.
  }
}

Result<UseLock> UseLock::acquire(const fs::path& state, const Digest& manifest) {
  LS_TRY_ASSIGN(auto fd, lock_file(image_lock_path(state, manifest), LOCK_SH));
  LS_TRY(record_use(state, manifest));
  return UseLock(std::move(fd));
}

Result<StoreLock> StoreLock::shared(const fs::path& state) {
  LS_TRY_ASSIGN(auto fd, lock_file(state / "locks" / "store.lock", LOCK_SH));
  return StoreLock(std::move(fd));
}

Result<StoreLock> StoreLock::exclusive(const fs::path& state) {
  LS_TRY_ASSIGN(auto fd, lock_file(state / "locks" / "store.lock", LOCK_EX));
  return StoreLock(std::move(fd));
}

Result<UniqueFd> try_lock_unused(const fs::path& state, const Digest& manifest) {
  return lock_file(image_lock_path(state, manifest), LOCK_EX | LOCK_NB);
}

Result<std::vector<Digest>> images_in_use(const fs::path& state) {
  std::vector<Digest> out;
  std::error_code ec;
  fs::path dir = state / "locks";
  if (!fs::exists(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    if (!name.starts_with("image-") || !name.ends_with(".lock")) continue;
    auto d = Digest::parse("sha256:" + name.substr(6, name.size() - 11));
    if (!d) continue;
    LS_TRY_ASSIGN(auto fd, lock_file(e.path(), LOCK_EX | LOCK_NB));
    if (!fd) {
      out.push_back(*d);
    } else {
      // Nobody holds it: drop the stale lock file while we hold it.
      ::unlink(e.path().c_str());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

Status record_use(const fs::path& state, const Digest& manifest) {
  fs::path p = state / "use" / manifest.hex();
  if (::utimensat(AT_FDCWD, p.c_str(), nullptr, 0) == 0) return {};
  std::error_code ec;
  fs::create_directories(p.parent_path(), ec);
  UniqueFd fd(::open(p.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (!fd) return fail_errno("record use of " + manifest.str() + " at " + p.string());
  if (::futimens(fd.get(), nullptr) != 0) return fail_errno("touch " + p.string());
  return {};
}

std::optional<std::chrono::system_clock::time_point> last_use(const fs::path& state,
                                                              const Digest& manifest) {
  struct stat st {};
  if (::stat((state / "use" / manifest.hex()).c_str(), &st) != 0) return std::nullopt;
  auto since =
      std::chrono::seconds(st.st_mtim.tv_sec) + std::chrono::nanoseconds(st.st_mtim.tv_nsec);
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(since));
}

Status forget_use(const fs::path& state, const Digest& manifest) {
  fs::path p = state / "use" / manifest.hex();
  if (::unlink(p.c_str()) != 0 && errno != ENOENT) return fail_errno("remove " + p.string());
  return {};
}

}  // namespace lockstep::cache
