#include "common/userns.hpp"

#include <gtest/gtest.h>

namespace lockstep {
namespace {

constexpr const char* kSubuid =
    "alice:100000:65536\n"
    "# comment\n"
    "bob:x:65536\n"
    "1002:300000:1000\n"
    "bob:200000:65536\n"
    "carol:400000:0\n"
    "dave:4294967000:65536\n";

TEST(SubordinateRange, TheFirstValidLineOfTheNameOrTheIdWins) {
  IdRange a = find_subordinate_range(kSubuid, "alice", 1000);
  EXPECT_EQ(a.outside, 100000u);
  EXPECT_EQ(a.count, 65536u);
  // bob's first line is malformed: the next one counts.
  IdRange b = find_subordinate_range(kSubuid, "bob", 1001);
  EXPECT_EQ(b.outside, 200000u);
  // A user listed by numeric id.
  IdRange n = find_subordinate_range(kSubuid, "erin", 1002);
  EXPECT_EQ(n.outside, 300000u);
  EXPECT_EQ(n.count, 1000u);
  // A user without a name (no passwd entry) is found by id alone.
  EXPECT_EQ(find_subordinate_range(kSubuid, "", 1002).outside, 300000u);
}

TEST(SubordinateRange, EmptyCountsAndRangesPastTheIdSpaceAreNoRange) {
  EXPECT_EQ(find_subordinate_range(kSubuid, "carol", 1003).count, 0u);
  EXPECT_EQ(find_subordinate_range(kSubuid, "dave", 1004).count, 0u);
  EXPECT_EQ(find_subordinate_range(kSubuid, "frank", 1005).count, 0u);
  EXPECT_EQ(find_subordinate_range("", "alice", 1000).count, 0u);
  // A name that is a prefix of another does not match it.
  EXPECT_EQ(find_subordinate_range(kSubuid, "ali", 1006).count, 0u);
}

RootlessHostFacts alice() {
  RootlessHostFacts h;
  h.unprivileged_userns_clone = "1";
  h.max_user_namespaces = "15000";
  h.uid = 1000;
  h.gid = 1000;
  h.user = "alice";
  h.subuid = "alice:100000:65536\n";
  h.subgid = "alice:100000:65536\n";
  h.newuidmap = h.newgidmap = true;
  return h;
}

// The error's one line, or "" when the host allows a mapping.
std::string error_of(const RootlessHostFacts& h) {
  auto m = plan_rootless_mapping(h);
  if (m) return "";
  EXPECT_EQ(m.error().message().find('\n'), std::string::npos) << m.error().message();
  return m.error().message();
}

TEST(RootlessMapping, SubordinateRangesFollowTheUsersOwnId) {
  auto m = plan_rootless_mapping(alice());
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_TRUE(m->subordinate);
  EXPECT_TRUE(m->limitation.empty());
  ASSERT_EQ(m->uid_map.size(), 2u);
  EXPECT_EQ(m->uid_map[0].inside, 0u);
  EXPECT_EQ(m->uid_map[0].outside, 1000u);
  EXPECT_EQ(m->uid_map[0].count, 1u);
  EXPECT_EQ(m->uid_map[1].inside, 1u);
  EXPECT_EQ(m->uid_map[1].outside, 100000u);
  EXPECT_EQ(m->uid_map[1].count, 65535u);
  EXPECT_EQ(m->gid_map[1].outside, 100000u);
}

TEST(RootlessMapping, WithoutRangesOnlyTheOwnIdIsMappedAndTheLimitIsSaid) {
  auto h = alice();
  h.subuid = h.subgid = "bob:100000:65536\n";
  h.newuidmap = h.newgidmap = false;  // not needed then
  auto m = plan_rootless_mapping(h);
  ASSERT_TRUE(m) << m.error().message();
  EXPECT_FALSE(m->subordinate);
  EXPECT_EQ(m->uid_map.size(), 1u);
  EXPECT_NE(m->limitation.find("user alice has no subordinate ids"), std::string::npos);
}

TEST(RootlessMapping, EachHostRefusalIsOneLineSayingWhatToDo) {
  auto h = alice();
  h.unprivileged_userns_clone = "0";
  EXPECT_NE(error_of(h).find("sysctl kernel.unprivileged_userns_clone=1"), std::string::npos);
  h = alice();
  h.max_user_namespaces = "0";
  EXPECT_NE(error_of(h).find("user.max_user_namespaces = 0"), std::string::npos);
  h = alice();
  h.apparmor_restrict_userns = "1";
  EXPECT_NE(error_of(h).find("AppArmor restricts unprivileged user namespaces"), std::string::npos);
  h = alice();
  h.subgid = "";
  EXPECT_NE(error_of(h).find("user alice has subordinate ids in /etc/subuid but not in "
                             "/etc/subgid; add both (usermod --add-subuids"),
            std::string::npos);
  h = alice();
  h.newuidmap = false;
  EXPECT_NE(error_of(h).find("/usr/bin/newuidmap is missing; install Debian's uidmap package"),
            std::string::npos);
  h = alice();
  h.newgidmap = false;
  EXPECT_NE(error_of(h).find("/usr/bin/newgidmap is missing"), std::string::npos);
  // Every message names what it is about.
  EXPECT_EQ(error_of(h).rfind("rootless: ", 0), 0u);
}

}  // namespace
}  // namespace lockstep
