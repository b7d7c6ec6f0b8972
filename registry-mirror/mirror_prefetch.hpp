#pragma once
// `lockstep mirror prefetch`: warms a running mirror with every manifest and
// blob of a list of images, by pulling them through it (bodies discarded).
#include <string>
#include <string_view>
#include <vector>

#include "cache/image_store.hpp"
#include "common/error.hpp"
#include "registry-mirror/reference.hpp"

namespace lockstep::registry {

// A list of images: one reference per line; blank lines and lines starting
// with '#' are skipped. Errors name the file and line. (`lockstep mirror
// prefetch` also takes a lockstep.lock.)
Result<std::vector<Reference>> parse_prefetch_list(std::string_view text, std::string_view where);

struct PrefetchResult {
  size_t manifests = 0;
  size_t blobs = 0;
  uint64_t bytes = 0;
};

// Pulls each reference through the mirror at mirror_url ("http://host:port"),
// routed with "?ns=<registry domain>"; for an index, the platform's manifest.
// A manifest asked for by digest must hash to it.
Result<PrefetchResult> prefetch_through_mirror(const std::string& mirror_url,
                                               const std::vector<Reference>& refs,
                                               const cache::Platform& platform);

}  // namespace lockstep::registry
