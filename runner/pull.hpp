#pragma once
// How `lockstep run` fetches an image that is not in the local store: from
// its registry, with progress on stderr (one line per event: the job output
// owns stdout).
#include <string>
#include <vector>

#include "cache/image_store.hpp"
#include "runner/images.hpp"

namespace lockstep::runner {

ImageResolver::PullFn make_pull_fn(cache::ImageStore& store,
                                   std::vector<std::string> insecure_registries);

}  // namespace lockstep::runner
