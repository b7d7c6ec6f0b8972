#pragma once
// The mirror's view of the content store: cache::BlobStore plus the
// bookkeeping for a maximum size with least-recently-used eviction, and
// publication of a blob downloaded into an unnamed temp file.
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>

#include "cache/blob_store.hpp"
#include "common/digest.hpp"
#include "common/fd.hpp"
#include "registry-mirror/mirror_metrics.hpp"

namespace lockstep::registry {

class MirrorStore {
 public:
  // max_bytes 0: unlimited. Scans the store once (sizes, mtimes as last use).
  MirrorStore(cache::BlobStore& store, uint64_t max_bytes, MirrorMetrics& metrics);

  cache::BlobStore& blobs() { return store_; }

  // An O_TMPFILE in <root>/tmp: a crash leaves nothing behind.
  Result<UniqueFd> temp_file();
  // Publishes a fully written and already verified temp file as blob d
  // (fchmod 0444, fsync, link into place, fsync the directory). An existing
  // blob of that digest wins (same bytes).
  Status publish(int fd, const Digest& d, uint64_t size);
  // Records a blob written through BlobStore directly (manifests).
  void added(const Digest& d, uint64_t size);
  // Marks a blob used now (LRU order).
  void touch(const Digest& d);
  // Pins blobs that must not be evicted (being served or just published).
  void pin(const Digest& d);
  void unpin(const Digest& d);
  // Evicts least recently used, unpinned blobs until the store fits.
  void enforce_limit();

 private:
  cache::BlobStore& store_;
  uint64_t max_bytes_;
  MirrorMetrics& metrics_;
  std::mutex mu_;
  uint64_t total_ = 0;
  uint64_t clock_ = 0;  // logical time: deterministic LRU order
  struct Entry {
    uint64_t size = 0;
    uint64_t last_use = 0;
  };
  std::map<Digest, Entry> entries_;
  std::map<Digest, int> pins_;
};

}  // namespace lockstep::registry
