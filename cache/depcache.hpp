#pragma once
// The engine of `uses: actions/cache`: dependency caches of every job
// on the host, stored content-addressed under <state>/depcache/:
//   blobs/<sha256>.tar.zst  the archive (pax tar, zstd), named by its digest
//   index.json              key -> entry, replaced atomically under index.lock
//
// Entries live in scopes (the run's repository, a pull request's own; see
// docs/workflows.md, "Cache scopes"); a lookup names the scopes it may see.
// Keys are immutable within a scope: saving a key that exists stores nothing
// (as GitHub's cache does). An entry also records a `version` (a digest of the path
// patterns) and lookups only see entries of the same version, so a cache
// saved for `~/.npm` never restores into a step that caches `vendor/`.
//
// The runner's contract (GitHub's semantics):
//   - At the step: lookup(key, restore_keys, version_of(paths)).
//     `cache-hit` output = (kind == kExact). `cache-primary-key` = key,
//     `cache-matched-key` = the entry's key (empty on a miss).
//   - lookup-only: do the lookup and set the outputs, but do not restore.
//   - fail-on-cache-miss: when kind == kMiss (no exact and no restore-key
//     match) the step fails: "cache miss for key '<key>' (fail-on-cache-miss
//     is set)". A restore-key match is not a miss.
//   - Otherwise restore(entry, paths, dirs).
//   - At job end, only when the job succeeded and the lookup was not an
//     exact hit: save(key, paths, dirs). A key saved meanwhile by another
//     job is not an error (SaveResult::created == false); a save that
//     matches no file is a warning, not a failure (kNotFound).
//   - `lockstep cache gc`: list() (size and last use), remove(key), or
//     evict_to(max_bytes), least recently used first.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cache/depcache_paths.hpp"
#include "common/digest.hpp"
#include "common/error.hpp"

namespace lockstep::cache {

struct DepCacheEntry {
  std::string key;
  // Who may see it (docs/actions.md, "Cache scopes"): a key is unique within
  // its scope; "" is the scope of entries saved before scopes existed.
  std::string scope;
  std::string version;
  Digest digest;           // of the archive file
  uint64_t size = 0;       // archive bytes
  uint64_t files = 0;      // entries in the archive
  int64_t created_ms = 0;  // unix time, milliseconds
  int64_t last_used_ms = 0;
  uint64_t seq = 0;  // save order; ties in created_ms are broken by it
  // Order of the last use (save or restore), from the same counter as seq:
  // least-recently-used order without relying on clock resolution.
  uint64_t used_seq = 0;
};

struct CacheLookup {
  enum class Kind { kMiss, kExact, kRestoreKey };
  Kind kind = Kind::kMiss;
  std::optional<DepCacheEntry> entry;
  bool hit() const { return kind == Kind::kExact; }
};

struct SaveResult {
  DepCacheEntry entry;
  bool created = true;  // false: the key existed; nothing was stored
};

class DepCache {
 public:
  explicit DepCache(std::filesystem::path state_dir);

  // The version of a list of path patterns (their order matters, as on GitHub).
  static std::string version_of(const std::vector<std::string>& paths);

  // Scope by scope, in the order given: exact `key` first; then each
  // restore key in order as a prefix, the newest matching entry winning. An
  // empty version matches any entry.
  Result<CacheLookup> lookup(const std::string& key, const std::vector<std::string>& restore_keys,
                             const std::string& version = "",
                             const std::vector<std::string>& scopes = {""}) const;

  // Extracts the entry into the job's workspace and home (mtimes and modes
  // kept, existing files replaced) and records its use. The paths are
  // checked as for save().
  Status restore(const DepCacheEntry& entry, const std::vector<std::string>& paths,
                 const JobDirs& dirs) const;

  // Archives what `paths` match (sorted; directories with all they hold)
  // and records it under `key`. Errors: a path outside workspace and home,
  // no file matched (kNotFound).
  Result<SaveResult> save(const std::string& key, const std::vector<std::string>& paths,
                          const JobDirs& dirs, const std::string& scope = "") const;

  // An entry saved elsewhere (a lockstep server's, shared by its agents):
  // `archive`, a file whose sha256 the caller checked against the entry's
  // digest, is moved into the store, and the entry joins the index unless
  // its scope holds the key already.
  Status adopt(const DepCacheEntry& entry, const std::filesystem::path& archive) const;

  // Every entry, least recently used first.
  Result<std::vector<DepCacheEntry>> list() const;
  // Removes the entries of `key` in every scope (and their archives when no
  // other entry shares them). kNotFound when there is no such key.
  Status remove(const std::string& key) const;
  // Removes least recently used entries until the archives total at most
  // `max_bytes`; returns the removed entries.
  Result<std::vector<DepCacheEntry>> evict_to(uint64_t max_bytes) const;

  std::filesystem::path archive_path(const Digest& d) const;
  const std::filesystem::path& root() const { return root_; }

 private:
  // Removes the entries `which` selects; how many there were.
  Result<size_t> remove_where(const std::function<bool(const DepCacheEntry&)>& which) const;
  std::filesystem::path root_;  // <state>/depcache
};

}  // namespace lockstep::cache
