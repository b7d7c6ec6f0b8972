#pragma once
// One entry of `.lockstep.yml` `egress: {allow: [...]}` (docs/network.md):
//   "*"                 every public address (what no allow-list means)
//   HOST[:PORT]         a host name ("files.example.com", "files.example.com:443")
//   *.DOMAIN[:PORT]     every name below DOMAIN
//   ADDRESS[:PORT]      "192.0.2.7", "[2001:db8::7]:443"
//   CIDR[:PORT]         "10.1.0.0/16:5432", "[fd00::/8]:80"
// Pure; errors are one line naming the entry.
#include <cstdint>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace lockstep::pipeline {

struct EgressAllowEntry {
  enum class Kind { kAnyPublic, kHost, kDomain, kCidr } kind = Kind::kHost;
  std::string value;  // host name (lower case), domain without "*.", or CIDR ("/32" added)
  uint16_t port = 0;  // 0: every port
  std::string text;   // as written
};

Result<EgressAllowEntry> parse_egress_allow(std::string_view text);

}  // namespace lockstep::pipeline
