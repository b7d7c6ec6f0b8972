#include <gtest/gtest.h>

#include "cache/image_store_db.hpp"
#include "cache/layer_fs.hpp"
#include "cache/layer_unpack.hpp"

namespace lockstep::cache {
namespace {

using V = std::vector<std::string>;

TEST(SplitEntryPath, NormalisesAndRefusesDotDot) {
  EXPECT_EQ(*split_entry_path("./a/b/"), (V{"a", "b"}));
  EXPECT_EQ(*split_entry_path("/etc//passwd"), (V{"etc", "passwd"}));
  EXPECT_EQ(*split_entry_path("."), V{});
  EXPECT_EQ(*split_entry_path("./"), V{});
  auto r = split_entry_path("a/../../etc/passwd");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "entry 'a/../../etc/passwd' escapes the layer directory ('..')");
  EXPECT_FALSE(split_entry_path(".."));
  EXPECT_TRUE(split_entry_path("a/..b/c.."));
}

TEST(ChainIds, FollowTheImageSpec) {
  // Known answers, from sha256sum: the first chain id is the diff id, then
  // sha256("<chain id below> <diff id>").
  std::vector<Digest> diffs = {sha256_of("one"), sha256_of("two"), sha256_of("three")};
  std::vector<Digest> chains = chain_ids(diffs);
  ASSERT_EQ(chains.size(), 3u);
  EXPECT_EQ(chains[0].str(),
            "sha256:7692c3ad3540bb803c020b3aee66cd8887123234ea0c6e7143c0add73ff431ed");
  EXPECT_EQ(chains[1].str(),
            "sha256:ee90d7132b9e9a049b7b0a88db345ca31fb5e8a74a5ee57210478a9a2522d499");
  EXPECT_EQ(chains[2].str(),
            "sha256:bda931dfb05a05b2b515a117925fb63136f30ff08f5b2a4f79da3507a55580b3");
  EXPECT_TRUE(chain_ids({}).empty());
  // A layer's two possible directories.
  EXPECT_EQ(layer_dir_names(diffs[1], chains[1]), (V{diffs[1].hex(), "chain-" + chains[1].hex()}));
  EXPECT_EQ(chain_layer_dir("/s", chains[1]), "/s/layers/chain-" + chains[1].hex());
  EXPECT_EQ(layer_dir("/s", diffs[1]), "/s/layers/" + diffs[1].hex());
}

TEST(NormalizeTag, DefaultsAndValidates) {
  EXPECT_EQ(*normalize_tag("busybox"), "busybox:latest");
  EXPECT_EQ(*normalize_tag("busybox:1.36"), "busybox:1.36");
  EXPECT_EQ(*normalize_tag("localhost:5000/team/app"), "localhost:5000/team/app:latest");
  EXPECT_EQ(*normalize_tag("localhost:5000/team/app:v1"), "localhost:5000/team/app:v1");
  auto r = normalize_tag("Busybox");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "invalid image name 'Busybox': names are lowercase letters, digits, '.', '_', '-' and "
            "'/'");
  EXPECT_EQ(r.error().kind(), ErrorKind::kUsage);
  EXPECT_FALSE(normalize_tag("a:"));
  EXPECT_FALSE(normalize_tag("a//b"));
  EXPECT_FALSE(normalize_tag(""));
  EXPECT_EQ(*docker_hub_form("busybox:latest"), "docker.io/library/busybox:latest");
  EXPECT_EQ(*docker_hub_form("team/app:v1"), "docker.io/team/app:v1");
  EXPECT_FALSE(docker_hub_form("ghcr.io/team/app:v1"));
}

}  // namespace
}  // namespace lockstep::cache
