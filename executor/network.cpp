// The egress fabric (one bridge and table per lockstep process) and the job
// namespaces attached to it.
#include "executor/network.hpp"

#include <fcntl.h>
#include <linux/netlink.h>
#include <net/if.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <random>
#include <set>
#include <thread>

#include "common/fs.hpp"
#include "executor/netlink.hpp"
#include "executor/network_internal.hpp"
#include "executor/network_rules.hpp"
#include "executor/state.hpp"

namespace lockstep::executor {
namespace detail {
namespace fs = std::filesystem;
namespace {

// What the fabric and its namespaces share: a namespace may outlive the
// fabric object by a moment (a container holding the last reference), so
// both hold this.
struct Core {
  std::mutex mu;
  Netlink host;  // in the host's namespace
  std::string key, bridge, table, subnet4, subnet6;
  int index = 0;
  int bridge_index = 0;
  int mtu = 1500;
  bool uplink = false;
  bool ipv6 = false;
  unsigned next_veth = 0;
  std::set<int> free_hosts;  // host parts .2 .. .254 not in use
  explicit Core(Netlink nl) : host(std::move(nl)) {}
};

constexpr int kJobEthIndex = 2;

std::string prefix_base(const std::string& subnet) {
  return subnet.substr(0, subnet.find('/'));
}

// "10.213.7.0/24" + 5 -> "10.213.7.5/24"; "fd6c:...:7::/64" + 5 -> "...:7::5/64".
std::string host_address(const std::string& subnet, int host, bool v6) {
  std::string base = prefix_base(subnet);
  if (v6) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%x", host);
    return base + buf + "/64";
  }
  return base.substr(0, base.rfind('.') + 1) + std::to_string(host) + "/24";
}

class LinuxNamespace final : public NetworkNamespace {
 public:
  LinuxNamespace(std::shared_ptr<Core> core, UniqueFd fd, std::string veth, int host,
                 std::string a4, std::string a6)
      : core_(std::move(core)),
        fd_(std::move(fd)),
        veth_(std::move(veth)),
        host_(host),
        a4_(std::move(a4)),
        a6_(std::move(a6)) {}
  ~LinuxNamespace() override {
    std::lock_guard lk(core_->mu);
    (void)core_->host.delete_link(veth_);
    core_->free_hosts.insert(host_);
  }
  int fd() const override { return fd_.get(); }
  const std::string& address4() const override { return a4_; }
  const std::string& address6() const override { return a6_; }
  Result<UniqueFd> socket(int domain, int type, int protocol) const override {
    UniqueFd s;
    LS_TRY(in_namespace(fd_.get(), [&]() -> Status {
      s = UniqueFd(::socket(domain, type | SOCK_CLOEXEC, protocol));
      if (!s) return fail_errno("create a socket in the job's network namespace");
      return {};
    }));
    return s;
  }
  Result<std::vector<UniqueFd>> sockets(const std::vector<SocketSpec>& specs) const override {
    std::vector<UniqueFd> out;
    LS_TRY(in_namespace(fd_.get(), [&]() -> Status {
      for (const auto& sp : specs) {
        UniqueFd s(::socket(sp.domain, sp.type | SOCK_CLOEXEC, sp.protocol));
        if (!s) return fail_errno("create a socket in the job's network namespace");
        out.push_back(std::move(s));
      }
      return {};
    }));
    return out;
  }

