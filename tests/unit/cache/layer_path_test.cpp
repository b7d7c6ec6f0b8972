#include <gtest/gtest.h>

#include "cache/image_store_db.hpp"
#include "cache/layer_fs.hpp"

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
