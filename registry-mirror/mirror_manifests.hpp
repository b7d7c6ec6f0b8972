#pragma once
// Manifests for the mirror: by digest they are immutable blobs in the store
// (their media type kept beside them); by tag they are re-checked upstream
// after the TTL (a HEAD, then a GET only when the digest moved) and served
// stale, with a reason, when the upstream fails, rate-limits, or the budget
// is spent. Concurrent requests for one manifest share one upstream request.
// Blocking: called from the mirror's upstream thread pool.
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/digest.hpp"
#include "registry-mirror/mirror_metrics.hpp"
#include "registry-mirror/mirror_store.hpp"
#include "registry-mirror/mirror_upstream.hpp"

namespace lockstep::registry {

// What to answer a client: a manifest, or a distribution error.
struct ManifestAnswer {
  int status = 200;
  std::string media_type;
  std::string body;
  Digest digest;
  bool hit = false;   // served without asking the upstream
  std::string stale;  // non-empty: served stale, for this reason
  std::optional<std::chrono::seconds> retry_after;
  std::string code;     // error code ("MANIFEST_UNKNOWN", "TOOMANYREQUESTS", ...)
  std::string message;  // error message (one line)
};

class ManifestCache {
 public:
  ManifestCache(MirrorStore& store, std::filesystem::path dir, std::chrono::seconds ttl,
                MirrorMetrics& metrics);

  ManifestAnswer get(Upstream& up, const std::string& repo, const std::string& reference,
                     const std::optional<Digest>& digest);

 private:
  struct TagRecord {
    Digest digest;
    std::string media_type;
    int64_t checked = 0;  // unix seconds of the last upstream confirmation
  };
  struct Flight {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    ManifestAnswer answer;
  };

  ManifestAnswer by_digest(Upstream& up, const std::string& repo, const Digest& d);
  ManifestAnswer by_tag(Upstream& up, const std::string& repo, const std::string& tag);
  ManifestAnswer fetch(Upstream& up, const std::string& repo, const std::string& reference,
                       const std::optional<Digest>& want);
  // Runs f once for all concurrent callers with the same key.
  ManifestAnswer single_flight(const std::string& key, const std::function<ManifestAnswer()>& f);

  std::optional<ManifestAnswer> load(const Digest& d);
  std::optional<TagRecord> tag_record(const std::string& key);
  void save_tag(const std::string& key, const TagRecord& r);
  std::filesystem::path tag_path(const std::string& key) const;

  MirrorStore& store_;
  std::filesystem::path dir_;  // <state>/mirror
  std::chrono::seconds ttl_;
  MirrorMetrics& metrics_;
  std::mutex mu_;
  std::map<std::string, TagRecord> tags_;
  std::map<std::string, std::shared_ptr<Flight>> flights_;
};

// The spec's error for an upstream answer that was not a manifest or blob.
// 404 -> <unknown_code>; 429 -> TOOMANYREQUESTS; 401/403 -> UNAUTHORIZED/DENIED;
// 5xx and transport failures -> 503 UNAVAILABLE.
void map_upstream_failure(long status, const std::string& unknown_code, const std::string& what,
                          ManifestAnswer& a);

}  // namespace lockstep::registry
