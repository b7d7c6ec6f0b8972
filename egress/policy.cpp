#include "egress/policy.hpp"

#include "executor/network_rules.hpp"

namespace lockstep::egress {

std::vector<uint16_t> allowed_ports(const Policy& p, std::string_view name) {
  std::vector<uint16_t> ports;
  for (const auto& h : p.hosts) {
    bool match = h.suffix ? name.size() > h.name.size() && name.ends_with(h.name) &&
                                name[name.size() - h.name.size() - 1] == '.'
                          : name == h.name;
    if (match) ports.push_back(h.port);
  }
  return ports;
}

std::string refusal(const Policy& p, std::string_view name, std::string_view address,
                    uint16_t port) {
  using executor::Destination;
  Destination d = executor::classify_destination(p.net, address, port);
  if (d == Destination::kNever) return executor::describe_destination(address);
  if (d == Destination::kAllowed) return "";
  if (!name.empty())
    for (uint16_t allowed : allowed_ports(p, name))
      if (allowed == 0 || allowed == port) return "";
  if (d == Destination::kPrivate)
    return executor::describe_destination(address) + ", not in egress.allow";
  return "not in egress.allow";
}

}  // namespace lockstep::egress