 private:
  std::shared_ptr<Core> core_;
  UniqueFd fd_;
  std::string veth_;
  int host_;
  std::string a4_, a6_;
};

// Inside a fresh namespace: loopback up, DAD and router solicitations off
// (the addresses are ours), connection tracking with byte counts and
// timestamps for the connection log, closed connections reported soon.
Status setup_inside(bool ipv6, UniqueFd& netlink_out) {
  if (ipv6) {
    LS_TRY(write_sysctl("net/ipv6/conf/default/accept_dad", "0"));
    LS_TRY(write_sysctl("net/ipv6/conf/default/accept_ra", "0"));
  }
  for (const auto& [key, value] : std::initializer_list<std::pair<const char*, const char*>>{
           {"net/netfilter/nf_conntrack_acct", "1"},
           {"net/netfilter/nf_conntrack_timestamp", "1"},
           {"net/netfilter/nf_conntrack_tcp_timeout_time_wait", "1"},
           {"net/netfilter/nf_conntrack_tcp_timeout_close", "1"},
           {"net/netfilter/nf_conntrack_tcp_timeout_fin_wait", "2"},
           {"net/netfilter/nf_conntrack_tcp_timeout_last_ack", "2"}})
    LS_TRY(write_sysctl(key, value));
  LS_TRY(nft_run(job_ruleset(), "track the job's connections"));
  LS_TRY_ASSIGN(auto nl, Netlink::open());
  LS_TRY(nl.set_up(1));  // loopback is always the first interface of a namespace
  UniqueFd s(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!s) return fail_errno("open a netlink socket");
  netlink_out = std::move(s);
  return {};
}

class LinuxFabric final : public EgressFabric {
 public:
  LinuxFabric(std::shared_ptr<Core> core, fs::path dir)
      : core_(std::move(core)), dir_(std::move(dir)) {}
  ~LinuxFabric() override {
    {
      std::lock_guard lk(pool_mu_);
      stop_ = true;
    }
    pool_cv_.notify_all();
    if (refill_.joinable()) refill_.join();
    pool_.clear();
    // Kept for the keeper's next job: the bridge and the table stay; closing
    // the use file lets the next job's process take them over.
    if (keeper_ > 0 && process_alive(keeper_, keeper_start_)) return;
    auto lock = LockFile::acquire(dir_ / ".lock");
    {
      std::lock_guard lk(core_->mu);
      (void)remove_fabric_objects(core_->key);
    }
    ::unlink((dir_ / (core_->key + ".json")).c_str());
    if (use_) ::unlink(fabric_use_file(dir_, core_->key).c_str());
    (void)reap_and_list(dir_);
  }

  // This process uses a fabric it keeps for `keeper` (the lock on its use
  // file held in `use`).
  void keep_for(pid_t keeper, uint64_t keeper_start, UniqueFd use) {
    keeper_ = keeper;
    keeper_start_ = keeper_start;
    use_ = std::move(use);
  }

  // Namespaces are made ahead, on a thread of their own, so that a job's
  // start does not wait for one: kPool ready, refilled as they are taken.
  // Only from the second request on: a run of one job (an agent's) would
  // make two namespaces it never uses and wait for their removal at its end.
  Result<std::shared_ptr<NetworkNamespace>> create_namespace(const std::string& name) override {
    {
      std::lock_guard lk(pool_mu_);
      if (!refill_.joinable() && !stop_ && ++requests_ >= 2)
        refill_ = std::thread([this] { refill(); });
      if (!pool_.empty()) {
        auto ns = std::move(pool_.front());
        pool_.pop_front();
        pool_cv_.notify_all();
        return std::shared_ptr<NetworkNamespace>(std::move(ns));
      }
    }
    return make_namespace(name);
  }

