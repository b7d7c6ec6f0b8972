#include "pipeline/egress_allow.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

namespace lockstep::pipeline {
namespace {

bool is_address(const std::string& a, int& family) {
  unsigned char buf[16];
  if (::inet_pton(AF_INET, a.c_str(), buf) == 1) return (family = AF_INET), true;
  if (::inet_pton(AF_INET6, a.c_str(), buf) == 1) return (family = AF_INET6), true;
  return false;
}

bool valid_host(std::string_view h) {
  if (h.empty() || h.size() > 253 || h.front() == '.' || h.back() == '.') return false;
  size_t label = 0;
  for (char c : h) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
    if (++label > 63) return false;
  }
  return true;
}

}  // namespace

Result<EgressAllowEntry> parse_egress_allow(std::string_view text) {
  EgressAllowEntry e;
  e.text = std::string(text);
  auto bad = [&](const std::string& why) {
    return fail("egress allow entry '" + e.text + "': " + why, ErrorKind::kWorkflow);
  };
  if (text == "*") {
    e.kind = EgressAllowEntry::Kind::kAnyPublic;
    return e;
  }
  if (text.find("://") != std::string_view::npos) return bad("a URL; write its host name");
  std::string body(text), port;
  if (!body.empty() && body.front() == '[') {  // [v6]:port or [v6/len]:port
    size_t close = body.find(']');
    if (close == std::string::npos) return bad("no closing ']'");
    std::string after = body.substr(close + 1);
    body = body.substr(1, close - 1);
    if (!after.empty()) {
      if (after[0] != ':') return bad("expected ':PORT' after ']'");
      port = after.substr(1);
      if (port.empty()) return bad("empty port");
    }
  } else if (std::count(body.begin(), body.end(), ':') == 1) {
    size_t colon = body.find(':');
    port = body.substr(colon + 1);
    body = body.substr(0, colon);
    if (port.empty()) return bad("empty port");
  }
  if (!port.empty()) {
    if (port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return bad("port '" + port + "' is not a number");
    int p = std::stoi(port);
    if (p < 1 || p > 65535) return bad("port " + port + " is not in 1-65535");
    e.port = static_cast<uint16_t>(p);
  }
  if (body.empty()) return bad("empty");
  std::string addr = body, len;
  if (auto slash = body.find('/'); slash != std::string::npos) {
    addr = body.substr(0, slash);
    len = body.substr(slash + 1);
  }
  int family = 0;
  if (is_address(addr, family)) {
    int max = family == AF_INET ? 32 : 128;
    int bits = max;
    if (body.find('/') != std::string::npos) {
      if (len.empty() || len.size() > 3 ||
          !std::all_of(len.begin(), len.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return bad("prefix length '" + len + "' is not a number");
      bits = std::stoi(len);
      if (bits > max) return bad("prefix length " + len + " is longer than " + std::to_string(max));
    }
    e.kind = EgressAllowEntry::Kind::kCidr;
    e.value = addr + "/" + std::to_string(bits);
    return e;
  }
  if (!len.empty() || body.find('/') != std::string::npos)
    return bad("'" + addr + "' is not an IP address");
  std::string host = body;
  std::transform(host.begin(), host.end(), host.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (host.rfind("*.", 0) == 0) {
    if (!valid_host(host.substr(2))) return bad("'" + host.substr(2) + "' is not a domain name");
    e.kind = EgressAllowEntry::Kind::kDomain;
    e.value = host.substr(2);
    return e;
  }
  if (!valid_host(host))
    return bad("expected a host name, *.domain, an address or a CIDR, optionally with :PORT");
  e.kind = EgressAllowEntry::Kind::kHost;
  e.value = host;
  return e;
}

}  // namespace lockstep::pipeline
