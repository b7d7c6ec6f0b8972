#pragma once
// The threads that serve every job's egress (DNS stub, proxy, connection
// log) in one lockstep process. One per run; outlives its jobs.
#include <memory>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace lockstep::egress {

class Service {
 public:
  virtual ~Service() = default;
  // The resolvers lookups are forwarded to ("10.0.0.53", "::1").
  virtual const std::vector<std::string>& upstreams() const = 0;
};

// `resolv_conf`: the host's resolver configuration ("/etc/resolv.conf").
Result<std::unique_ptr<Service>> make_service(const std::string& resolv_conf = "/etc/resolv.conf");

// The nameserver lines of a resolv.conf text, in order.
std::vector<std::string> parse_nameservers(const std::string& text);

}  // namespace lockstep::egress
