#pragma once
// DNS messages as the stub needs them (RFC 1035): the question of a query
// and the addresses of an answer. Pure: bytes in, fields out.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lockstep::egress {

struct DnsQuestion {
  uint16_t id = 0;
  std::string name;   // lower case, no trailing dot
  uint16_t type = 0;  // 1 A, 28 AAAA, ...
};

struct DnsAnswer {
  int rcode = 0;                       // 0 NOERROR, 3 NXDOMAIN, ...
  std::vector<std::string> addresses;  // A and AAAA records, numeric
  uint32_t ttl = 0;                    // the smallest TTL of those records
};

std::optional<DnsQuestion> parse_dns_question(std::string_view msg);
std::optional<DnsAnswer> parse_dns_answer(std::string_view msg);
// "A", "AAAA", "MX", or the number.
std::string dns_type_name(uint16_t type);
// A reply to `query` with the given rcode and no records (SERVFAIL when no
// upstream answered).
std::string dns_error_reply(std::string_view query, int rcode);

}  // namespace lockstep::egress
