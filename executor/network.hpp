#pragma once
// The egress network (docs/network.md): every job gets its own network
// namespace with a veth pair to a bridge that belongs to this lockstep
// process, and NAT through the host's default route. nftables rules on the
// host (one table per bridge) keep the job away from the host's own
// addresses, from other jobs, from link-local and reserved addresses and,
// unless the policy opens them, from private ranges; a refused connection is
// answered at once (TCP reset, ICMP administratively prohibited), never left
// to time out.
//
// State lives in /run/lockstep/net/ns-<inode of the host's network
// namespace>/: one file per live fabric (owner pid and start time, subnet)
// and the forwarding settings lockstep changed. A fabric whose owner is gone
// is reaped by the next fabric made in that namespace, or by
// reap_stale_networks(): bridge, veths and table, and the forwarding settings
// restored once no fabric is left.
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace lockstep::executor {

// A destination range a job may reach (port 0: every port).
struct EgressCidr {
  std::string cidr;  // "10.1.0.0/16", "2001:db8::/32", "192.0.2.7"
  uint16_t port = 0;
};

struct EgressPolicy {
  bool any_public = true;         // every public address (the default)
  std::vector<EgressCidr> cidrs;  // opened in addition (may be private ranges)
};

// Where a job's egress services listen, inside every job's namespace.
inline constexpr const char* kEgressServiceAddress = "127.0.0.53";
inline constexpr uint16_t kEgressDnsPort = 53;
inline constexpr uint16_t kEgressProxyPort = 3128;

// One job's network namespace, joined by the job container and its services
// (NetworkMode::kEgress). Destroying it deletes the veth pair; the namespace
// itself goes when the last process in it and the last fd to it are gone.
class NetworkNamespace {
 public:
  virtual ~NetworkNamespace() = default;
  virtual int fd() const = 0;  // /proc/.../ns/net, O_CLOEXEC
  virtual const std::string& address4() const = 0;
  virtual const std::string& address6() const = 0;  // empty without IPv6
  // A socket created inside the namespace (it stays there whichever thread
  // uses it): the DNS stub, the proxy and the connection log listen on these.
  virtual Result<UniqueFd> socket(int domain, int type, int protocol) const = 0;
  // Several at once (one trip into the namespace): {domain, type, protocol}.
  struct SocketSpec {
    int domain, type, protocol;
  };
  virtual Result<std::vector<UniqueFd>> sockets(const std::vector<SocketSpec>& specs) const = 0;
};

class EgressFabric {
 public:
  virtual ~EgressFabric() = default;  // removes the bridge and the table
  // Picks a free subnet, creates the bridge and the table, enables forwarding.
  // With a keeper (a live process, `lockstep agent`, whose jobs each run in a
  // process of their own): a fabric that keeper kept for this policy and no
  // other process uses is taken over instead, and at the end the fabric is
  // kept for the keeper's next job rather than removed (its namespaces are
  // removed as always). What it keeps is removed by release_kept_networks(),
  // or by any reaper once the keeper is gone.
  static Result<std::unique_ptr<EgressFabric>> create(const EgressPolicy& policy, pid_t keeper = 0);

  // A new namespace for `name` (for messages), configured and ready.
  virtual Result<std::shared_ptr<NetworkNamespace>> create_namespace(const std::string& name) = 0;
  // Opens one address (port 0: every port) to every job of this fabric for
  // `ttl`: what the DNS stub learned a name of the allow-list resolves to.
  virtual Status allow_address(const std::string& address, uint16_t port,
                               std::chrono::seconds ttl) = 0;
  virtual bool has_ipv6() const = 0;
  virtual const std::string& bridge() const = 0;
  virtual const std::string& table() const = 0;
  virtual const std::string& subnet4() const = 0;
  virtual const std::string& subnet6() const = 0;  // empty without IPv6
  // The MTU jobs get: the host's default route's interface's.
  virtual int mtu() const = 0;
  // False when the host had no IPv4 default route: nothing outside is reachable.
  virtual bool has_uplink() const = 0;
};

// Removes what fabrics of dead lockstep processes left in this network
// namespace. Safe to call at any time; live fabrics are not touched.
Status reap_stale_networks();

// Removes the fabrics kept for `keeper` (EgressFabric::create) that no
// process uses now.
Status release_kept_networks(pid_t keeper);

// Names of what exists now, for tests and `lockstep` diagnostics: lockstep's
// interfaces ("lsb-*", "lsv*") and nftables tables ("lockstep_*").
Result<std::vector<std::string>> list_network_objects();

}  // namespace lockstep::executor
