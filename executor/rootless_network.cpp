// The egress network without root (docs/rootless.md, "Networks").
//
// An ordinary user can neither create interfaces on the host nor enter the
// network namespaces of its jobs (they belong to the run's user namespace,
// where the runner has no capability), so one helper process per run does
// that work. Forked into the user namespace as its root, it makes a network
// namespace of its own, the router, whose default route is slirp4netns's
// tap0 (a userspace TCP/IP stack that makes each connection from the host's
// network, as the user), and runs in it the very fabric root runs on the
// host (EgressFabric::create: a bridge, a namespace and veth per job, the
// same nftables rules), so a job sees what a root job sees and a refused
// connection is answered and recorded the same way. The runner asks the
// helper over a socketpair for namespaces, for sockets inside them, for
// netlink requests only a process of the user namespace may make, and to
// open addresses the DNS stub resolved for the allow-list; descriptors come
// back with SCM_RIGHTS.
//
// Lifetimes: the helper ends when the runner's end of the socketpair closes
// (also when the runner is killed), slirp4netns when its --exit-fd does; the
// namespaces go with the last process and descriptor in them. Nothing is
// written outside: the fabric's state is on a tmpfs of the helper's own
// mount namespace.
#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <sstream>

#include "common/fd.hpp"
#include "common/json.hpp"
#include "common/userns.hpp"
#include "executor/child_util.hpp"
#include "executor/netlink.hpp"
#include "executor/network_internal.hpp"
#include "executor/network_rules.hpp"
#include "executor/rootless.hpp"

namespace lockstep::executor {
namespace {

constexpr const char* kTunDevice = "/dev/net/tun";
// tap0's MTU, and so the jobs' (the fabric gives its bridge and veths its
// uplink's): slirp4netns handles every packet in userspace, so fewer, larger
// ones carry a job's own connections about 4x faster than at 1500 (what
// rootless podman chooses too). Beyond slirp4netns the host's MTU applies.
constexpr int kRootlessMtu = 65520;
// slirp4netns's IPv6 network (its defaults): the router's address and the
// gateway slirp4netns answers as.
constexpr const char* kSlirpAddress6 = "fd00::100/64";
constexpr const char* kSlirpGateway6 = "fd00::2";
constexpr size_t kMaxMessage = 1 << 16;
constexpr int kMaxFds = 8;

// ---- messages: one JSON text per datagram, descriptors alongside ----

Status send_msg(int sock, const Json& msg, const std::vector<int>& fds = {}) {
  std::string text = msg.dump();
  iovec iov{text.data(), text.size()};
  msghdr h{};
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)] = {};
  if (!fds.empty()) {
    h.msg_control = control;
    h.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&h);
    if (!c) return fail("no room for descriptors");
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  while (::sendmsg(sock, &h, MSG_NOSIGNAL) < 0)
    if (errno != EINTR) return fail_errno("send to the rootless network helper");
  return {};
}

struct Message {
  Json body;
  std::vector<UniqueFd> fds;
};

