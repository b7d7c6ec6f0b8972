#pragma once
// How long the server keeps artifacts (docs/server.md, "Artifacts"). An
// artifact expires when its own retention ends (upload-artifact's
// `retention-days`, 90 by default, as on GitHub) or, with a server-wide
// maximum, when it is older than that; an expired artifact stays listed as
// expired and is no longer handed to jobs. Its files go once no artifact
// that has not expired names them.
#include <chrono>
#include <cstdint>
#include <filesystem>

#include "common/error.hpp"
#include "server/pg.hpp"

namespace lockstep::server {

struct SweepResult {
  int64_t expired = 0;        // artifacts marked expired now
  int64_t files_removed = 0;  // stored files removed
  int64_t bytes_removed = 0;
};

// Marks the artifacts due expired (max_days 0: only their own retention),
// then removes the files under `blobs` that no live artifact or cache names and that
// are older than `min_file_age` (a file uploaded for an artifact whose
// manifest is not in yet is younger), and partial uploads older than a day.
// Writers of `blobs` hold blobs_lock() shared; the removal holds it
// exclusively.
Result<SweepResult> sweep_artifacts(pg::Pool& db, const std::filesystem::path& blobs, int max_days,
                                    std::chrono::seconds min_file_age = std::chrono::hours(1));

// Dependency caches (docs/server.md, "Caches"), as GitHub keeps them: an
// entry not used for `max_days` goes, and so do a repository's least
// recently used entries beyond `max_bytes` in all (0: no limit). Their
// archives go with the next sweep_artifacts(), which keeps what a remaining
// cache names.
struct CacheSweep {
  int64_t removed = 0;  // entries
  int64_t bytes = 0;    // their archives' sizes
};
Result<CacheSweep> sweep_caches(pg::Pool& db, int max_days, int64_t max_bytes);

// The lock file of the blob directory.
std::filesystem::path blobs_lock(const std::filesystem::path& blobs);

}  // namespace lockstep::server
