#include "executor/user.hpp"

#include <gtest/gtest.h>

namespace lockstep::executor {
namespace {

const char* kPasswd =
    "root:x:0:0:root:/root:/bin/sh\n"
    "# a comment\n"
    "broken line\n"
    "build:x:1000:1000:Build User:/home/build:/bin/sh\n"
    "svc:x:999:998::/var/svc:/bin/false\n";
const char* kGroup =
    "root:x:0:\n"
    "build:x:1000:\n"
    "docker:x:2000:build,svc\n"
    "wheel:x:10:root,build\n";

TEST(ResolveUser, EmptyIsRootWithRootsGroups) {
  auto c = resolve_user("", kPasswd, kGroup, {});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->uid, 0u);
  EXPECT_EQ(c->gid, 0u);
  EXPECT_EQ(c->groups, (std::vector<gid_t>{10}));
  EXPECT_EQ(c->home, "/root");
}

TEST(ResolveUser, NameGivesPrimaryGroupHomeAndMemberships) {
  auto c = resolve_user("build", kPasswd, kGroup, {5, 10});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->uid, 1000u);
  EXPECT_EQ(c->gid, 1000u);
  EXPECT_EQ(c->groups, (std::vector<gid_t>{5, 10, 2000}));
  EXPECT_EQ(c->home, "/home/build");
}

TEST(ResolveUser, NumericIdsNeedNoEntry) {
  auto c = resolve_user("4242:77", kPasswd, kGroup, {});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->uid, 4242u);
  EXPECT_EQ(c->gid, 77u);
  EXPECT_TRUE(c->groups.empty());
  EXPECT_EQ(c->home, "/");
  c = resolve_user("999", kPasswd, kGroup, {});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->gid, 998u);  // the passwd entry's group
  EXPECT_EQ(c->groups, (std::vector<gid_t>{2000}));
}

TEST(ResolveUser, GroupByName) {
  auto c = resolve_user("svc:docker", kPasswd, kGroup, {});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->uid, 999u);
  EXPECT_EQ(c->gid, 2000u);
}

TEST(ResolveUser, UnknownNamesAreErrors) {
  auto c = resolve_user("nobody", kPasswd, kGroup, {});
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message(), "user 'nobody' not found in the image's /etc/passwd");
  EXPECT_EQ(c.error().kind(), ErrorKind::kNotFound);
  c = resolve_user("build:staff", kPasswd, kGroup, {});
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message(), "group 'staff' not found in the image's /etc/group");
  c = resolve_user("build:", kPasswd, kGroup, {});
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message(), "user 'build:' has an empty group");
}

}  // namespace
}  // namespace lockstep::executor
