#pragma once
// Images made of layers built in the test (tar_builder.hpp), stored blob by
// blob and recorded under a tag, as a pull would leave them.
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "cache/image_store.hpp"
#include "cache/oci_json.hpp"
#include "common/json.hpp"
#include "tests/integration/cache/tar_builder.hpp"

namespace lockstep::cache::testing {

struct Built {
  Digest manifest;
  std::vector<Digest> diff_ids;
};

// Stores layers + config + manifest and records the image under `tag`.
inline Built store_image(ImageStore& s, const std::vector<std::pair<BuiltTar, std::string>>& layers,
                         const std::string& tag) {
  Built b;
  Json ls = Json::array(), diff = Json::array();
  for (const auto& [t, media] : layers) {
    Digest blob = *s.blobs().put(t.blob);
    Digest d = sha256_of(t.tar);
    b.diff_ids.push_back(d);
    diff.push_back(d.str());
    ls.push_back(oci::descriptor_json(media, blob, t.blob.size()));
  }
  Json cfg = {{"architecture", "amd64"},
              {"os", "linux"},
              {"rootfs", {{"type", "layers"}, {"diff_ids", diff}}}};
  std::string cfg_text = *canonical_json(cfg);
  Digest c = *s.blobs().put(cfg_text);
  Json man = {{"schemaVersion", 2},
              {"mediaType", oci::kOciManifest},
              {"config", oci::descriptor_json(oci::kOciConfig, c, cfg_text.size())},
              {"layers", ls}};
  b.manifest = *s.blobs().put(*canonical_json(man));
  auto rec = s.add_manifest(b.manifest, std::nullopt, tag);
  EXPECT_TRUE(rec) << rec.error().message();
  return b;
}

// Uncompressed layers (media type application/vnd.oci.image.layer.v1.tar).
inline Built store_plain_image(ImageStore& s, const std::vector<std::vector<TarEntry>>& layers,
                               const std::string& tag) {
  std::vector<std::pair<BuiltTar, std::string>> built;
  for (const auto& l : layers)
    built.emplace_back(build_tar(l, Filter::kNone), std::string(oci::kOciLayerTar));
  return store_image(s, built, tag);
}

}  // namespace lockstep::cache::testing
