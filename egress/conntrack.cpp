#include "egress/conntrack.hpp"

#include <arpa/inet.h>
#include <endian.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <netinet/in.h>

#include <cstring>
#include <functional>

namespace lockstep::egress {
namespace {

using AttrFn = std::function<void(uint16_t type, std::string_view payload)>;

void each_attr(std::string_view data, const AttrFn& f) {
  size_t pos = 0;
  while (pos + NLA_HDRLEN <= data.size()) {
    nlattr a;
    std::memcpy(&a, data.data() + pos, sizeof a);
    if (a.nla_len < NLA_HDRLEN || pos + a.nla_len > data.size()) return;
    f(static_cast<uint16_t>(a.nla_type & NLA_TYPE_MASK),
      data.substr(pos + NLA_HDRLEN, a.nla_len - NLA_HDRLEN));
    pos += NLA_ALIGN(a.nla_len);
  }
}

uint64_t be64(std::string_view p) {
  if (p.size() < 8) return 0;
  uint64_t v;
  std::memcpy(&v, p.data(), 8);
  return be64toh(v);
}
uint32_t be32(std::string_view p) {
  if (p.size() < 4) return 0;
  uint32_t v;
  std::memcpy(&v, p.data(), 4);
  return ntohl(v);
}
uint16_t be16(std::string_view p) {
  if (p.size() < 2) return 0;
  uint16_t v;
  std::memcpy(&v, p.data(), 2);
  return ntohs(v);
}

std::string addr(int family, std::string_view p) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (p.size() >= (family == AF_INET ? 4u : 16u)) ::inet_ntop(family, p.data(), buf, sizeof buf);
  return buf;
}

std::string proto_name(uint8_t n) {
  switch (n) {
    case IPPROTO_TCP:
      return "tcp";
    case IPPROTO_UDP:
      return "udp";
    case IPPROTO_ICMP:
      return "icmp";
    case IPPROTO_ICMPV6:
      return "icmpv6";
    case IPPROTO_SCTP:
      return "sctp";
  }
  return std::to_string(n);
}

void parse_tuple(std::string_view t, CtEvent& e) {
  each_attr(t, [&](uint16_t type, std::string_view p) {
    if (type == CTA_TUPLE_IP) {
      each_attr(p, [&](uint16_t ip, std::string_view v) {
        if (ip == CTA_IP_V4_SRC) e.src = addr(AF_INET, v);
        if (ip == CTA_IP_V4_DST) e.dst = addr(AF_INET, v);
        if (ip == CTA_IP_V6_SRC) e.src = addr(AF_INET6, v);
        if (ip == CTA_IP_V6_DST) e.dst = addr(AF_INET6, v);
      });
    } else if (type == CTA_TUPLE_PROTO) {
      each_attr(p, [&](uint16_t pr, std::string_view v) {
        if (pr == CTA_PROTO_NUM && !v.empty()) e.proto = proto_name(static_cast<uint8_t>(v[0]));
        if (pr == CTA_PROTO_SRC_PORT) e.sport = be16(v);
        if (pr == CTA_PROTO_DST_PORT) e.dport = be16(v);
      });
    }
  });
}

uint64_t counter_bytes(std::string_view c) {
  uint64_t bytes = 0;
  each_attr(c, [&](uint16_t type, std::string_view v) {
    if (type == CTA_COUNTERS_BYTES) bytes = be64(v);
    if (type == CTA_COUNTERS32_BYTES) bytes = be32(v);
  });
  return bytes;
}

}  // namespace

std::vector<CtEvent> parse_ct_messages(std::string_view d) {
  std::vector<CtEvent> out;
  size_t pos = 0;
  while (pos + NLMSG_HDRLEN <= d.size()) {
    nlmsghdr h;
    std::memcpy(&h, d.data() + pos, sizeof h);
    if (h.nlmsg_len < NLMSG_HDRLEN || pos + h.nlmsg_len > d.size()) break;
    std::string_view msg = d.substr(pos, h.nlmsg_len);
    pos += NLMSG_ALIGN(h.nlmsg_len);
    if ((h.nlmsg_type >> 8) != NFNL_SUBSYS_CTNETLINK) continue;
    int type = h.nlmsg_type & 0xff;
    if (type != IPCTNL_MSG_CT_NEW && type != IPCTNL_MSG_CT_DELETE) continue;
    CtEvent e;
    if (type == IPCTNL_MSG_CT_DELETE)
      e.kind = CtEvent::kDestroy;
    else if (h.nlmsg_flags & NLM_F_CREATE)
      e.kind = CtEvent::kNew;
    else
      e.kind = (h.nlmsg_flags & NLM_F_MULTI) ? CtEvent::kDump : CtEvent::kUpdate;
    std::string_view body = msg.substr(NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg)));
    each_attr(body, [&](uint16_t t, std::string_view p) {
      switch (t) {
        case CTA_TUPLE_ORIG:
          parse_tuple(p, e);
          break;
        case CTA_COUNTERS_ORIG:
          e.bytes_out = counter_bytes(p);
          break;
        case CTA_COUNTERS_REPLY:
          e.bytes_in = counter_bytes(p);
          break;
        case CTA_ID:
          e.id = be32(p);
          break;
        case CTA_STATUS: {
          uint32_t s = be32(p);
          e.seen_reply = s & (1u << 1);  // IPS_SEEN_REPLY
          e.assured = s & (1u << 2);     // IPS_ASSURED
          break;
        }
        case CTA_PROTOINFO:
          each_attr(p, [&](uint16_t pi, std::string_view v) {
            if (pi != CTA_PROTOINFO_TCP) return;
            each_attr(v, [&](uint16_t tt, std::string_view x) {
              if (tt == CTA_PROTOINFO_TCP_STATE && !x.empty())
                e.tcp_state = static_cast<uint8_t>(x[0]);
            });
          });
          break;
        case CTA_TIMESTAMP:
          each_attr(p, [&](uint16_t ts, std::string_view v) {
            if (ts == CTA_TIMESTAMP_START) e.start_ns = be64(v);
            if (ts == CTA_TIMESTAMP_STOP) e.stop_ns = be64(v);
          });
          break;
        default:
          break;
      }
    });
    if (!e.dst.empty()) out.push_back(std::move(e));
  }
  return out;
}

std::string ct_dump_request(uint32_t seq) {
  std::string m(NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(nfgenmsg)), '\0');
  nlmsghdr h{};
  h.nlmsg_len = static_cast<uint32_t>(m.size());
  h.nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
  h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  h.nlmsg_seq = seq;
  nfgenmsg g{};
  g.nfgen_family = AF_UNSPEC;
  g.version = NFNETLINK_V0;
  std::memcpy(m.data(), &h, sizeof h);
  std::memcpy(m.data() + NLMSG_HDRLEN, &g, sizeof g);
  return m;
}

}  // namespace lockstep::egress
