#include "executor/network_rules.hpp"

#include <gtest/gtest.h>

#include "executor/netlink.hpp"

namespace lockstep::executor {
namespace {
using detail::IpPrefix;

TEST(IpPrefix, ParsesContainsAndOverlaps) {
  auto net = IpPrefix::parse("10.213.0.0/16");
  ASSERT_TRUE(net);
  EXPECT_EQ(net->str(), "10.213.0.0/16");
  EXPECT_TRUE(net->contains(*IpPrefix::parse("10.213.7.9")));
  EXPECT_FALSE(net->contains(*IpPrefix::parse("10.214.0.1")));
  EXPECT_TRUE(IpPrefix::parse("10.213.7.0/24")->overlaps(*net));
  EXPECT_TRUE(net->overlaps(*IpPrefix::parse("10.0.0.0/8")));
  EXPECT_FALSE(net->overlaps(*IpPrefix::parse("fd00::/8")));
  EXPECT_TRUE(IpPrefix::parse("fc00::/7")->contains(*IpPrefix::parse("fd6c:6f63:6b00:3::2")));
  EXPECT_FALSE(IpPrefix::parse("10.0.0.0/33"));
  EXPECT_FALSE(IpPrefix::parse("10.0.0/8"));
  EXPECT_FALSE(IpPrefix::parse("files.test"));
  EXPECT_FALSE(IpPrefix::parse("10.0.0.0/x"));
}

TEST(NetworkRules, HostTableRefusesBeforeItAcceptsAndNatsOnlyItsSubnet) {
  detail::FabricPlan p{
      "lockstep_abc123", "lsb-abc123", "10.213.4.0/24", "fd6c:6f63:6b00:4::/64", {}};
  p.policy.cidrs = {{"10.9.0.0/16", 5432}};
  std::string t = detail::fabric_ruleset(p);
  auto at = [&](const std::string& s) {
    auto pos = t.find(s);
    EXPECT_NE(pos, std::string::npos) << s << "\n" << t;
    return pos;
  };
  at("table inet lockstep_abc123 {");
  at("iifname \"lsb-abc123\" goto deny\n");  // the host answers a job nothing
  size_t never = at("169.254.0.0/16");
  size_t cidr = at("ip daddr 10.9.0.0/16 meta l4proto { tcp, udp } th dport 5432 accept");
  size_t priv =
      at("ip daddr { 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10 } goto deny");
  EXPECT_LT(never, cidr);
  EXPECT_LT(cidr, priv);
  at("meta l4proto tcp reject with tcp reset");
  at("ip saddr 10.213.4.0/24 oifname != \"lsb-abc123\" masquerade");
  at("ip6 saddr fd6c:6f63:6b00:4::/64 oifname != \"lsb-abc123\" masquerade");
  // Without any_public the chain ends refusing.
  p.policy.any_public = false;
  std::string closed = detail::fabric_ruleset(p);
  EXPECT_EQ(closed.find("goto deny\n    accept\n"), std::string::npos);
}

TEST(NetworkRules, ClassifiesDestinations) {
  EgressPolicy p;
  EXPECT_EQ(classify_destination(p, "198.51.100.1", 80), Destination::kAllowed);
  EXPECT_EQ(classify_destination(p, "172.20.0.1", 80), Destination::kPrivate);
  EXPECT_EQ(classify_destination(p, "224.0.0.251", 5353), Destination::kNever);
  EXPECT_EQ(classify_destination(p, "::ffff:127.0.0.1", 80), Destination::kNever);
  p.any_public = false;
  EXPECT_EQ(classify_destination(p, "198.51.100.1", 80), Destination::kNotAllowed);
  p.cidrs = {{"172.20.0.0/16", 0}};
  EXPECT_EQ(classify_destination(p, "172.20.0.1", 80), Destination::kAllowed);
}

}  // namespace
}  // namespace lockstep::executor
