#pragma once
// Locks that keep `cache gc` away from what is in use, and last-use times that
// order its evictions.
//
//  - UseLock: a shared flock on <state>/locks/image-<manifest-hex>.lock, held by
//    a running job for as long as it uses the image. gc takes the same lock
//    exclusively and non-blocking; an image whose lock it cannot take is in use
//    and neither it nor anything it references is removed.
//  - StoreLock: a flock on <state>/locks/store.lock. Anything that writes blobs
//    and then records them under a tag (import, pull) holds it shared from the
//    first blob to the tag; gc holds it exclusively, so it never sees a
//    half-recorded image as garbage.
//  - Last use: the mtime of <state>/use/<manifest-hex>, touched when an image is
//    imported, pulled, or its layers are prepared for a job.
#include <chrono>
#include <filesystem>
#include <optional>
#include <vector>

#include "common/digest.hpp"
#include "common/error.hpp"
#include "common/fd.hpp"

namespace lockstep::cache {

class UseLock {
 public:
  UseLock() = default;
  // Blocks only while gc is checking this very image (a few microseconds).
  static Result<UseLock> acquire(const std::filesystem::path& state_dir, const Digest& manifest);
  bool held() const { return static_cast<bool>(fd_); }

 private:
  explicit UseLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

class StoreLock {
 public:
  StoreLock() = default;
  static Result<StoreLock> shared(const std::filesystem::path& state_dir);
  static Result<StoreLock> exclusive(const std::filesystem::path& state_dir);

 private:
  explicit StoreLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

// Holds the exclusive lock of an image that no job uses, or an empty fd when a
// job holds its UseLock. gc keeps it while deciding and removing.
Result<UniqueFd> try_lock_unused(const std::filesystem::path& state_dir, const Digest& manifest);
// Manifests that some process holds a UseLock on right now.
Result<std::vector<Digest>> images_in_use(const std::filesystem::path& state_dir);

Status record_use(const std::filesystem::path& state_dir, const Digest& manifest);
// The last recorded use, or nothing when the image was never used.
std::optional<std::chrono::system_clock::time_point> last_use(
    const std::filesystem::path& state_dir, const Digest& manifest);
Status forget_use(const std::filesystem::path& state_dir, const Digest& manifest);

// flock(path) with an fd opened O_CLOEXEC; `op` is LOCK_SH or LOCK_EX, optionally
// | LOCK_NB (then an empty fd is returned when the lock is taken). Retries when the
// file was unlinked and replaced between open and lock, so a held lock is
// always on the file that is at `path` now.
Result<UniqueFd> lock_file(const std::filesystem::path& path, int op);

}  // namespace lockstep::cache