  Result<std::shared_ptr<NetworkNamespace>> make_namespace(const std::string& name) {
    auto what = [&](Error e) { return fail(std::move(e).context("network for " + name)); };
    std::string veth;
    int host;
    {
      std::lock_guard lk(core_->mu);
      if (core_->free_hosts.empty())
        return fail("network for " + name + ": every address of " + core_->subnet4 + " is in use");
      host = *core_->free_hosts.begin();
      core_->free_hosts.erase(core_->free_hosts.begin());
      char suffix[8];
      std::snprintf(suffix, sizeof suffix, "%04x", core_->next_veth++ & 0xffff);
      veth = veth_prefix(core_->key) + suffix;
    }
    std::string a4 = host_address(core_->subnet4, host, false);
    std::string a6 = core_->ipv6 ? host_address(core_->subnet6, host, true) : "";
    UniqueFd nsfd, inner;
    // Until the namespace object exists, this gives the veth and the address back.
    struct Guard {
      Core& core;
      const std::string& veth;
      int host;
      bool armed = true;
      ~Guard() {
        if (!armed) return;
        std::lock_guard lk(core.mu);
        (void)core.host.delete_link(veth);
        core.free_hosts.insert(host);
      }
    } guard{*core_, veth, host};
    if (auto s = in_namespace(
            -1, [&] { return setup_inside(core_->ipv6, inner); }, &nsfd);
        !s)
      return what(s.error());
    auto attach = [&]() -> Status {
      std::lock_guard lk(core_->mu);
      auto& h = core_->host;
      LS_TRY(h.create_veth(veth, "eth0", nsfd.get(), core_->mtu, kJobEthIndex));
      int idx = static_cast<int>(::if_nametoindex(veth.c_str()));
      if (idx == 0) return fail_errno("find interface " + veth);
      LS_TRY(h.set_master(idx, core_->bridge_index));
      LS_TRY(h.set_isolated(idx));
      return h.set_up(idx);
    };
    // Addresses without a subnet: every destination, the other jobs on this
    // bridge included, is reached through the gateway and so through the
    // host's rules (the bridge ports are isolated besides).
    auto configure = [&]() -> Status {
      Netlink in(std::move(inner));
      // The namespace is new: loopback is 1, the veth's end is 2 (as
      // create_veth asks for).
      const int eth = kJobEthIndex;
      auto single = [](const std::string& a, int bits) {
        auto p = *IpPrefix::parse(a.substr(0, a.find('/')));
        p.prefix = bits;
        return p;
      };
      LS_TRY(in.add_address(eth, single(a4, 32), false));
      LS_TRY(in.set_up(eth));
      auto gw4 = single(host_address(core_->subnet4, 1, false), 32);
      LS_TRY(in.add_link_route(eth, gw4));
      LS_TRY(in.add_default_route(AF_INET, gw4));
      if (!core_->ipv6) return {};
      LS_TRY(in.add_address(eth, single(a6, 128), true));
      auto gw6 = single(host_address(core_->subnet6, 1, true), 128);
      LS_TRY(in.add_link_route(eth, gw6));
      return in.add_default_route(AF_INET6, gw6);
    };
    if (auto s = attach(); !s) return what(s.error());
    if (auto s = configure(); !s) return what(s.error());
    guard.armed = false;
    return std::shared_ptr<NetworkNamespace>(
        std::make_shared<LinuxNamespace>(core_, std::move(nsfd), veth, host,
                                         a4.substr(0, a4.find('/')), a6.substr(0, a6.find('/'))));
  }

  Status allow_address(const std::string& address, uint16_t port,
                       std::chrono::seconds ttl) override {
    auto a = IpPrefix::parse(address);
    if (!a || a->prefix != (a->family == AF_INET ? 32 : 128))
      return fail("allow '" + address + "': not an address");
    bool v4 = a->family == AF_INET;
    if (!v4 && !core_->ipv6) return {};
    std::string set = v4 ? (port ? "dyn4" : "dyn4any") : (port ? "dyn6" : "dyn6any");
    std::string elem = a->address() + (port ? " . " + std::to_string(port) : "");
    long secs = std::max<long>(ttl.count(), 1);
    std::string cmd = "add element inet " + core_->table + " " + set + " { " + elem + " timeout " +
                      std::to_string(secs) + "s }";
    return nft_run(cmd, "allow " + address);
  }

  bool has_ipv6() const override { return core_->ipv6; }
  const std::string& bridge() const override { return core_->bridge; }
  const std::string& table() const override { return core_->table; }
  const std::string& subnet4() const override { return core_->subnet4; }
  const std::string& subnet6() const override { return core_->subnet6; }
  int mtu() const override { return core_->mtu; }
  bool has_uplink() const override { return core_->uplink; }

 private:
  static constexpr size_t kPool = 2;
  void refill() {
    std::unique_lock lk(pool_mu_);
    for (;;) {
      pool_cv_.wait(lk, [&] { return stop_ || pool_.size() < kPool; });
      if (stop_) return;
      lk.unlock();
      auto ns = make_namespace("a job");
      lk.lock();
      // A failure is left to the job that makes its own and reports it.
      if (!ns) return;
      pool_.push_back(std::move(*ns));
    }
  }

