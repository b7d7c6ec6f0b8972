#pragma once
// Bare git mirrors kept under the state dir, one per source repository:
// <state>/git/<first 24 hex of sha256(url)>.git. Every source libgit2 can
// fetch from works (https, ssh through the ssh agent, file:// and local
// paths; a relative local path is made absolute first, so it names one
// mirror whatever the caller's cwd).
//
// update() fetches all branches and tags (plus any extra refspecs) with
// pruning, so the mirror reflects the source exactly; libgit2 negotiates
// with what the mirror already has, so only new objects are transferred and
// an unchanged source transfers nothing (FetchStats says so). Concurrent
// updates of one mirror, from threads or processes, are serialised by a
// lock file beside it (<hash>.lock). A first fetch goes into a temp dir that
// is renamed into place only when it succeeded: an unreachable repository
// leaves no mirror behind.
//
// Depth: the libgit2 of Debian 12 (1.5) cannot fetch shallow, and a shared
// mirror must hold full history anyway, so mirrors are always complete and
// fetch-depth only matters to what a checkout shows (see git_checkout.hpp).
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace lockstep::cache {

// What the last fetch transferred (libgit2's indexer progress).
struct FetchStats {
  uint64_t received_objects = 0;
  uint64_t received_bytes = 0;
  uint64_t indexed_objects = 0;
  uint64_t total_objects = 0;
};

struct MirrorInfo {
  std::string url;             // the source as the mirror knows it (absolute for local paths)
  std::filesystem::path path;  // the bare repository
  std::string head_ref;        // the source's default branch ("refs/heads/main"), may be empty
  bool created = false;        // this update made the mirror
  bool fetched = false;        // a fetch ran (false when open() was used)
  FetchStats stats;
};

// A ref resolved in a mirror.
struct ResolvedRef {
  enum class Kind { kBranch, kTag, kCommit, kHead };
  Kind kind = Kind::kCommit;
  std::string name;    // "main", "v1", or the input for commits
  std::string commit;  // 40 hex
};

class GitMirrors {
 public:
  explicit GitMirrors(std::filesystem::path state_dir);

  // Local paths become absolute; URLs are kept as given.
  static std::string normalize_url(const std::string& url);
  std::filesystem::path mirror_path(const std::string& url) const;

  // Creates or updates the mirror of `url`. `extra` holds refspecs
  // ("+refs/pull/1/head:refs/pull/1/head") or ref names ("refs/pull/1/head")
  // fetched in addition to all branches and tags.
  // Errors: "cannot fetch repository '<url>': <reason>" on one line.
  Result<MirrorInfo> update(const std::string& url,
                            const std::vector<std::string>& extra = {}) const;

  // The existing mirror of `url` without fetching; kNotFound when there is none.
  Result<MirrorInfo> open(const std::string& url) const;

  // Branch, tag (peeled to its commit), full or abbreviated (>= 4 hex)
  // commit, "HEAD" (the source's default branch) or a full "refs/..." name
  // -> the commit. Order: full ref name, HEAD, branch, tag, then commit id.
  // Errors name the source: "unknown ref 'v9' in /path/repo (branches: main,
  // dev; tags: v1)" (default branch first, then sorted).
  Result<ResolvedRef> resolve_ref(const MirrorInfo& mirror, const std::string& ref) const;
  Result<std::string> resolve(const MirrorInfo& mirror, const std::string& ref) const {
    auto r = resolve_ref(mirror, ref);
    if (!r) return tl::unexpected(r.error());
    return r->commit;
  }

  // Whether the mirror of `url` exists and holds `commit` (40 hex).
  bool has_commit(const std::string& url, const std::string& commit) const;

  const std::filesystem::path& root() const { return root_; }

  // Each fetch adds a pack; update() repacks a mirror into one pack when it
  // holds more than this many (git_mirror_compact.cpp).
  static constexpr size_t kMaxPacks = 16;
  // Repacks the mirror of `url` when it has more than `max_packs` packs;
  // true when it did. For `lockstep cache gc` (update() calls it itself).
  Result<bool> compact(const std::string& url, size_t max_packs = kMaxPacks) const;
  size_t pack_count(const std::string& url) const;

 private:
  Result<bool> compact_locked(const std::filesystem::path& mirror, size_t max_packs) const;

  std::filesystem::path root_;  // <state>/git
};

}  // namespace lockstep::cache
