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

}  // namespace
}  // namespace lockstep
