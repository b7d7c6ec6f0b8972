// Manifest media types, parsing and platform selection.
#include <gtest/gtest.h>

#include "registry-mirror/manifest.hpp"

namespace lockstep::registry {
namespace {

const std::string kD1 = "sha256:" + std::string(64, '1');
const std::string kD2 = "sha256:" + std::string(64, '2');
const std::string kD3 = "sha256:" + std::string(64, '3');
const std::string kD4 = "sha256:" + std::string(64, '4');

Json entry(const std::string& digest, const std::string& os, const std::string& arch,
           const std::string& variant = "") {
  Json p = {{"os", os}, {"architecture", arch}};
  if (!variant.empty()) p["variant"] = variant;
  return {{"mediaType", media::kOciManifest}, {"digest", digest}, {"size", 100}, {"platform", p}};
}

ImageIndex sample_index() {
  Json doc = {{"schemaVersion", 2},
              {"mediaType", media::kOciIndex},
              {"manifests",
               {entry(kD1, "linux", "amd64"), entry(kD2, "linux", "arm64", "v8"),
                entry(kD3, "linux", "arm", "v7"), entry(kD4, "unknown", "unknown")}}};
  auto idx = parse_index(doc, "test");
  EXPECT_TRUE(idx) << idx.error().message();
  return *idx;
}

TEST(Manifest, AcceptHeaderNamesAllFourTypes) {
  std::string h = manifest_accept_header();
  for (auto mt :
       {media::kOciIndex, media::kOciManifest, media::kDockerList, media::kDockerManifest})
    EXPECT_NE(h.find(mt), std::string::npos) << mt;
}

TEST(Manifest, MediaTypeFromHeaderBodyOrShape) {
  Json oci = {{"schemaVersion", 2}, {"config", Json::object()}, {"layers", Json::array()}};
  EXPECT_EQ(*manifest_media_type(std::string(media::kDockerManifest) + "; charset=utf-8", oci, "x"),
            media::kDockerManifest);
  EXPECT_EQ(*manifest_media_type("application/json", oci, "x"), media::kOciManifest);
  Json idx = {{"manifests", Json::array()}};
  EXPECT_EQ(*manifest_media_type("", idx, "x"), media::kOciIndex);
  Json declared = {{"mediaType", media::kDockerList}, {"manifests", Json::array()}};
  EXPECT_EQ(*manifest_media_type("text/plain", declared, "x"), media::kDockerList);

  auto s1 = manifest_media_type(media::kDockerSchema1Signed, Json::object(), "app:v1");
  ASSERT_FALSE(s1);
  EXPECT_EQ(s1.error().kind(), ErrorKind::kUnsupported);
  EXPECT_EQ(s1.error().message(),
            "app:v1: Docker schema 1 manifests are not supported (push the image again with a "
            "current client)");
  auto other = manifest_media_type("application/vnd.cncf.helm.chart.v1+json", Json::object(), "c");
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().message(),
            "c: unsupported manifest media type 'application/vnd.cncf.helm.chart.v1+json'");
}

TEST(Manifest, ParsesImageManifestAndRejectsUnknownLayerTypes) {
  Json doc = {{"schemaVersion", 2},
              {"config", {{"mediaType", media::kOciConfig}, {"digest", kD1}, {"size", 10}}},
              {"layers",
               {{{"mediaType", media::kOciLayerGzip}, {"digest", kD2}, {"size", 20}},
                {{"mediaType", media::kOciLayerZstd}, {"digest", kD3}, {"size", 30}}}}};
  auto m = parse_image_manifest(doc, "app");
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_EQ(m->config.digest.str(), kD1);
  ASSERT_EQ(m->layers.size(), 2u);
  EXPECT_EQ(m->layers[1].size, 30u);
  EXPECT_EQ(m->layers[1].media_type, media::kOciLayerZstd);

  doc["layers"][1]["mediaType"] = "application/x-unknown";
  auto bad = parse_image_manifest(doc, "app");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(),
            "app: unsupported layer media type 'application/x-unknown' for " + kD3);

  doc["layers"][1]["mediaType"] = media::kOciLayerTar;
  doc["config"]["mediaType"] = "application/vnd.cncf.helm.config.v1+json";
  auto cfg = parse_image_manifest(doc, "app");
  ASSERT_FALSE(cfg);
  EXPECT_EQ(cfg.error().message(),
            "app: unsupported config media type 'application/vnd.cncf.helm.config.v1+json' (not "
            "a container image)");

  doc["config"]["mediaType"] = media::kOciConfig;
  doc["layers"][0].erase("size");
  EXPECT_FALSE(parse_image_manifest(doc, "app"));
}

TEST(Manifest, SelectsPlatformsWithVariants) {
  ImageIndex idx = sample_index();
  auto pick = [&](const std::string& p) {
    auto plat = parse_platform(p);
    EXPECT_TRUE(plat) << p;
    auto d = select_platform(idx, *plat, "app:v1");
    return d ? d->digest.str() : d.error().message();
  };
  EXPECT_EQ(pick("linux/amd64"), kD1);
  EXPECT_EQ(pick("amd64"), kD1);
  EXPECT_EQ(pick("linux/x86_64"), kD1);
  EXPECT_EQ(pick("linux/arm64"), kD2);
  EXPECT_EQ(pick("linux/arm64/v8"), kD2);
  EXPECT_EQ(pick("linux/aarch64"), kD2);
  EXPECT_EQ(pick("linux/arm"), kD3);
  EXPECT_EQ(pick("linux/arm/v7"), kD3);
  EXPECT_EQ(pick("linux/arm/v6"),
            "no manifest for linux/arm/v6 in app:v1 (available: linux/amd64, linux/arm64/v8, "
            "linux/arm/v7)");
  EXPECT_EQ(pick("linux/s390x"),
            "no manifest for linux/s390x in app:v1 (available: linux/amd64, linux/arm64/v8, "
            "linux/arm/v7)");
  EXPECT_EQ(pick("windows/amd64"),
            "no manifest for windows/amd64 in app:v1 (available: linux/amd64, linux/arm64/v8, "
            "linux/arm/v7)");
}

TEST(Manifest, ParsePlatformErrors) {
  for (const char* bad : {"", "linux/", "/amd64", "linux/amd64/v8/x", "linux amd64"}) {
    auto p = parse_platform(bad);
    ASSERT_FALSE(p) << bad;
    EXPECT_EQ(p.error().message(),
              std::string("invalid platform '") + bad + "' (expected os/arch[/variant])");
  }
  auto p = parse_platform("linux/arm64/v8");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->os, "linux");
  EXPECT_EQ(p->architecture, "arm64");
  EXPECT_EQ(p->variant, "v8");
}

}  // namespace
}  // namespace lockstep::registry