  std::shared_ptr<Core> core_;
  fs::path dir_;
  std::mutex pool_mu_;
  std::condition_variable pool_cv_;
  std::deque<std::shared_ptr<NetworkNamespace>> pool_;
  bool stop_ = false;
  size_t requests_ = 0;
  std::thread refill_;
  pid_t keeper_ = 0;
  uint64_t keeper_start_ = 0;
  UniqueFd use_;
};

// Which jobs may take a kept fabric over: those whose policy and host facts
// would have made the same one.
std::string kept_policy_key(const EgressPolicy& policy, bool ipv6, int mtu) {
  std::string k = std::string(policy.any_public ? "public" : "listed") + (ipv6 ? " ipv6" : "") +
                  " mtu " + std::to_string(mtu);
  std::vector<std::string> cidrs;
  for (const auto& c : policy.cidrs) cidrs.push_back(c.cidr + ":" + std::to_string(c.port));
  std::sort(cidrs.begin(), cidrs.end());
  for (const auto& c : cidrs) k += " " + c;
  return k;
}

// The use file of a fabric, locked; an empty fd when another process holds it.
UniqueFd lock_use_file(const fs::path& dir, const std::string& key) {
  UniqueFd use(::open(fabric_use_file(dir, key).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!use || ::flock(use.get(), LOCK_EX | LOCK_NB) != 0) return UniqueFd();
  return use;
}

std::string random_key() {
  std::random_device rd;
  char buf[8];
  std::snprintf(buf, sizeof buf, "%06x", rd() & 0xffffff);
  return buf;
}

}  // namespace
}  // namespace detail

Result<std::unique_ptr<EgressFabric>> EgressFabric::create(const EgressPolicy& policy,
                                                           pid_t keeper) {
  using namespace detail;
  for (const auto& c : policy.cidrs)
    if (!IpPrefix::parse(c.cidr))
      return fail("egress allow-list: '" + c.cidr + "' is not an address or CIDR",
                  ErrorKind::kUsage);
  LS_TRY_ASSIGN(fs::path dir, host_state_dir());
  LS_TRY_ASSIGN(auto lock, LockFile::acquire(dir / ".lock"));
  LS_TRY_ASSIGN(auto live, reap_and_list(dir));
  LS_TRY_ASSIGN(auto nl, Netlink::open());
  auto core = std::make_shared<Core>(std::move(nl));
  Netlink& h = core->host;

  // The uplink: the interface of the default route. Without one (an offline
  // laptop, a VM without a network) jobs still get their isolated network,
  // their services and the DNS stub; only the outside is unreachable.
  LS_TRY_ASSIGN(auto routes4, h.routes(AF_INET));
  int uplink = 0;
  for (const auto& r : routes4)
    if (r.dst.prefix == 0) uplink = r.oif;
  core->uplink = uplink != 0;
  LS_TRY_ASSIGN(auto routes6, h.routes(AF_INET6));
  for (const auto& r : routes6)
    if (r.dst.prefix == 0) core->ipv6 = true;
  LS_TRY_ASSIGN(auto links, h.links());
  for (const auto& l : links)
    if (l.index == uplink && l.mtu > 0) core->mtu = l.mtu;

  // A fabric the keeper kept for this policy, which no process uses now.
  uint64_t keeper_start = keeper > 0 ? process_start_time(keeper).value_or(0) : 0;
  if (keeper_start == 0) keeper = 0;
  std::string policy_key = keeper > 0 ? kept_policy_key(policy, core->ipv6, core->mtu) : "";
  for (const auto& f : live) {
    if (keeper == 0) break;
    if (f.keeper_pid != keeper || f.keeper_start != keeper_start || f.policy != policy_key)
      continue;
    UniqueFd use = lock_use_file(dir, f.key);
    if (!use) continue;
    auto br = h.link_index(bridge_name(f.key));
    if (!br) continue;  // broken: left to release_kept_networks() or a reaper
    // Interfaces of an earlier job of the keeper's whose process was killed.
    for (const auto& l : links)
      if (l.name.rfind(veth_prefix(f.key), 0) == 0) (void)h.delete_link(l.name);
    FabricState st = f;
    st.owner_pid = ::getpid();
    st.owner_start = process_start_time(st.owner_pid).value_or(0);
    LS_TRY(rewrite_fabric_state(dir / (f.key + ".json"), st));
    core->index = f.index;
    core->subnet4 = subnet4_of(f.index);
    if (core->ipv6) core->subnet6 = subnet6_of(f.index);
    for (int i = 2; i < 255; ++i) core->free_hosts.insert(i);
    core->key = f.key;
    core->bridge = bridge_name(f.key);
    core->table = table_name(f.key);
    core->bridge_index = *br;
    auto fabric = std::make_unique<LinuxFabric>(core, dir);
    fabric->keep_for(keeper, keeper_start, std::move(use));
    return std::unique_ptr<EgressFabric>(std::move(fabric));
  }

  // A subnet no live fabric uses and no route or address of the host overlaps.
  std::set<int> used;
  for (const auto& f : live) used.insert(f.index);
  std::vector<IpPrefix> host_nets;
  for (const auto& r : routes4)
    if (r.dst.prefix > 0) host_nets.push_back(r.dst);
  LS_TRY_ASSIGN(auto addrs, h.addresses(AF_INET));
  host_nets.insert(host_nets.end(), addrs.begin(), addrs.end());
  int index = -1;
  for (int i = 0; i < kSubnets && index < 0; ++i) {
    if (used.count(i)) continue;
    auto net = IpPrefix::parse(subnet4_of(i));
    bool clash = false;
    for (const auto& n : host_nets) clash = clash || n.overlaps(*net);
    if (!clash) index = i;
  }
  if (index < 0)
    return fail("network egress: no free subnet in " + std::string(kPool4) +
                    " (every /24 is used or overlaps a route of this host)",
                ErrorKind::kUnavailable);
  core->index = index;
  core->subnet4 = subnet4_of(index);
  if (core->ipv6) core->subnet6 = subnet6_of(index);
  for (int i = 2; i < 255; ++i) core->free_hosts.insert(i);

  FabricState st;
  st.owner_pid = ::getpid();
  st.owner_start = process_start_time(st.owner_pid).value_or(0);
  st.index = index;
  st.keeper_pid = keeper;
  st.keeper_start = keeper_start;
  st.policy = policy_key;
  for (int attempt = 0;; ++attempt) {
    st.key = random_key();
    auto w = write_fabric_state(dir / (st.key + ".json"), st);
    if (w) break;
    if (w.error().errnum() != EEXIST || attempt > 10) return fail(w.error());
  }
  core->key = st.key;
  core->bridge = bridge_name(st.key);
  core->table = table_name(st.key);
  // From here the fabric's destructor removes whatever exists.
  auto fabric = std::make_unique<LinuxFabric>(core, dir);
  UniqueFd use_for_keep;
  if (keeper > 0) {
    // Kept only once it is complete: the keep starts after setup below.
    UniqueFd use = lock_use_file(dir, st.key);
    if (!use) return fail("network egress: lock " + fabric_use_file(dir, st.key).string());
    use_for_keep = std::move(use);
  }
  auto setup = [&]() -> Status {
    LS_TRY(h.create_bridge(core->bridge, core->mtu));
    LS_TRY_ASSIGN(int br, h.link_index(core->bridge));
    core->bridge_index = br;
    LS_TRY(h.add_address(br, *IpPrefix::parse(host_address(core->subnet4, 1, false)), false));
    if (core->ipv6)
      LS_TRY(h.add_address(br, *IpPrefix::parse(host_address(core->subnet6, 1, true)), true));
    LS_TRY(h.set_up(br));
    FabricPlan plan{core->table, core->bridge, core->subnet4, core->subnet6, policy};
    LS_TRY(nft_run(fabric_ruleset(plan), "add the egress rules"));
    return enable_forwarding(dir, core->ipv6);
  };
  if (auto s = setup(); !s) {
    lock = LockFile();  // the destructor takes it again
    return fail(std::move(s.error()).context("network egress"));
  }
  if (keeper > 0) fabric->keep_for(keeper, keeper_start, std::move(use_for_keep));
  return std::unique_ptr<EgressFabric>(std::move(fabric));
}

}  // namespace lockstep::executor
