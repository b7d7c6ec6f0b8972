#pragma once
// A small rtnetlink client: what the egress network needs (veth pairs, a
// bridge, addresses, routes) as requests acknowledged one by one. Each socket
// belongs to the network namespace it was created in, so a socket made inside
// a job's namespace configures that namespace from any thread.
#include <netinet/in.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace lockstep::executor::detail {

// An IPv4 or IPv6 address with a prefix length.
struct IpPrefix {
  int family = AF_INET;
  uint8_t bytes[16] = {};
  int prefix = 32;
  static std::optional<IpPrefix> parse(const std::string& text);  // "10.0.0.0/8", "fd00::1"
  std::string address() const;                                    // without the prefix
  std::string str() const;                                        // with "/prefix"
  bool contains(const IpPrefix& other) const;                     // same family, inside
  bool overlaps(const IpPrefix& other) const;
};

struct LinkInfo {
  int index = 0;
  std::string name;
  int mtu = 0;
};

struct RouteInfo {
  int family = AF_INET;
  IpPrefix dst;  // prefix 0 for a default route
  int oif = 0;
};

class Netlink {
 public:
  // A NETLINK_ROUTE socket in the calling thread's network namespace.
  static Result<Netlink> open();
  // The same, adopting a socket created elsewhere (e.g. in another namespace).
  explicit Netlink(UniqueFd fd) : fd_(std::move(fd)) {}

  Status create_bridge(const std::string& name, int mtu);
  // A veth pair: `name` here, `peer` created directly in the namespace of
  // `peer_netns_fd`, with interface index `peer_index` there (0: any).
  Status create_veth(const std::string& name, const std::string& peer, int peer_netns_fd, int mtu,
                     int peer_index = 0);
  Status delete_link(const std::string& name);  // ENODEV is success
  Status set_up(int index);
  Status set_master(int index, int master_index);
  // The bridge port may only talk to the bridge itself, never to another
  // isolated port (IFLA_BRPORT_ISOLATED).
  Status set_isolated(int index);
  Status add_address(int index, const IpPrefix& a, bool nodad);
  Status add_default_route(int family, const IpPrefix& gateway);
  // `dst` reached directly on interface `index` (scope link, no gateway).
  Status add_link_route(int index, const IpPrefix& dst);
  Result<int> link_index(const std::string& name);
  Result<std::vector<LinkInfo>> links();
  Result<std::vector<RouteInfo>> routes(int family);
  Result<std::vector<IpPrefix>> addresses(int family);

 private:
  Netlink() = default;
  Status request(std::vector<char>& msg, const std::string& what);
  Result<std::vector<std::vector<char>>> dump(std::vector<char>& msg, const std::string& what);
  UniqueFd fd_;
  uint32_t seq_ = 0;
};

}  // namespace lockstep::executor::detail
