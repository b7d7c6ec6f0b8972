// Resolution of cap_add/cap_drop into a capability set (no root needed).
#include <gtest/gtest.h>
#include <linux/capability.h>

#include "executor/capabilities.hpp"

namespace lockstep::executor {
namespace {

TEST(Capabilities, DefaultIsPodmansSet) {
  EXPECT_EQ(default_capabilities().bits, 0x800405fbu);
  EXPECT_EQ(default_capabilities().names(),
            (std::vector<std::string>{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID",
                                      "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
                                      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_SETFCAP"}));
  auto none = resolve_capabilities({}, {});
  ASSERT_TRUE(none);
  EXPECT_EQ(*none, default_capabilities());
}

TEST(Capabilities, NamesWithOrWithoutPrefixInAnyCase) {
  for (const char* n : {"NET_RAW", "net_raw", "CAP_NET_RAW", "cap_Net_Raw"}) {
    auto c = capability_from_name(n);
    ASSERT_TRUE(c) << n;
    EXPECT_EQ(*c, CAP_NET_RAW) << n;
  }
  EXPECT_EQ(capability_name(CAP_SYS_ADMIN), "CAP_SYS_ADMIN");
  EXPECT_EQ(capability_name(CAP_CHECKPOINT_RESTORE), "CAP_CHECKPOINT_RESTORE");
}

TEST(Capabilities, AddAndDrop) {
  auto s = resolve_capabilities({"net_raw", "CAP_SYS_PTRACE"}, {"CHOWN", "cap_kill"});
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_TRUE(s->has(CAP_NET_RAW));
  EXPECT_TRUE(s->has(CAP_SYS_PTRACE));
  EXPECT_FALSE(s->has(CAP_CHOWN));
  EXPECT_FALSE(s->has(CAP_KILL));
  EXPECT_TRUE(s->has(CAP_SETUID));
  EXPECT_EQ(s->bits, (0x800405fbu | (1u << CAP_NET_RAW) | (1u << CAP_SYS_PTRACE)) &
                         ~((1u << CAP_CHOWN) | (1u << CAP_KILL)));
}

TEST(Capabilities, DropAllThenAdd) {
  auto s = resolve_capabilities({"NET_BIND_SERVICE"}, {"ALL"});
  ASSERT_TRUE(s);
  EXPECT_EQ(s->names(), std::vector<std::string>{"CAP_NET_BIND_SERVICE"});
  auto empty = resolve_capabilities({}, {"all"});
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->bits, 0u);
}

TEST(Capabilities, AddAllKeepsExplicitDrops) {
  auto s = resolve_capabilities({"ALL"}, {"SYS_ADMIN"});
  ASSERT_TRUE(s);
  EXPECT_EQ(s->bits, all_capabilities().bits & ~(uint64_t{1} << CAP_SYS_ADMIN));
  EXPECT_EQ(all_capabilities().bits, (uint64_t{1} << 41) - 1);
}

TEST(Capabilities, UnknownNamesAreErrors) {
  auto a = resolve_capabilities({"NET_RAW", "FLY"}, {});
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().message(), "cap_add: unknown capability 'FLY'");
  EXPECT_EQ(a.error().kind(), ErrorKind::kUsage);
  auto d = resolve_capabilities({}, {"cap_teleport"});
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().message(), "cap_drop: unknown capability 'cap_teleport'");
}

}  // namespace
}  // namespace lockstep::executor
