// Images recorded after a pull: Docker schema2 manifests and manifest lists,
// OCI indexes with several platforms, attestation entries, and the errors for
// an index without our platform and an unknown media type.
#include <filesystem>
#include <optional>

#include <gtest/gtest.h>

#include "cache/image_store.hpp"
#include "cache/oci_json.hpp"
#include "common/fs.hpp"

namespace lockstep::cache {
namespace {
namespace fs = std::filesystem;

struct Pulled : ::testing::Test {
  void SetUp() override {
    auto d = TempDir::create(fs::temp_directory_path(), "ls-pulled-");
    ASSERT_TRUE(d);
    dir = std::move(*d);
    store.emplace(dir.path() / "state");
  }
  // A Docker schema2 image for `arch` with one (fake, never unpacked) layer.
  std::pair<Digest, uint64_t> image(const std::string& arch) {
    Digest layer = *store->blobs().put("layer bytes for " + arch);
    Digest diff = sha256_of("uncompressed " + arch);
    std::string cfg =
        *canonical_json(Json{{"architecture", arch},
                             {"os", "linux"},
                             {"rootfs", {{"type", "layers"}, {"diff_ids", {diff.str()}}}}});
    Digest c = *store->blobs().put(cfg);
    std::string man =
        *canonical_json(Json{{"schemaVersion", 2},
                             {"mediaType", oci::kDockerManifest},
                             {"config", oci::descriptor_json(oci::kDockerConfig, c, cfg.size())},
                             {"layers", {oci::descriptor_json(oci::kDockerLayerGzip, layer, 20)}}});
    return {*store->blobs().put(man), man.size()};
  }
  Digest index(std::string_view media_type, const Json& manifests) {
    return *store->blobs().put(*canonical_json(
        Json{{"schemaVersion", 2}, {"mediaType", media_type}, {"manifests", manifests}}));
  }
  static Json entry(std::string_view mt, std::pair<Digest, uint64_t> m, const std::string& os,
                    const std::string& arch, const std::string& variant = "") {
    Json e = oci::descriptor_json(mt, m.first, m.second);
    e["platform"] = {{"os", os}, {"architecture", arch}};
    if (!variant.empty()) e["platform"]["variant"] = variant;
    return e;
  }
  TempDir dir;
  std::optional<ImageStore> store;
};

TEST_F(Pulled, DockerManifestListSelectsAmd64) {
  auto amd = image("amd64"), arm = image("arm64");
  Digest list =
      index(oci::kDockerList, Json::array({entry(oci::kDockerManifest, arm, "linux", "arm64", "v8"),
                                           entry(oci::kDockerManifest, amd, "linux", "amd64")}));
  auto rec = store->add_manifest(list, std::nullopt, std::string("docker.io/library/multi:1"));
  ASSERT_TRUE(rec) << rec.error().message();
  EXPECT_EQ(rec->manifest, amd.first);
  EXPECT_EQ(rec->index, list);
  EXPECT_EQ(rec->manifest_media_type, oci::kDockerManifest);
  EXPECT_EQ(rec->platform.str(), "linux/amd64");
  EXPECT_EQ(rec->layers[0].media_type, oci::kDockerLayerGzip);
  EXPECT_EQ(store->resolve("multi:1")->manifest, amd.first);
  EXPECT_EQ(store->resolve(list.str())->manifest, amd.first);
  EXPECT_EQ(store->resolve("docker.io/library/multi@" + amd.first.str())->index, list);
  ASSERT_TRUE(store->remove(list.str()));  // by the index it was pulled as
  EXPECT_FALSE(store->resolve("multi:1"));
  EXPECT_TRUE(store->list()->empty());
}

TEST_F(Pulled, OciIndexSkipsAttestations) {
  auto amd = image("amd64");
  Json att = entry(oci::kOciManifest, image("unknown"), "unknown", "unknown");
  Digest idx =
      index(oci::kOciIndex, Json::array({att, entry(oci::kDockerManifest, amd, "linux", "amd64")}));
  auto rec = store->add_manifest(idx, std::nullopt, std::nullopt);
  ASSERT_TRUE(rec) << rec.error().message();
  EXPECT_EQ(rec->manifest, amd.first);
  auto list = store->list();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].tag, "<none>");
}

TEST_F(Pulled, IndexWithoutOurPlatform) {
  auto arm = image("arm64");
  Digest idx =
      index(oci::kOciIndex, Json::array({entry(oci::kOciManifest, arm, "linux", "arm64", "v8")}));
  auto rec = store->add_manifest(idx, std::nullopt, std::string("armonly"));
  ASSERT_FALSE(rec);
  EXPECT_EQ(rec.error().message(), "index " + idx.str() +
                                       ": no manifest for platform linux/amd64 (the index has: "
                                       "linux/arm64/v8)");
  EXPECT_FALSE(store->resolve("armonly"));
}

TEST_F(Pulled, UnknownMediaType) {
  Digest d =
      *store->blobs().put(R"({"schemaVersion":2,"mediaType":"application/vnd.example+json"})");
  auto rec = store->add_manifest(d, std::nullopt, std::nullopt);
  ASSERT_FALSE(rec);
  EXPECT_EQ(rec.error().message(),
            "manifest " + d.str() +
                ": unsupported media type 'application/vnd.example+json' (supported: OCI image "
                "manifest/index, Docker schema2 manifest/list)");
  EXPECT_EQ(rec.error().kind(), ErrorKind::kUnsupported);
}

TEST_F(Pulled, MissingConfigIsNamed) {
  std::string man = *canonical_json(
      Json{{"schemaVersion", 2},
           {"mediaType", oci::kOciManifest},
           {"config", oci::descriptor_json(oci::kOciConfig, sha256_of("absent"), 6)},
           {"layers", Json::array()}});
  Digest d = *store->blobs().put(man);
  auto rec = store->add_manifest(d, std::nullopt, std::nullopt);
  ASSERT_FALSE(rec);
  EXPECT_EQ(rec.error().message(), "blob " + sha256_of("absent").str() +
                                       " is not in the store at " +
                                       (dir.path() / "state").string());
}

}  // namespace
}  // namespace lockstep::cache
