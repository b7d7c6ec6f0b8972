// Manifests, indexes and image configs as registries and OCI layouts hand
// them over: both readers (the registry client's and the image store's), and
// platform selection.
#include <cstdint>
#include <string_view>

#include "cache/oci_json.hpp"
#include "registry-mirror/manifest.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace lockstep;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto doc = parse_json(text, "manifest");
  if (!doc) {
    fuzz::require_clean_error(doc.error());
    return 0;
  }
  const cache::Platform want;  // linux/amd64
  // The registry client.
  for (std::string_view content_type :
       {std::string_view(), registry::media::kOciIndex, registry::media::kDockerManifest}) {
    if (auto mt = registry::manifest_media_type(content_type, *doc, "ref"); !mt)
      fuzz::require_clean_error(mt.error());
  }
  if (auto index = registry::parse_index(*doc, "ref")) {
    if (auto d = registry::select_platform(*index, want, "ref"); !d)
      fuzz::require_clean_error(d.error());
  } else {
    fuzz::require_clean_error(index.error());
  }
  if (auto m = registry::parse_image_manifest(*doc, "ref"); !m)
    fuzz::require_clean_error(m.error());
  // The image store (import of OCI layouts and docker-save archives).
  if (auto k = cache::oci::kind_of(*doc, "ref"); !k) fuzz::require_clean_error(k.error());
  if (auto m = cache::oci::parse_manifest(*doc, "ref"); !m) fuzz::require_clean_error(m.error());
  if (auto entries = cache::oci::parse_index(*doc, "ref")) {
    if (auto d = cache::oci::select_platform(*entries, want, "ref"); !d)
      fuzz::require_clean_error(d.error());
  } else {
    fuzz::require_clean_error(entries.error());
  }
  // A platform string as `--platform` or an index names one.
  if (doc->is_string()) {
    if (auto p = registry::parse_platform(doc->get<std::string>()))
      (void)registry::platform_string(registry::normalize_platform(*p));
  }
  return 0;
}
