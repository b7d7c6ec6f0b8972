#pragma once
// What a job may reach: the network policy the kernel enforces (addresses)
// plus the host names of the allow-list, which the DNS stub turns into
// addresses as jobs resolve them and the proxy checks by name. Pure.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "executor/network.hpp"

namespace lockstep::egress {

struct AllowHost {
  std::string name;     // "example.com" or, with `suffix`, the domain of "*.example.com"
  bool suffix = false;  // every name below `name` (not `name` itself)
  uint16_t port = 0;    // 0: every port
};

struct Policy {
  executor::EgressPolicy net;
  std::vector<AllowHost> hosts;
  // The allow-list as written, for messages ("not in egress.allow").
  std::vector<std::string> written;
};

// The ports (0 = any) on which `name` is allowed by a host entry, empty when
// no entry names it.
std::vector<uint16_t> allowed_ports(const Policy& p, std::string_view name);

// Why a connection to `address`:`port` (reached as `name`, may be empty) is
// refused, or "" when the policy allows it.
std::string refusal(const Policy& p, std::string_view name, std::string_view address,
                    uint16_t port);

}  // namespace lockstep::egress
