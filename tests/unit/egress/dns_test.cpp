#include "egress/dns.hpp"

#include <gtest/gtest.h>

#include "egress/service.hpp"

namespace lockstep::egress {
namespace {

std::string name_bytes(const std::string& dotted) {
  std::string out;
  size_t pos = 0;
  while (pos <= dotted.size()) {
    size_t dot = dotted.find('.', pos);
    if (dot == std::string::npos) dot = dotted.size();
    out += static_cast<char>(dot - pos);
    out += dotted.substr(pos, dot - pos);
    pos = dot + 1;
  }
  return out + '\0';
}

std::string query(uint16_t id, const std::string& name, uint16_t type) {
  std::string m = {
      static_cast<char>(id >> 8), static_cast<char>(id & 0xff), 1, 0, 0, 1, 0, 0, 0, 0, 0, 0};
  m += name_bytes(name);
  m += {static_cast<char>(type >> 8), static_cast<char>(type & 0xff), 0, 1};
  return m;
}

TEST(Dns, ParsesTheQuestionInLowerCase) {
  auto q = parse_dns_question(query(0x1234, "Files.Example.TEST", 28));
  ASSERT_TRUE(q);
  EXPECT_EQ(q->id, 0x1234);
  EXPECT_EQ(q->name, "files.example.test");
  EXPECT_EQ(dns_type_name(q->type), "AAAA");
  EXPECT_FALSE(parse_dns_question("short"));
}

TEST(Dns, AnswerAddressesFollowCompressionPointersAndKeepTheSmallestTtl) {
  std::string m = query(7, "a.test", 1);
  m[2] = static_cast<char>(0x81);
  m[3] = static_cast<char>(0x80);
  m[7] = 2;  // two answers
  // Answer 1: pointer to the question name (offset 12), A, IN, TTL 300.
  m += {static_cast<char>(0xc0), 12, 0,   1, 0, 1, 0, 0, 1, 44, 0, 4,
        static_cast<char>(198),  51, 100, 10};
  // Answer 2: A, TTL 60.
  m += {static_cast<char>(0xc0), 12, 0,   1, 0, 1, 0, 0, 0, 60, 0, 4,
        static_cast<char>(198),  51, 100, 11};
  auto a = parse_dns_answer(m);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->rcode, 0);
  EXPECT_EQ(a->addresses, (std::vector<std::string>{"198.51.100.10", "198.51.100.11"}));
  EXPECT_EQ(a->ttl, 60u);
}

TEST(Dns, TruncatedAnswerIsRefused) {
  std::string m = query(7, "a.test", 1);
  m[7] = 1;
  m += {static_cast<char>(0xc0), 12, 0, 1, 0, 1, 0, 0, 1};
  EXPECT_FALSE(parse_dns_answer(m));
}

TEST(Dns, ErrorReplyKeepsIdAndQuestion) {
  std::string q = query(0xbeef, "x.test", 1);
  std::string r = dns_error_reply(q, 2);
  ASSERT_EQ(r.size(), q.size());
  EXPECT_EQ(static_cast<uint8_t>(r[0]), 0xbe);
  EXPECT_EQ(static_cast<uint8_t>(r[1]), 0xef);
  EXPECT_EQ(static_cast<uint8_t>(r[2]) & 0x80, 0x80);
  EXPECT_EQ(static_cast<uint8_t>(r[3]) & 0x0f, 2);
  auto a = parse_dns_answer(r);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->rcode, 2);
  EXPECT_TRUE(a->addresses.empty());
}

TEST(Dns, NameserversOfResolvConf) {
  EXPECT_EQ(parse_nameservers("# c\nsearch x\nnameserver 10.0.0.53\nnameserver fe80::1%eth0\n"
                              "options ndots:2\n"),
            (std::vector<std::string>{"10.0.0.53", "fe80::1"}));
}

}  // namespace
}  // namespace lockstep::egress
