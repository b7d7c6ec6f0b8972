#pragma once
// The archives of the dependency cache: pax tar, zstd-compressed. Entry
// names are "workspace/<path>" or "home/<path>" so that an archive saved by
// one job restores into another job's workspace and home.
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "cache/depcache_paths.hpp"
#include "common/digest.hpp"
#include "common/error.hpp"

namespace lockstep::cache {

struct ArchiveMember {
  std::string name;            // "workspace/..." or "home/..."
  std::filesystem::path path;  // on disk
};

// Every file, directory and symlink under the matched paths (directories
// with all they hold, symlinks not followed, excluded paths skipped), named
// for the archive and sorted by name.
std::vector<ArchiveMember> collect_members(const std::vector<std::filesystem::path>& matched,
                                           const std::vector<PathPattern>& patterns,
                                           const JobDirs& dirs);

struct ArchiveInfo {
  Digest digest;
  uint64_t size = 0;
};

// Writes the members to `out` (created), hashing the bytes as written.
Result<ArchiveInfo> write_archive(const std::vector<ArchiveMember>& members,
                                  const std::filesystem::path& out);

// Extracts an archive made by write_archive into the job's directories.
// Names outside "workspace/" and "home/", or holding "..", are refused;
// nothing is written through a symlink.
Status extract_archive(const std::filesystem::path& archive, const JobDirs& dirs);

}  // namespace lockstep::cache
