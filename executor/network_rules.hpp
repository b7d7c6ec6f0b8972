#pragma once
// The egress policy as data: which destinations a job may never reach, which
// are private, and the nftables rulesets that enforce it (host table, the
// job namespace's own table, the forwarding guard). Pure text generation and
// address classification, shared by the fabric and by lockstep's proxy (which
// connects from the host and so checks the same policy itself).
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "executor/network.hpp"

namespace lockstep::executor {

enum class Destination {
  kAllowed,
  kNever,      // loopback, link-local (incl. 169.254.169.254), multicast, reserved, other jobs
  kPrivate,    // RFC 1918, CGNAT, ULA: refused unless the policy opens them
  kNotAllowed  // a public address the allow-list does not name
};

// How the policy treats `address` (numeric) on `port`. Allow-list CIDRs may
// open private and public ranges, never kNever ones.
Destination classify_destination(const EgressPolicy& policy, std::string_view address,
                                 uint16_t port);
// "private range 10.0.0.0/8", "link-local 169.254.0.0/16", ... for messages.
std::string describe_destination(std::string_view address);

namespace detail {

struct FabricPlan {
  std::string table, bridge, subnet4, subnet6;
  EgressPolicy policy;
};

// `table inet <table> { ... }` for one bridge.
std::string fabric_ruleset(const FabricPlan& plan);
// The job namespace's table: loopback and multicast untracked, every other
// connection tracked so that the connection log sees it.
std::string job_ruleset();
// While lockstep turned forwarding on: drop forwarded packets that are not a
// lockstep bridge's (the host forwarded nothing before).
std::string guard_ruleset();
inline constexpr const char* kGuardTable = "lockstep_guard";

// Runs nft commands through libnftables in the calling thread's namespace.
Status nft_run(const std::string& commands, const std::string& what);
// Names of the inet tables in the calling thread's namespace.
Result<std::vector<std::string>> nft_tables();

}  // namespace detail
}  // namespace lockstep::executor
