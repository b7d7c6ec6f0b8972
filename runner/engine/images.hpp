#pragma once
// Resolves each image reference of a run exactly once, however many jobs use
// it: a local tag or digest in the image store first, else a pull from its
// registry. Jobs asking for the same reference at once wait for the one
// resolution in flight.
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cache/gc_lock.hpp"
#include "cache/image_store.hpp"
#include "common/error.hpp"

namespace lockstep::runner {

struct PreparedImage {
  cache::ImageRecord record;
  std::vector<std::filesystem::path> layer_dirs;  // lowest first
  // Held for the whole run: `lockstep cache gc` never removes an image (or
  // its layers) that a running job uses.
  std::shared_ptr<cache::UseLock> in_use;
};

class ImageResolver {
 public:
  // `pull` fetches a reference that is not in the local store (may be null:
  // then only local images resolve).
  using PullFn = std::function<Result<cache::ImageRecord>(const std::string& ref)>;
  ImageResolver(cache::ImageStore& store, PullFn pull);

  Result<PreparedImage> get(const std::string& ref);

  // The store images resolve from (and images built in a run go into).
  cache::ImageStore& store() { return store_; }

 private:
  struct Slot {
    std::once_flag once;
    Result<PreparedImage> result = fail("not resolved");
  };
  cache::ImageStore& store_;
  PullFn pull_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Slot>> slots_;
  std::mutex store_mu_;  // layer unpacking is serialised within one run
};

}  // namespace lockstep::runner
