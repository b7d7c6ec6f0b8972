#include "egress/conntrack.hpp"

#include <arpa/inet.h>
#include <endian.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <netinet/in.h>

#include <cstring>

#include <gtest/gtest.h>

namespace lockstep::egress {
namespace {

// Netlink attributes built the way the kernel lays them out.
struct Attrs {
  std::string b;
  Attrs& add(uint16_t type, const void* p, size_t n) {
    nlattr a{static_cast<uint16_t>(NLA_HDRLEN + n), type};
    b.append(reinterpret_cast<const char*>(&a), sizeof a);
    b.append(static_cast<const char*>(p), n);
    b.resize(NLA_ALIGN(b.size()));
    return *this;
  }
  Attrs& nest(uint16_t type, const Attrs& inner) {
    return add(static_cast<uint16_t>(type | NLA_F_NESTED), inner.b.data(), inner.b.size());
  }
  template <typename T>
  Attrs& num(uint16_t type, T v) {
    return add(type, &v, sizeof v);
  }
};

std::string message(int type, uint16_t flags, const Attrs& body) {
  std::string m(NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg)), '\0');
  m += body.b;
  nlmsghdr h{};
  h.nlmsg_len = static_cast<uint32_t>(m.size());
  h.nlmsg_type = static_cast<uint16_t>((NFNL_SUBSYS_CTNETLINK << 8) | type);
  h.nlmsg_flags = flags;
  std::memcpy(m.data(), &h, sizeof h);
  return m;
}

Attrs tuple(const char* src, const char* dst, uint16_t sport, uint16_t dport) {
  in_addr s{}, d{};
  inet_pton(AF_INET, src, &s);
  inet_pton(AF_INET, dst, &d);
  Attrs ip, proto;
  ip.add(CTA_IP_V4_SRC, &s, 4).add(CTA_IP_V4_DST, &d, 4);
  uint8_t tcp = IPPROTO_TCP;
  proto.num(CTA_PROTO_NUM, tcp)
      .num(CTA_PROTO_SRC_PORT, htons(sport))
      .num(CTA_PROTO_DST_PORT, htons(dport));
  Attrs t;
  t.nest(CTA_TUPLE_IP, ip).nest(CTA_TUPLE_PROTO, proto);
  return t;
}

TEST(Conntrack, NewAndDestroyEventsOfOneConnection) {
  Attrs created;
  created.nest(CTA_TUPLE_ORIG, tuple("10.213.0.2", "198.51.100.10", 40000, 80))
      .num(CTA_ID, htonl(77));
  Attrs counters_out, counters_in, ts;
  counters_out.num(CTA_COUNTERS_BYTES, htobe64(uint64_t{120}));
  counters_in.num(CTA_COUNTERS_BYTES, htobe64(uint64_t{1048576}));
  ts.num(CTA_TIMESTAMP_START, htobe64(uint64_t{1000}))
      .num(CTA_TIMESTAMP_STOP, htobe64(uint64_t{2000}));
  Attrs destroyed;
  destroyed.nest(CTA_TUPLE_ORIG, tuple("10.213.0.2", "198.51.100.10", 40000, 80))
      .num(CTA_ID, htonl(77))
      .num(CTA_STATUS, htonl(uint32_t{6}))
      .nest(CTA_COUNTERS_ORIG, counters_out)
      .nest(CTA_COUNTERS_REPLY, counters_in)
      .nest(CTA_TIMESTAMP, ts);
  std::string d = message(IPCTNL_MSG_CT_NEW, NLM_F_CREATE, created) +
                  message(IPCTNL_MSG_CT_DELETE, 0, destroyed);
  auto events = parse_ct_messages(d);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, CtEvent::kNew);
  EXPECT_EQ(events[0].id, 77u);
  EXPECT_EQ(events[0].proto, "tcp");
  EXPECT_EQ(events[0].src, "10.213.0.2");
  EXPECT_EQ(events[0].dst, "198.51.100.10");
  EXPECT_EQ(events[0].dport, 80);
  EXPECT_EQ(events[1].kind, CtEvent::kDestroy);
  EXPECT_EQ(events[1].bytes_out, 120u);
  EXPECT_EQ(events[1].bytes_in, 1048576u);
  EXPECT_EQ(events[1].start_ns, 1000u);
  EXPECT_EQ(events[1].stop_ns, 2000u);
  EXPECT_TRUE(events[1].seen_reply);
  EXPECT_TRUE(events[1].assured);
}

TEST(Conntrack, MalformedAttributesEndTheMessageWithoutReadingPastIt) {
  Attrs created;
  created.nest(CTA_TUPLE_ORIG, tuple("10.213.0.2", "198.51.100.10", 1, 2));
  std::string d = message(IPCTNL_MSG_CT_NEW, NLM_F_CREATE, created);
  d.resize(d.size() - 6);  // cut inside the tuple
  nlmsghdr h;
  std::memcpy(&h, d.data(), sizeof h);
  h.nlmsg_len = static_cast<uint32_t>(d.size());
  std::memcpy(d.data(), &h, sizeof h);
  for (const auto& e : parse_ct_messages(d)) EXPECT_EQ(e.dst, "198.51.100.10");
}

}  // namespace
}  // namespace lockstep::egress
