// .lockstep.yml egress.allow entries and their errors.
#include "pipeline/egress_allow.hpp"

#include <gtest/gtest.h>

#include "pipeline/diagnostic.hpp"
#include "pipeline/project_config.hpp"

namespace lockstep::pipeline {
namespace {
using Kind = EgressAllowEntry::Kind;

TEST(EgressAllow, EveryFormOfEntry) {
  struct Case {
    const char* text;
    Kind kind;
    const char* value;
    uint16_t port;
  } cases[] = {
      {"*", Kind::kAnyPublic, "", 0},
      {"Files.Example.com", Kind::kHost, "files.example.com", 0},
      {"files.example.com:443", Kind::kHost, "files.example.com", 443},
      {"*.pypi.org", Kind::kDomain, "pypi.org", 0},
      {"192.0.2.7", Kind::kCidr, "192.0.2.7/32", 0},
      {"10.1.0.0/16:5432", Kind::kCidr, "10.1.0.0/16", 5432},
      {"2001:db8::7", Kind::kCidr, "2001:db8::7/128", 0},
      {"[fd00::/8]:80", Kind::kCidr, "fd00::/8", 80},
  };
  for (const auto& c : cases) {
    auto e = parse_egress_allow(c.text);
    ASSERT_TRUE(e) << c.text << ": " << e.error().message();
    EXPECT_EQ(e->kind, c.kind) << c.text;
    EXPECT_EQ(e->value, c.value) << c.text;
    EXPECT_EQ(e->port, c.port) << c.text;
    EXPECT_EQ(e->text, c.text);
  }
}

TEST(EgressAllow, MalformedEntriesSayWhy) {
  auto err = [](const char* t) {
    auto e = parse_egress_allow(t);
    EXPECT_FALSE(e) << t;
    return e ? "" : e.error().message();
  };
  EXPECT_EQ(err("10.0.0.0/40"),
            "egress allow entry '10.0.0.0/40': prefix length 40 is longer than 32");
  EXPECT_EQ(err("files.test:http"),
            "egress allow entry 'files.test:http': port 'http' is not a number");
  EXPECT_EQ(err("files.test:70000"),
            "egress allow entry 'files.test:70000': port 70000 is not in 1-65535");
  EXPECT_EQ(err("10.0.0/8"), "egress allow entry '10.0.0/8': '10.0.0' is not an IP address");
  EXPECT_EQ(err("http://files.test/"),
            "egress allow entry 'http://files.test/': a URL; write its host name");
  EXPECT_EQ(err("*.:1"), "egress allow entry '*.:1': '' is not a domain name");
  EXPECT_EQ(err("[::1"), "egress allow entry '[::1': no closing ']'");
}

TEST(EgressAllow, ProjectConfigLocatesABadEntry) {
  auto c = parse_project_config("egress:\n  allow:\n    - files.test\n    - 10.1.0.0/99\n",
                                ".lockstep.yml");
  ASSERT_FALSE(c);
  EXPECT_EQ(
      first_line(c.error()),
      ".lockstep.yml:4:7: egress allow entry '10.1.0.0/99': prefix length 99 is longer than 32");
  auto ok = parse_project_config("egress:\n  allow: [\"*\", files.test:8080]\n", ".lockstep.yml");
  ASSERT_TRUE(ok) << ok.error().message();
  ASSERT_EQ(ok->egress_allow.size(), 2u);
  EXPECT_EQ(ok->egress_allow[1].value, "files.test");
  auto typo = parse_project_config("egress:\n  alow: []\n", ".lockstep.yml");
  ASSERT_FALSE(typo);
  EXPECT_EQ(first_line(typo.error()),
            ".lockstep.yml:2:3: unknown key 'alow' in 'egress' (did you mean 'allow'?)");
}

}  // namespace
}  // namespace lockstep::pipeline
