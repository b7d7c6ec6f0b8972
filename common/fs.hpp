#pragma once
// Filesystem primitives: atomic publication, temp dirs that delete themselves,
// whole-file reads.
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace lockstep {

Result<std::string> read_file(const std::filesystem::path& path);

// Writes bytes to a temp file in the destination's directory, fsyncs it and
// renames it over `path`: readers see the old content or the new, never a part.
Status write_file_atomic(const std::filesystem::path& path, std::string_view bytes,
                         int mode = 0644);

// Writes bytes to `path` (created or truncated) without fsync: for scratch
// files whose loss in a crash does not matter (a job's step scripts).
Status write_file(const std::filesystem::path& path, std::string_view bytes, int mode = 0644);

// fsync a directory so that a rename into it is durable.
Status fsync_dir(const std::filesystem::path& dir);

// A directory created with mkdtemp and removed, recursively, on destruction.
class TempDir {
 public:
  TempDir() = default;
  // Creates "<parent>/<prefix>XXXXXX".
  static Result<TempDir> create(const std::filesystem::path& parent, std::string_view prefix);
  TempDir(TempDir&& o) noexcept : path_(std::move(o.path_)) { o.path_.clear(); }
  TempDir& operator=(TempDir&& o) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  const std::filesystem::path& path() const { return path_; }
  // Stops owning the directory (after it was renamed into place).
  std::filesystem::path release();

 private:
  explicit TempDir(std::filesystem::path p) : path_(std::move(p)) {}
  std::filesystem::path path_;
};

// Removes a tree without following symlinks or crossing mount points; fixes
// up permissions of read-only directories on the way. Missing is success.
Status remove_tree(const std::filesystem::path& path);

// A pipe, both ends close-on-exec: {read end, write end}.
Result<std::pair<UniqueFd, UniqueFd>> make_pipe();

}  // namespace lockstep