// An empty body (null) at end of file.
Result<Message> recv_msg(int sock) {
  std::string buf(kMaxMessage, '\0');
  iovec iov{buf.data(), buf.size()};
  msghdr h{};
  h.msg_iov = &iov;
  h.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
  h.msg_control = control;
  h.msg_controllen = sizeof control;
  ssize_t n;
  while ((n = ::recvmsg(sock, &h, MSG_CMSG_CLOEXEC)) < 0)
    if (errno != EINTR) return fail_errno("receive from the rootless network helper");
  Message m;
  for (cmsghdr* c = CMSG_FIRSTHDR(&h); c; c = CMSG_NXTHDR(&h, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      m.fds.emplace_back(fd);
    }
  }
  if (n == 0) return m;
  if (h.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
    return fail("the rootless network helper's message was truncated");
  LS_TRY_ASSIGN(m.body, parse_json(std::string_view(buf.data(), static_cast<size_t>(n)),
                                   "a message of the rootless network helper"));
  return m;
}

// ---- the helper (inside the user namespace, in the router namespace) ----

struct Helper {
  std::unique_ptr<EgressFabric> fabric;
  std::map<uint64_t, std::shared_ptr<NetworkNamespace>> spaces;
  uint64_t next = 1;

  Result<NetworkNamespace*> space(const Json& req) {
    auto it = spaces.find(req.at("id").get<uint64_t>());
    if (it == spaces.end()) return fail("no such job namespace");
    return it->second.get();
  }

  // slirp4netns --enable-ipv6 announces its prefix by router advertisement
  // only, which the router (forwarding) ignores: its address and default
  // route are set here, as --configure sets IPv4's, before the fabric looks
  // for an IPv6 default route.
  static Status configure_slirp_ipv6() {
    LS_TRY(detail::write_sysctl("net/ipv6/conf/tap0/accept_ra", "0"));
    LS_TRY_ASSIGN(auto nl, detail::Netlink::open());
    LS_TRY_ASSIGN(int tap, nl.link_index("tap0"));
    LS_TRY(nl.add_address(tap, *detail::IpPrefix::parse(kSlirpAddress6), true));
    LS_TRY_ASSIGN(auto routes, nl.routes(AF_INET6));
    for (const auto& r : routes)
      if (r.dst.prefix == 0) return {};
    return nl.add_default_route(AF_INET6, *detail::IpPrefix::parse(kSlirpGateway6));
  }

  // The fabric as root has it, plus the host's own addresses: slirp4netns
  // connects from the host, so they are refused here as the host's rules
  // refuse them to root's jobs.
  Status make_fabric(const Json& req) {
    if (req.value("ipv6", false)) LS_TRY(configure_slirp_ipv6());
    EgressPolicy policy;
    policy.any_public = req.at("any_public").get<bool>();
    for (const auto& c : req.at("cidrs"))
      policy.cidrs.push_back({c.at(0).get<std::string>(), c.at(1).get<uint16_t>()});
    LS_TRY_ASSIGN(fabric, EgressFabric::create(policy));
    std::string v4, v6;
    for (const auto& a : req.at("deny")) {
      auto p = detail::IpPrefix::parse(a.get<std::string>());
      if (!p) continue;
      std::string& set = p->family == AF_INET ? v4 : v6;
      set += (set.empty() ? "" : ", ") + p->address();
    }
    std::string rules;
    const std::string& t = fabric->table();
    if (!v4.empty())
      rules += "insert rule inet " + t + " egress ip daddr { " + v4 + " } goto deny\n";
    if (!v6.empty())
      rules += "insert rule inet " + t + " egress ip6 daddr { " + v6 + " } goto deny\n";
    if (!rules.empty()) LS_TRY(detail::nft_run(rules, "refuse the host's addresses"));
    return {};
  }

  Result<Json> handle(const Json& req, std::vector<UniqueFd>& out) {
    const std::string op = req.at("op").get<std::string>();
    if (op == "fabric") {
      LS_TRY(make_fabric(req));
      return Json{{"subnet4", fabric->subnet4()}, {"subnet6", fabric->subnet6()},
                  {"bridge", fabric->bridge()},   {"table", fabric->table()},
                  {"mtu", fabric->mtu()},         {"ipv6", fabric->has_ipv6()}};
    }
    if (!fabric) return fail("no fabric yet");
    if (op == "namespace") {
      LS_TRY_ASSIGN(auto ns, fabric->create_namespace(req.at("name").get<std::string>()));
      // lockstep's DNS stub binds port 53 from the runner, which has no
      // capability here: ports are not privileged in a job's namespace, as
      // in Docker's containers.
      LS_TRY(detail::in_namespace(ns->fd(), [] {
        return detail::write_sysctl("net/ipv4/ip_unprivileged_port_start", "0");
      }));
      UniqueFd fd(::fcntl(ns->fd(), F_DUPFD_CLOEXEC, 0));
      if (!fd) return fail_errno("duplicate a namespace fd");
      out.push_back(std::move(fd));
      uint64_t id = next++;
      Json reply = {{"id", id}, {"address4", ns->address4()}, {"address6", ns->address6()}};
      spaces[id] = std::move(ns);
      return reply;
    }
    if (op == "sockets") {
      LS_TRY_ASSIGN(NetworkNamespace * ns, space(req));
      std::vector<NetworkNamespace::SocketSpec> specs;
      for (const auto& s : req.at("specs"))
        specs.push_back({s.at(0).get<int>(), s.at(1).get<int>(), s.at(2).get<int>()});
      if (specs.size() > kMaxFds) return fail("too many sockets at once");
      LS_TRY_ASSIGN(out, ns->sockets(specs));
      // Only a process with CAP_NET_ADMIN in the namespace's user namespace
      // may listen to connection tracking: such sockets come subscribed.
      for (size_t i = 0; i < specs.size(); ++i) {
        if (specs[i].domain != AF_NETLINK || specs[i].protocol != NETLINK_NETFILTER) continue;
        sockaddr_nl sa{};
        sa.nl_family = AF_NETLINK;
        sa.nl_groups =
            NF_NETLINK_CONNTRACK_NEW | NF_NETLINK_CONNTRACK_UPDATE | NF_NETLINK_CONNTRACK_DESTROY;
        if (::bind(out[i].get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
          return fail_errno("subscribe to connection tracking");
        int size = 4 << 20;
        (void)::setsockopt(out[i].get(), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
      }
      return Json::object();
    }
    if (op == "netlink") {
      LS_TRY_ASSIGN(NetworkNamespace * ns, space(req));
      LS_TRY_ASSIGN(UniqueFd s, ns->socket(AF_NETLINK, SOCK_RAW, req.at("protocol").get<int>()));
      std::string bytes = req.at("request").get<std::string>();
      std::string raw;
      for (size_t i = 0; i + 1 < bytes.size(); i += 2)
        raw.push_back(static_cast<char>(std::stoi(bytes.substr(i, 2), nullptr, 16)));
      sockaddr_nl sa{};
      sa.nl_family = AF_NETLINK;
      if (::sendto(s.get(), raw.data(), raw.size(), 0, reinterpret_cast<sockaddr*>(&sa),
                   sizeof sa) < 0)
        return fail_errno("send a netlink request");
      out.push_back(std::move(s));
      return Json::object();
    }
    if (op == "allow") {
      LS_TRY(fabric->allow_address(req.at("address").get<std::string>(),
                                   req.at("port").get<uint16_t>(),
                                   std::chrono::seconds(req.at("ttl").get<int64_t>())));
      return Json::object();
    }
    if (op == "release") {
      spaces.erase(req.at("id").get<uint64_t>());
      return Json::object();
    }
    return fail("unknown request '" + op + "'");
  }
};

Status enter_router(int userns, bool subordinate) {
  // Raw system calls: glibc's set*id would wait for the runner's other
  // threads, which do not exist in this child.
  if (::setns(userns, CLONE_NEWUSER) != 0) return fail_errno("join the user namespace");
  if (subordinate && ::syscall(SYS_setgroups, 0, nullptr) != 0) return fail_errno("setgroups");
  if (::syscall(SYS_setresgid, 0, 0, 0) != 0 || ::syscall(SYS_setresuid, 0, 0, 0) != 0)
    return fail_errno("become root of the user namespace");
  if (::unshare(CLONE_NEWNET | CLONE_NEWNS) != 0)
    return fail_errno("unshare the network and mount namespaces");
  // The fabric keeps its state under /run/lockstep/net: a tmpfs of this
  // process's own, gone with it.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    return fail_errno("make / private");
  if (::mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=700") != 0)
    return fail_errno("mount a tmpfs on /run");
  LS_TRY_ASSIGN(auto nl, detail::Netlink::open());
  return nl.set_up(1);  // loopback
}

[[noreturn]] void helper_main(int sock, int userns, bool subordinate) noexcept {
  // Named for ps(1); and no process of the user namespace (the jobs'
  // included) may ptrace the root of it.
  ::prctl(PR_SET_NAME, "lockstep-net", 0, 0, 0);
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  // Only the socketpair stays open: the runner's other descriptors (pipes of
  // containers that end when the runner closes them) must not live on here.
  int fds[2] = {sock, userns};
  int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (devnull >= 0)
    for (int i = 0; i < 3; ++i) ::dup2(devnull, i);
  if (detail::keep_only_fds(fds, 2) != 0) ::_exit(126);
  sock = fds[0];
  Status entered = enter_router(fds[1], subordinate);
  ::close(fds[1]);
  if (!entered) {
    (void)send_msg(sock, Json{{"error", entered.error().message()}});
    ::_exit(1);
  }
  UniqueFd own(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!own) {
    (void)send_msg(
        sock, Json{{"error", std::string("open the router's namespace: ") + std::strerror(errno)}});
    ::_exit(1);
  }
  if (!send_msg(sock, Json{{"ok", true}}, {own.get()})) ::_exit(1);
  own.reset();
  Helper h;
  for (;;) {
    auto m = recv_msg(sock);
    if (!m || m->body.is_null()) break;  // the runner is gone
    std::vector<UniqueFd> out;
    Json reply;
    try {
      auto r = h.handle(m->body, out);
      reply = r ? Json{{"ok", true}, {"reply", *r}} : Json{{"error", r.error().message()}};
    } catch (const std::exception& e) {
      reply = Json{{"error", std::string("bad request: ") + e.what()}};
      out.clear();
    }
    std::vector<int> raw;
    for (const auto& f : out) raw.push_back(f.get());
    if (!send_msg(sock, reply, raw)) break;
  }
  // The namespaces and interfaces go with this process; nothing to undo.
  ::_exit(0);
}

// ---- the runner's side ----

// The helper process and slirp4netns of one run, shared by the fabric and
// its namespaces (a namespace may outlive the fabric object by a moment).
struct Link {
  std::mutex mu;
  UniqueFd sock;
  pid_t helper = -1;
  pid_t slirp = -1;
  UniqueFd slirp_exit;  // slirp4netns ends when this closes

  ~Link() {
    sock.reset();
    slirp_exit.reset();
    for (pid_t p : {helper, slirp})
      if (p > 0)
        while (::waitpid(p, nullptr, 0) < 0 && errno == EINTR) {
        }
  }

  Result<Message> call(const Json& req) {
    std::lock_guard lk(mu);
    LS_TRY(send_msg(sock.get(), req));
    LS_TRY_ASSIGN(Message m, recv_msg(sock.get()));
    if (m.body.is_null()) return fail("the rootless network helper ended");
    if (m.body.contains("error")) return fail(m.body["error"].get<std::string>());
    m.body = m.body["reply"];
    return m;
  }
};

class RootlessNamespace final : public NetworkNamespace {
 public:
  RootlessNamespace(std::shared_ptr<Link> link, uint64_t id, UniqueFd fd, std::string a4,
                    std::string a6)
      : link_(std::move(link)),
        id_(id),
        fd_(std::move(fd)),
        a4_(std::move(a4)),
        a6_(std::move(a6)) {}
  ~RootlessNamespace() override { (void)link_->call({{"op", "release"}, {"id", id_}}); }
  int fd() const override { return fd_.get(); }
  const std::string& address4() const override { return a4_; }
  const std::string& address6() const override { return a6_; }
  Result<UniqueFd> socket(int domain, int type, int protocol) const override {
    LS_TRY_ASSIGN(auto v, sockets({{domain, type, protocol}}));
    return std::move(v[0]);
  }
  Result<std::vector<UniqueFd>> sockets(const std::vector<SocketSpec>& specs) const override {
    Json list = Json::array();
    for (const auto& s : specs) list.push_back({s.domain, s.type, s.protocol});
    LS_TRY_ASSIGN(Message m, link_->call({{"op", "sockets"}, {"id", id_}, {"specs", list}}));
    if (m.fds.size() != specs.size()) return fail("the rootless network helper sent no sockets");
    return std::move(m.fds);
  }
  Result<UniqueFd> netlink_request(int protocol, const std::string& request) const {
    static const char hex[] = "0123456789abcdef";
    std::string text;
    for (unsigned char c : request) {
      text.push_back(hex[c >> 4]);
      text.push_back(hex[c & 15]);
    }
    LS_TRY_ASSIGN(
        Message m,
        link_->call({{"op", "netlink"}, {"id", id_}, {"protocol", protocol}, {"request", text}}));
    if (m.fds.size() != 1) return fail("the rootless network helper sent no socket");
    return std::move(m.fds[0]);
  }

 private:
  std::shared_ptr<Link> link_;
  uint64_t id_;
  UniqueFd fd_;
  std::string a4_, a6_;
};

class RootlessFabric final : public EgressFabric {
 public:
  RootlessFabric(std::shared_ptr<Link> link, const Json& info, bool uplink)
      : link_(std::move(link)),
        subnet4_(info.at("subnet4").get<std::string>()),
        subnet6_(info.at("subnet6").get<std::string>()),
        bridge_(info.at("bridge").get<std::string>()),
        table_(info.at("table").get<std::string>()),
        mtu_(info.at("mtu").get<int>()),
        ipv6_(info.at("ipv6").get<bool>()),
        uplink_(uplink) {}

  Result<std::shared_ptr<NetworkNamespace>> create_namespace(const std::string& name) override {
    auto m = link_->call({{"op", "namespace"}, {"name", name}});
    if (!m) return fail(std::move(m.error()).context("network for " + name));
    if (m->fds.size() != 1) return fail("network for " + name + ": no namespace fd");
    return std::shared_ptr<NetworkNamespace>(std::make_shared<RootlessNamespace>(
        link_, m->body.at("id").get<uint64_t>(), std::move(m->fds[0]),
        m->body.at("address4").get<std::string>(), m->body.at("address6").get<std::string>()));
  }
  Status allow_address(const std::string& address, uint16_t port,
                       std::chrono::seconds ttl) override {
    LS_TRY(
        link_->call({{"op", "allow"}, {"address", address}, {"port", port}, {"ttl", ttl.count()}}));
    return {};
  }
  bool has_ipv6() const override { return ipv6_; }
  const std::string& bridge() const override { return bridge_; }
  const std::string& table() const override { return table_; }
  const std::string& subnet4() const override { return subnet4_; }
  const std::string& subnet6() const override { return subnet6_; }
  int mtu() const override { return mtu_; }
  bool has_uplink() const override { return uplink_; }

 private:
  std::shared_ptr<Link> link_;
  std::string subnet4_, subnet6_, bridge_, table_;
  int mtu_;
  bool ipv6_, uplink_;
};

// What the host offers: whether it has an IPv4 and an IPv6 default route,
// and its own addresses.
struct HostView {
  bool uplink = false;
  bool uplink6 = false;
  std::vector<std::string> addresses;
};

Result<HostView> host_view() {
  HostView v;
  LS_TRY_ASSIGN(auto nl, detail::Netlink::open());
  LS_TRY_ASSIGN(auto routes, nl.routes(AF_INET));
  for (const auto& r : routes)
    if (r.dst.prefix == 0) v.uplink = true;
  LS_TRY_ASSIGN(auto routes6, nl.routes(AF_INET6));
  for (const auto& r : routes6)
    if (r.dst.prefix == 0) v.uplink6 = true;
  for (int family : {AF_INET, AF_INET6}) {
    LS_TRY_ASSIGN(auto addrs, nl.addresses(family));
    for (const auto& a : addrs) v.addresses.push_back(a.address());
  }
  return v;
}

// slirp4netns on the router's tap0: in the host's network namespace (this
// process's), so that it connects from the host, but root of the user
// namespace, so that it may enter the router's (through the descriptor it
// inherits) and confine itself (--enable-sandbox: an empty root and no
// capability but CAP_NET_BIND_SERVICE; --enable-seccomp): it parses every
// packet a job sends. Ready when it writes to --ready-fd.
Status start_slirp(Link& link, int userns, bool subordinate, int router, int mtu, bool ipv6) {
  int exit_pipe[2], ready_pipe[2];
  if (::pipe2(exit_pipe, O_CLOEXEC) != 0 || ::pipe2(ready_pipe, O_CLOEXEC) != 0)
    return fail_errno("pipe");
  UniqueFd exit_r(exit_pipe[0]), exit_w(exit_pipe[1]), ready_r(ready_pipe[0]),
      ready_w(ready_pipe[1]);
  UniqueFd log(::memfd_create("slirp4netns-stderr", MFD_CLOEXEC));
  if (!log) return fail_errno("memfd_create");
  // fds 3..5 in the child, in this order.
  std::vector<std::string> args = {kSlirp4netns,
                                   "--configure",
                                   "--mtu=" + std::to_string(mtu),
                                   "--disable-host-loopback",
                                   "--cidr=" + std::string(kRootlessSlirpCidr),
                                   "--enable-sandbox",
                                   "--enable-seccomp",
                                   "--exit-fd=3",
                                   "--ready-fd=4",
                                   "--netns-type=path",
                                   "/proc/self/fd/5",
                                   "tap0"};
  // IPv6 where the host has it: slirp4netns gives the router fd00::100/64
  // and a default route through its gateway fd00::2, so the fabric there
  // turns IPv6 on for jobs as root's does.
  if (ipv6) args.insert(args.begin() + 1, "--enable-ipv6");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  char* envp[] = {nullptr};
  pid_t pid = ::fork();
  if (pid < 0) return fail_errno("fork for slirp4netns");
  if (pid == 0) {
    int keep[3] = {exit_r.get(), ready_w.get(), router};
    int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    ::dup2(devnull, 0);
    ::dup2(devnull, 1);
    ::dup2(log.get(), 2);
    // Raw system calls, as in enter_router().
    if (::setns(userns, CLONE_NEWUSER) != 0 ||
        (subordinate && ::syscall(SYS_setgroups, 0, nullptr) != 0) ||
        ::syscall(SYS_setresgid, 0, 0, 0) != 0 || ::syscall(SYS_setresuid, 0, 0, 0) != 0) {
      static const char msg[] = "cannot become root of the user namespace\n";
      (void)detail::write_all(2, msg, sizeof msg - 1);
      ::_exit(126);
    }
    if (detail::keep_only_fds(keep, 3) != 0) ::_exit(126);
    for (int fd : keep) ::fcntl(fd, F_SETFD, 0);
    ::execve(argv[0], argv.data(), envp);
    ::_exit(127);
  }
  link.slirp = pid;
  link.slirp_exit = std::move(exit_w);
  exit_r.reset();
  ready_w.reset();
  pollfd p{ready_r.get(), POLLIN, 0};
  int n = ::poll(&p, 1, 10000);
  char c = 0;
  if (n == 1 && ::read(ready_r.get(), &c, 1) == 1 && c == '1') return {};
  std::string why = n == 0 ? "did not get ready in 10 s" : "ended before it was ready";
  // Its own words, on one line (its notice about seccomp left out).
  char buf[1024];
  ssize_t got = ::pread(log.get(), buf, sizeof buf, 0);
  std::istringstream in(std::string(buf, got > 0 ? static_cast<size_t>(got) : 0));
  std::string said;
  for (std::string line; std::getline(in, line);)
    if (!line.empty() && line.rfind("WARNING: ", 0) != 0) said += (said.empty() ? "" : "; ") + line;
  return fail("slirp4netns " + why + (said.empty() ? "" : ": " + said));
}

}  // namespace

Result<std::unique_ptr<EgressFabric>> rootless_egress_fabric(const EgressPolicy& policy) {
  auto what = [](Error e) { return fail(std::move(e).context("network egress without root")); };
  for (const auto& c : policy.cidrs)
    if (!detail::IpPrefix::parse(c.cidr))
      return fail("egress allow-list: '" + c.cidr + "' is not an address or CIDR",
                  ErrorKind::kUsage);
  if (::access(kSlirp4netns, X_OK) != 0)
    return fail(std::string("network egress without root needs ") + kSlirp4netns +
                    "; install Debian's slirp4netns package (apt-get install slirp4netns), or "
                    "run with --network none or --network host",
                ErrorKind::kUnsupported);
  // slirp4netns opens the tun device as the user. Debian's udev makes it
  // 0666; a host without udev (a container, a minimal VM) leaves it 0600.
  if (::access(kTunDevice, R_OK | W_OK) != 0) {
    struct stat st {};
    std::string mode;
    if (::stat(kTunDevice, &st) == 0) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "%04o", st.st_mode & 07777);
      mode = std::string(" (mode ") + buf + ")";
    }
    return fail(std::string("network egress without root needs ") + kTunDevice +
                    " readable and writable by the user, for slirp4netns" + mode +
                    "; as root run 'chmod 0666 " + kTunDevice +
                    "' (what Debian's udev sets), or run with --network none or --network host",
                ErrorKind::kUnsupported);
  }
  LS_TRY_ASSIGN(int userns, rootless_userns_fd());
  LS_TRY_ASSIGN(RootlessMapping mapping, rootless_mapping());
  auto host = host_view();
  if (!host) return what(host.error());
  int sp[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0)
    return fail_errno("socketpair");
  UniqueFd mine(sp[0]), theirs(sp[1]);
  auto link = std::make_shared<Link>();
  pid_t pid = ::fork();
  if (pid < 0) return fail_errno("fork the rootless network helper");
  if (pid == 0) helper_main(theirs.get(), userns, mapping.subordinate);
  link->helper = pid;
  link->sock = std::move(mine);
  theirs.reset();
  auto ready = recv_msg(link->sock.get());
  if (!ready) return what(ready.error());
  if (ready->body.is_null() || ready->fds.size() != 1)
    return what(Error(ready->body.is_object() && ready->body.contains("error")
                          ? ready->body["error"].get<std::string>()
                          : "the helper process ended"));
  if (auto s = start_slirp(*link, userns, mapping.subordinate, ready->fds[0].get(), kRootlessMtu,
                           host->uplink6);
      !s)
    return what(s.error());
  ready->fds.clear();
  Json cidrs = Json::array();
  for (const auto& c : policy.cidrs) cidrs.push_back({c.cidr, c.port});
  auto info = link->call({{"op", "fabric"},
                          {"ipv6", host->uplink6},
                          {"any_public", policy.any_public},
                          {"cidrs", cidrs},
                          {"deny", host->addresses}});
  if (!info) return what(info.error());
  return std::unique_ptr<EgressFabric>(
      std::make_unique<RootlessFabric>(link, info->body, host->uplink));
}

Result<UniqueFd> rootless_netlink_request(const NetworkNamespace& ns, int protocol,
                                          const std::string& request) {
  auto* r = dynamic_cast<const RootlessNamespace*>(&ns);
  if (!r) return fail("not a namespace of the rootless egress network");
  return r->netlink_request(protocol, request);
}

}  // namespace lockstep::executor
