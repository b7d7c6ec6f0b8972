#pragma once
// LockFile: an exclusive flock(2) on a file, held for the object's lifetime.
// Used to serialise writers of one on-disk structure (a git mirror, an index)
// across processes. Header-only (common's source list is fixed).
// The lock file itself is never removed: removing it would
// let a waiter lock an unlinked inode while a newcomer locks a fresh one.
#include <fcntl.h>
#include <sys/file.h>

#include <filesystem>
#include <system_error>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace lockstep {

class LockFile {
 public:
  LockFile() = default;
  // Creates `path` (and its parent) if needed and blocks until the lock is
  // held: exclusive for writers, shared for readers that must not see a
  // writer's intermediate state.
  static Result<LockFile> acquire(const std::filesystem::path& path, bool shared = false) {
    std::error_code ec;
    if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
    if (ec)
      return fail(Error("create " + path.parent_path().string() + ": " + ec.message(), ec.value()));
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (!fd) return fail_errno("open lock " + path.string());
    while (::flock(fd.get(), shared ? LOCK_SH : LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      return fail_errno("lock " + path.string());
    }
    return LockFile(std::move(fd));
  }
  LockFile(LockFile&&) noexcept = default;
  LockFile& operator=(LockFile&&) noexcept = default;

  bool held() const { return static_cast<bool>(fd_); }
  // Closing the descriptor releases the lock.
  void release() { fd_.reset(); }

 private:
  explicit LockFile(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace lockstep
