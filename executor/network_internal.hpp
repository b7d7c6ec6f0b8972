#pragma once
// Internals of the egress network shared by network.cpp (fabric and job
// namespaces), network_host.cpp (host state, forwarding, reaping) and
// network_rules.cpp. Not included outside executor/.
#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <string>

#include "common/error.hpp"
#include "common/lock_file.hpp"

namespace lockstep::executor::detail {

// Every job subnet is a /24 of kPool4 (and a /64 of kPool6 when the host has
// IPv6); index N is 10.213.N.0/24 and fd6c:6f63:6b00:N::/64.
inline constexpr const char* kPool4 = "10.213.0.0/16";
inline constexpr const char* kPool6 = "fd6c:6f63:6b00::/48";
inline constexpr int kSubnets = 256;
std::string subnet4_of(int index);
std::string subnet6_of(int index);

// Names: bridge "lsb-<key>", host veth ends "lsv<key><4 hex>", table
// "lockstep_<key>"; key is 6 hex digits.
std::string bridge_name(const std::string& key);
std::string veth_prefix(const std::string& key);
std::string table_name(const std::string& key);

// /run/lockstep/net/ns-<inode>/ for the calling thread's network namespace.
Result<std::filesystem::path> host_state_dir();

struct FabricState {
  std::string key;
  pid_t owner_pid = 0;
  uint64_t owner_start = 0;
  int index = 0;
  // A fabric kept between the jobs of a keeper (EgressFabric::create): live
  // while the owner or the keeper is; `policy` says which jobs may take it.
  pid_t keeper_pid = 0;
  uint64_t keeper_start = 0;
  std::string policy;
};
// Replaces the state file (a new owner took a kept fabric over).
Status rewrite_fabric_state(const std::filesystem::path& file, const FabricState& s);
// "<key>.use": locked (flock) by the process using a kept fabric.
std::filesystem::path fabric_use_file(const std::filesystem::path& dir, const std::string& key);
Status write_fabric_state(const std::filesystem::path& file, const FabricState& s);
Result<FabricState> read_fabric_state(const std::filesystem::path& file);

// Under the lock of `dir`: the fabrics whose owner is alive (after reaping
// the dead ones).
Result<std::vector<FabricState>> reap_and_list(const std::filesystem::path& dir);

// Removes one fabric's interfaces and table; missing ones are fine.
Status remove_fabric_objects(const std::string& key);

// Forwarding for IPv4 (and IPv6 when `ipv6`): turned on when it was off,
// with the guard table and accept_ra=2 on interfaces that learn routes from
// router advertisements; what was changed is written to `dir` so that the
// last fabric (or a reaper) puts it back.
Status enable_forwarding(const std::filesystem::path& dir, bool ipv6);
Status restore_forwarding(const std::filesystem::path& dir);

// Runs `fn` on a fresh thread that joined the namespace `netns_fd` (or made
// a new one when `netns_fd` is -1 and `created` is set: its fd lands there).
Status in_namespace(int netns_fd, const std::function<Status()>& fn, UniqueFd* created = nullptr);

Status write_sysctl(const std::string& path, const std::string& value);
Result<std::string> read_sysctl(const std::string& path);

}  // namespace lockstep::executor::detail
