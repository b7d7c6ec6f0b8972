#include "egress/dns.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>

namespace lockstep::egress {
namespace {

uint16_t u16(std::string_view m, size_t at) {
  return static_cast<uint16_t>((static_cast<uint8_t>(m[at]) << 8) |
                               static_cast<uint8_t>(m[at + 1]));
}
uint32_t u32(std::string_view m, size_t at) {
  return (uint32_t{u16(m, at)} << 16) | u16(m, at + 2);
}

// Reads a (possibly compressed) name at `pos`; advances `pos` past it in the
// message as laid out (not past the pointer's target).
std::optional<std::string> read_name(std::string_view m, size_t& pos) {
  std::string name;
  size_t p = pos;
  bool jumped = false;
  for (int hops = 0; hops < 64; ++hops) {
    if (p >= m.size()) return std::nullopt;
    uint8_t len = static_cast<uint8_t>(m[p]);
    if ((len & 0xc0) == 0xc0) {
      if (p + 1 >= m.size()) return std::nullopt;
      size_t target = ((len & 0x3f) << 8) | static_cast<uint8_t>(m[p + 1]);
      if (!jumped) pos = p + 2;
      jumped = true;
      p = target;
      continue;
    }
    if (len == 0) {
      if (!jumped) pos = p + 1;
      return name;
    }
    if (len > 63 || p + 1 + len > m.size()) return std::nullopt;
    if (!name.empty()) name += '.';
    for (size_t i = 0; i < len; ++i)
      name += static_cast<char>(std::tolower(static_cast<unsigned char>(m[p + 1 + i])));
    p += 1 + len;
  }
  return std::nullopt;
}

}  // namespace

std::optional<DnsQuestion> parse_dns_question(std::string_view m) {
  if (m.size() < 12 || u16(m, 4) < 1) return std::nullopt;
  DnsQuestion q;
  q.id = u16(m, 0);
  size_t pos = 12;
  auto name = read_name(m, pos);
  if (!name || pos + 4 > m.size()) return std::nullopt;
  q.name = *name;
  q.type = u16(m, pos);
  return q;
}

std::optional<DnsAnswer> parse_dns_answer(std::string_view m) {
  if (m.size() < 12) return std::nullopt;
  DnsAnswer a;
  a.rcode = static_cast<uint8_t>(m[3]) & 0x0f;
  uint16_t qd = u16(m, 4), an = u16(m, 6);
  size_t pos = 12;
  for (uint16_t i = 0; i < qd; ++i) {
    if (!read_name(m, pos) || pos + 4 > m.size()) return std::nullopt;
    pos += 4;
  }
  bool any = false;
  for (uint16_t i = 0; i < an; ++i) {
    if (!read_name(m, pos) || pos + 10 > m.size()) return std::nullopt;
    uint16_t type = u16(m, pos), cls = u16(m, pos + 2);
    uint32_t ttl = u32(m, pos + 4);
    uint16_t len = u16(m, pos + 8);
    pos += 10;
    if (pos + len > m.size()) return std::nullopt;
    char buf[INET6_ADDRSTRLEN];
    if (cls == 1 && ((type == 1 && len == 4) || (type == 28 && len == 16))) {
      ::inet_ntop(type == 1 ? AF_INET : AF_INET6, m.data() + pos, buf, sizeof buf);
      a.addresses.emplace_back(buf);
      a.ttl = any ? std::min(a.ttl, ttl) : ttl;
      any = true;
    }
    pos += len;
  }
  return a;
}

std::string dns_type_name(uint16_t type) {
  switch (type) {
    case 1:
      return "A";
    case 2:
      return "NS";
    case 5:
      return "CNAME";
    case 6:
      return "SOA";
    case 12:
      return "PTR";
    case 15:
      return "MX";
    case 16:
      return "TXT";
    case 28:
      return "AAAA";
    case 33:
      return "SRV";
    case 65:
      return "HTTPS";
  }
  return std::to_string(type);
}

std::string dns_error_reply(std::string_view query, int rcode) {
  // The header and the question, answered with no records.
  size_t pos = 12;
  if (query.size() < 12 || !read_name(query, pos) || pos + 4 > query.size()) return {};
  std::string r(query.substr(0, pos + 4));
  r[2] = static_cast<char>(0x80 | (static_cast<uint8_t>(query[2]) & 0x79));  // QR, opcode, RD
  r[3] = static_cast<char>(0x80 | (rcode & 0x0f));                           // RA, rcode
  r[4] = 0, r[5] = 1;
  for (size_t i = 6; i < 12; ++i) r[i] = 0;
  return r;
}

}  // namespace lockstep::egress
