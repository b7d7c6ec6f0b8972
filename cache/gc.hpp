#pragma once
// What the cache holds and how big it is (`cache ls`, `cache du`), and its
// garbage collection (`cache gc`): blobs and unpacked layers that no recorded
// image references are removed; with a size limit, whole images are evicted
// least recently used first until the store fits. Nothing an image held by a
// UseLock references is ever removed, and gc holds the StoreLock exclusively
// so that an import or pull in progress is never mistaken for garbage.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cache/image_store.hpp"
#include "common/error.hpp"

namespace lockstep::cache {

struct CacheUsage {
  uint64_t blobs = 0, blob_bytes = 0;
  uint64_t layers = 0, layer_bytes = 0;  // disk usage, hardlinks counted once
  uint64_t tmp_bytes = 0;
  uint64_t total() const { return blob_bytes + layer_bytes + tmp_bytes; }
};
Result<CacheUsage> cache_usage(const ImageStore& store);

struct CachedImage {
  Digest manifest;
  std::vector<std::string> tags;  // empty: untagged
  uint64_t bytes = 0;             // its blobs and unpacked layers (shared ones too)
  std::optional<std::chrono::system_clock::time_point> last_use;
  bool in_use = false;
};
// Least recently used first (never used before used).
Result<std::vector<CachedImage>> cache_images(const ImageStore& store);

struct GcOptions {
  std::optional<uint64_t> max_size;  // bytes for blobs + layers; none: only garbage
  // Leftovers in <state>/tmp older than this are removed (a crashed writer's).
  std::chrono::seconds tmp_grace = std::chrono::hours(24);
};

struct GcReport {
  std::vector<std::string> evicted;  // images removed to meet max_size ("tag" or digest)
  std::vector<Digest> in_use;        // images kept because a job holds them
  uint64_t blobs_removed = 0, layers_removed = 0, bytes_freed = 0;
  uint64_t size_after = 0;
};
Result<GcReport> collect_garbage(ImageStore& store, const GcOptions& opts);

// "1048576", "512K", "100M", "2G", "1T" (powers of 1024; "KiB"/"MB" spellings too).
Result<uint64_t> parse_size(std::string_view s);
std::string format_size(uint64_t bytes);

}  // namespace lockstep::cache
