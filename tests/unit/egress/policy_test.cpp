#include "egress/policy.hpp"

#include <gtest/gtest.h>

#include "executor/network_rules.hpp"

namespace lockstep::egress {
namespace {
using executor::Destination;

TEST(Policy, DefaultAllowsPublicAndRefusesTheRestByName) {
  Policy p;
  EXPECT_EQ(refusal(p, "", "198.51.100.10", 80), "");
  EXPECT_EQ(refusal(p, "", "2001:db8::1", 443), "");
  EXPECT_EQ(refusal(p, "", "169.254.169.254", 80), "link-local 169.254.0.0/16");
  EXPECT_EQ(refusal(p, "", "127.0.0.1", 5000), "loopback 127.0.0.0/8");
  EXPECT_EQ(refusal(p, "", "10.213.0.7", 5432), "lockstep's job network 10.213.0.0/16");
  EXPECT_EQ(refusal(p, "", "192.168.1.5", 22), "private range 192.168.0.0/16, not in egress.allow");
  EXPECT_EQ(refusal(p, "", "fd12::1", 22), "unique local range fc00::/7, not in egress.allow");
  EXPECT_EQ(refusal(p, "", "fe80::1", 22), "link-local fe80::/10");
}

TEST(Policy, AllowListOpensCidrsPortsAndNames) {
  Policy p;
  p.net.any_public = false;
  p.net.cidrs = {{"10.1.0.0/16", 5432}, {"198.51.100.0/24", 0}, {"169.254.0.0/16", 0}};
  p.hosts = {{"files.test", false, 0}, {"example.org", true, 443}};
  EXPECT_EQ(refusal(p, "", "10.1.2.3", 5432), "");
  EXPECT_EQ(refusal(p, "", "10.1.2.3", 22), "private range 10.0.0.0/8, not in egress.allow");
  EXPECT_EQ(refusal(p, "", "198.51.100.99", 1), "");
  EXPECT_EQ(refusal(p, "", "203.0.113.5", 80), "not in egress.allow");
  EXPECT_EQ(refusal(p, "files.test", "203.0.113.5", 80), "");
  EXPECT_EQ(refusal(p, "www.example.org", "203.0.113.5", 443), "");
  EXPECT_EQ(refusal(p, "www.example.org", "203.0.113.5", 80), "not in egress.allow");
  EXPECT_EQ(refusal(p, "example.org", "203.0.113.5", 443), "not in egress.allow");
  // Link-local stays closed whatever the list says.
  EXPECT_EQ(refusal(p, "", "169.254.169.254", 80), "link-local 169.254.0.0/16");
  EXPECT_EQ(executor::classify_destination(p.net, "not-an-ip", 1), Destination::kNever);
}

}  // namespace
}  // namespace lockstep::egress
