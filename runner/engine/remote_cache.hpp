#pragma once
// The dependency caches a lockstep server shares between its agents
// (docs/server.md, "Caches"). An agent's job runs `lockstep run
// --cache-server FILE`; actions/cache then looks keys up on the server,
// which picks the scopes from the job (its repository's; a pull request's
// own first), fetches the archive it names into this host's cache
// (cache/depcache.hpp) and restores from there, and sends what the job
// saves: the archive as one of the server's blobs, then the entry. FILE,
// written by the job's supervisor (mode 0600):
//   {"url": "http://...", "token": "<agent token>", "job": N, "attempt": N}
// Every request carries (job, attempt); the server refuses a stale attempt.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cache/depcache.hpp"
#include "common/error.hpp"
#include "common/json.hpp"

namespace lockstep::runner {

class RemoteCache {
 public:
  // Reads FILE; a missing or malformed one is a usage error naming it.
  static Result<std::shared_ptr<const RemoteCache>> load(const std::filesystem::path& file);

  // Scope by scope: the exact key, then each restore key as a prefix (the
  // newest wins), of `version`; the entry names the scope it was found in.
  Result<cache::CacheLookup> lookup(const std::string& key,
                                    const std::vector<std::string>& restore_keys,
                                    const std::string& version) const;

  // Makes `entry` restorable from `store`: its archive is fetched (and
  // checked against its digest) unless the store has it, and the entry
  // joins the store's index.
  Status fetch(const cache::DepCache& store, const cache::DepCacheEntry& entry) const;

  // Sends `entry` (saved in `store`): its archive unless the server has it,
  // then the entry. True when the server took it; false when its scope on
  // the server holds the key already.
  Result<bool> save(const cache::DepCache& store, const cache::DepCacheEntry& entry) const;

  const std::string& url() const { return url_; }

 private:
  RemoteCache() = default;
  // POSTs `body` (with job and attempt) to /api/agent/<what>; the answer
  // of a 200, else an error naming the server and its reason.
  Result<Json> post(const std::string& what, Json body) const;
  std::string at() const;  // "job=N&attempt=N"

  std::string url_, token_;
  int64_t job_ = 0;
  int attempt_ = 0;
};

}  // namespace lockstep::runner
