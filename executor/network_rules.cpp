#include "executor/network_rules.hpp"

#include <nftables/libnftables.h>

#include <memory>

#include "executor/netlink.hpp"
#include "executor/network_internal.hpp"

namespace lockstep::executor {
namespace {

struct Range {
  const char* cidr;
  const char* what;
};

// Never reachable from a job, whatever the allow-list says. The pools hold
// every job of every lockstep process on this host.
constexpr Range kNever[] = {
    {"0.0.0.0/8", "the unspecified network"},
    {"127.0.0.0/8", "loopback"},
    {"169.254.0.0/16", "link-local"},
    {"224.0.0.0/3", "multicast or reserved"},
    {detail::kPool4, "lockstep's job network"},
    {"::/127", "the unspecified or loopback address"},
    {"::ffff:0:0/96", "IPv4-mapped"},
    {"fe80::/10", "link-local"},
    {"ff00::/8", "multicast"},
    {detail::kPool6, "lockstep's job network"},
};

// Refused unless the allow-list names them.
constexpr Range kPrivate[] = {
    {"10.0.0.0/8", "private range"},     {"172.16.0.0/12", "private range"},
    {"192.168.0.0/16", "private range"}, {"100.64.0.0/10", "shared address space"},
    {"fc00::/7", "unique local range"},
};

const Range* find(const Range* begin, const Range* end, const detail::IpPrefix& a) {
  for (const Range* r = begin; r != end; ++r)
    if (detail::IpPrefix::parse(r->cidr)->contains(a)) return r;
  return nullptr;
}

std::string set_of(int family, const Range* begin, const Range* end) {
  std::string out;
  for (const Range* r = begin; r != end; ++r) {
    auto p = detail::IpPrefix::parse(r->cidr);
    if (p->family != family) continue;
    out += (out.empty() ? "" : ", ") + std::string(r->cidr);
  }
  return "{ " + out + " }";
}

}  // namespace

Destination classify_destination(const EgressPolicy& policy, std::string_view address,
                                 uint16_t port) {
  auto a = detail::IpPrefix::parse(std::string(address));
  if (!a) return Destination::kNever;
  if (find(std::begin(kNever), std::end(kNever), *a)) return Destination::kNever;
  for (const auto& c : policy.cidrs) {
    auto p = detail::IpPrefix::parse(c.cidr);
    if (p && p->contains(*a) && (c.port == 0 || c.port == port)) return Destination::kAllowed;
  }
  if (find(std::begin(kPrivate), std::end(kPrivate), *a)) return Destination::kPrivate;
  return policy.any_public ? Destination::kAllowed : Destination::kNotAllowed;
}

std::string describe_destination(std::string_view address) {
  auto a = detail::IpPrefix::parse(std::string(address));
  if (!a) return "not an address";
  if (const Range* r = find(std::begin(kNever), std::end(kNever), *a))
    return std::string(r->what) + " " + r->cidr;
  if (const Range* r = find(std::begin(kPrivate), std::end(kPrivate), *a))
    return std::string(r->what) + " " + r->cidr;
  return "public address";
}

namespace detail {

std::string fabric_ruleset(const FabricPlan& p) {
  const std::string br = "\"" + p.bridge + "\"";
  std::string allow;
  for (const auto& c : p.policy.cidrs) {
    auto a = IpPrefix::parse(c.cidr);
    if (!a) continue;
    std::string match = std::string(a->family == AF_INET ? "ip" : "ip6") + " daddr " + a->str();
    if (c.port != 0) match += " meta l4proto { tcp, udp } th dport " + std::to_string(c.port);
    allow += "    " + match + " accept\n";
  }
  std::string t;
  t += "table inet " + p.table + " {\n";
  t += "  set dyn4 { type ipv4_addr . inet_service; flags timeout; }\n";
  t += "  set dyn4any { type ipv4_addr; flags timeout; }\n";
  t += "  set dyn6 { type ipv6_addr . inet_service; flags timeout; }\n";
  t += "  set dyn6any { type ipv6_addr; flags timeout; }\n";
  // Nothing on the host answers a job: its DNS stub and proxy listen inside
  // the job's own namespace.
  t += "  chain input {\n    type filter hook input priority filter; policy accept;\n";
  t += "    iifname " + br + " ct state established,related accept\n";
  // Neighbour discovery: what IPv4 does with ARP, below nftables' inet.
  t += "    iifname " + br + " icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept\n";
  t += "    iifname " + br + " goto deny\n  }\n";
  t += "  chain forward {\n    type filter hook forward priority filter; policy accept;\n";
  t += "    iifname " + br + " goto egress\n";
  t += "    oifname " + br + " ct state established,related accept\n";
  t += "    oifname " + br + " drop\n  }\n";
  t += "  chain egress {\n";
  t += "    ct state established,related accept\n";
  t += "    ip daddr " + set_of(AF_INET, std::begin(kNever), std::end(kNever)) + " goto deny\n";
  t += "    ip6 daddr " + set_of(AF_INET6, std::begin(kNever), std::end(kNever)) + " goto deny\n";
  t += allow;
  t += "    ip daddr @dyn4any accept\n";
  t += "    meta l4proto { tcp, udp } ip daddr . th dport @dyn4 accept\n";
  t += "    ip6 daddr @dyn6any accept\n";
  t += "    meta l4proto { tcp, udp } ip6 daddr . th dport @dyn6 accept\n";
  if (p.policy.any_public) {
    t += "    ip daddr " + set_of(AF_INET, std::begin(kPrivate), std::end(kPrivate)) +
         " goto deny\n";
    t += "    ip6 daddr " + set_of(AF_INET6, std::begin(kPrivate), std::end(kPrivate)) +
         " goto deny\n";
    t += "    accept\n";
  }
  t += "    goto deny\n  }\n";
  t += "  chain deny {\n    meta l4proto tcp reject with tcp reset\n";
  t += "    reject with icmpx admin-prohibited\n  }\n";
  t += "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n";
  t += "    ip saddr " + p.subnet4 + " oifname != " + br + " masquerade\n";
  if (!p.subnet6.empty()) t += "    ip6 saddr " + p.subnet6 + " oifname != " + br + " masquerade\n";
  t += "  }\n}\n";
  return t;
}

std::string job_ruleset() {
  return "table inet lockstep {\n"
         "  chain raw {\n    type filter hook output priority raw; policy accept;\n"
         "    oifname \"lo\" notrack\n"
         // Link-local multicast (MLD, mDNS) never leaves the link: not a
         // connection of the job's.
         "    ip6 daddr ff00::/8 notrack\n"
         "    ip daddr { 224.0.0.0/4, 255.255.255.255 } notrack\n  }\n"
         "  chain track {\n    type filter hook output priority filter; policy accept;\n"
         "    ct state new accept\n  }\n"
         "}\n";
}

std::string guard_ruleset() {
  return std::string("table inet ") + kGuardTable +
         " {\n"
         "  chain forward {\n    type filter hook forward priority filter + 10; policy accept;\n"
         "    iifname != \"lsb-*\" oifname != \"lsb-*\" drop\n  }\n"
         "}\n";
}

Status nft_run(const std::string& commands, const std::string& what) {
  std::unique_ptr<nft_ctx, decltype(&nft_ctx_free)> ctx(nft_ctx_new(NFT_CTX_DEFAULT), nft_ctx_free);
  if (!ctx) return fail(what + ": cannot create an nftables context");
  nft_ctx_buffer_output(ctx.get());
  nft_ctx_buffer_error(ctx.get());
  if (nft_run_cmd_from_buffer(ctx.get(), commands.c_str()) != 0) {
    std::string err = nft_ctx_get_error_buffer(ctx.get());
    auto nl = err.find('\n');
    return fail(what + ": " + err.substr(0, nl));
  }
  return {};
}

Result<std::vector<std::string>> nft_tables() {
  std::unique_ptr<nft_ctx, decltype(&nft_ctx_free)> ctx(nft_ctx_new(NFT_CTX_DEFAULT), nft_ctx_free);
  if (!ctx) return fail("list nftables tables: cannot create an nftables context");
  nft_ctx_buffer_output(ctx.get());
  nft_ctx_buffer_error(ctx.get());
  if (nft_run_cmd_from_buffer(ctx.get(), "list tables inet") != 0)
    return fail(std::string("list nftables tables: ") + nft_ctx_get_error_buffer(ctx.get()));
  std::string out = nft_ctx_get_output_buffer(ctx.get());
  std::vector<std::string> names;
  size_t pos = 0;
  while ((pos = out.find("table inet ", pos)) != std::string::npos) {
    pos += 11;
    size_t end = out.find_first_of(" \n", pos);
    names.push_back(out.substr(pos, end - pos));
  }
  return names;
}

}  // namespace detail
}  // namespace lockstep::executor
