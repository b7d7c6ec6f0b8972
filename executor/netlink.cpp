#include "executor/netlink.hpp"

#include <arpa/inet.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sys/socket.h>

#include <cstring>

namespace lockstep::executor::detail {

// ---- addresses ----

std::optional<IpPrefix> IpPrefix::parse(const std::string& text) {
  IpPrefix p;
  std::string addr = text;
  int prefix = -1;
  if (auto slash = text.find('/'); slash != std::string::npos) {
    addr = text.substr(0, slash);
    std::string n = text.substr(slash + 1);
    if (n.empty() || n.size() > 3 || n.find_first_not_of("0123456789") != std::string::npos)
      return std::nullopt;
    prefix = std::stoi(n);
  }
  if (::inet_pton(AF_INET, addr.c_str(), p.bytes) == 1) {
    p.family = AF_INET;
    p.prefix = prefix < 0 ? 32 : prefix;
    if (p.prefix > 32) return std::nullopt;
  } else if (::inet_pton(AF_INET6, addr.c_str(), p.bytes) == 1) {
    p.family = AF_INET6;
    p.prefix = prefix < 0 ? 128 : prefix;
    if (p.prefix > 128) return std::nullopt;
  } else {
    return std::nullopt;
  }
  return p;
}

std::string IpPrefix::address() const {
  char buf[INET6_ADDRSTRLEN];
  ::inet_ntop(family, bytes, buf, sizeof buf);
  return buf;
}

std::string IpPrefix::str() const {
  return address() + "/" + std::to_string(prefix);
}

namespace {
bool prefix_equal(const uint8_t* a, const uint8_t* b, int bits) {
  int whole = bits / 8;
  if (std::memcmp(a, b, static_cast<size_t>(whole)) != 0) return false;
  int rest = bits % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}
}  // namespace

bool IpPrefix::contains(const IpPrefix& o) const {
  return family == o.family && o.prefix >= prefix && prefix_equal(bytes, o.bytes, prefix);
}

bool IpPrefix::overlaps(const IpPrefix& o) const {
  return family == o.family && prefix_equal(bytes, o.bytes, std::min(prefix, o.prefix));
}

// ---- messages ----

namespace {

class Msg {
 public:
  Msg(uint16_t type, uint16_t flags) {
    buf_.resize(NLMSG_HDRLEN);
    auto* h = hdr();
    h->nlmsg_type = type;
    h->nlmsg_flags = static_cast<uint16_t>(flags | NLM_F_REQUEST);
  }
  template <typename T>
  void put(const T& v) {
    append(&v, sizeof v);
  }
  void attr(uint16_t type, const void* data, size_t len) {
    nlattr a{};
    a.nla_type = type;
    a.nla_len = static_cast<uint16_t>(NLA_HDRLEN + len);
    append(&a, sizeof a);
    append(data, len);
  }
  void attr_str(uint16_t type, const std::string& s) { attr(type, s.c_str(), s.size() + 1); }
  void attr_u32(uint16_t type, uint32_t v) { attr(type, &v, sizeof v); }
  size_t begin_nest(uint16_t type) {
    size_t at = buf_.size();
    nlattr a{};
    a.nla_type = static_cast<uint16_t>(type | NLA_F_NESTED);
    append(&a, sizeof a);
    return at;
  }
  void end_nest(size_t at) {
    auto* a = reinterpret_cast<nlattr*>(buf_.data() + at);
    a->nla_len = static_cast<uint16_t>(buf_.size() - at);
  }
  std::vector<char>& finish() {
    hdr()->nlmsg_len = static_cast<uint32_t>(buf_.size());
    return buf_;
  }

 private:
  nlmsghdr* hdr() { return reinterpret_cast<nlmsghdr*>(buf_.data()); }
  void append(const void* p, size_t n) {
    const char* c = static_cast<const char*>(p);
    buf_.insert(buf_.end(), c, c + n);
    buf_.resize(NLMSG_ALIGN(buf_.size()));
  }
  std::vector<char> buf_;
};

// The payload of a message (NLMSG_DATA without its C cast).
template <typename T>
const T* payload(const nlmsghdr* h) {
  return reinterpret_cast<const T*>(reinterpret_cast<const char*>(h) + NLMSG_HDRLEN);
}

// Attributes following a fixed header of `skip` bytes in one message.
template <typename F>
void for_each_attr(const nlmsghdr* h, size_t skip, F&& f) {
  const char* p = reinterpret_cast<const char*>(h) + NLMSG_HDRLEN + NLMSG_ALIGN(skip);
  const char* end = reinterpret_cast<const char*>(h) + h->nlmsg_len;
  while (p + NLA_HDRLEN <= end) {
    const auto* a = reinterpret_cast<const nlattr*>(p);
    if (a->nla_len < NLA_HDRLEN || p + a->nla_len > end) break;
    f(static_cast<uint16_t>(a->nla_type & NLA_TYPE_MASK), p + NLA_HDRLEN,
      static_cast<size_t>(a->nla_len - NLA_HDRLEN));
    p += NLA_ALIGN(a->nla_len);
  }
}

}  // namespace

Result<Netlink> Netlink::open() {
  UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!fd) return fail_errno("open a netlink socket");
  return Netlink(std::move(fd));
}

Status Netlink::request(std::vector<char>& msg, const std::string& what) {
  auto* h = reinterpret_cast<nlmsghdr*>(msg.data());
  h->nlmsg_flags |= NLM_F_ACK;
  h->nlmsg_seq = ++seq_;
  if (::send(fd_.get(), msg.data(), msg.size(), 0) < 0) return fail_errno(what);
  char buf[8192];
  for (;;) {
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno(what);
    }
    for (auto* r = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(r, static_cast<unsigned>(n));
         r = NLMSG_NEXT(r, n)) {
      if (r->nlmsg_seq != seq_) continue;
      if (r->nlmsg_type == NLMSG_ERROR) {
        int err = -payload<nlmsgerr>(r)->error;
        if (err == 0) return {};
        return fail(Error::from_errno(what, err));
      }
    }
  }
}

Result<std::vector<std::vector<char>>> Netlink::dump(std::vector<char>& msg,
                                                     const std::string& what) {
  auto* h = reinterpret_cast<nlmsghdr*>(msg.data());
  h->nlmsg_flags |= NLM_F_DUMP;
  h->nlmsg_seq = ++seq_;
  if (::send(fd_.get(), msg.data(), msg.size(), 0) < 0) return fail_errno(what);
  std::vector<std::vector<char>> out;
  std::vector<char> buf(32768);
  for (;;) {
    ssize_t n = ::recv(fd_.get(), buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno(what);
    }
    for (auto* r = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(r, static_cast<unsigned>(n));
         r = NLMSG_NEXT(r, n)) {
      if (r->nlmsg_seq != seq_) continue;
      if (r->nlmsg_type == NLMSG_DONE) return out;
      if (r->nlmsg_type == NLMSG_ERROR) {
        int err = -payload<nlmsgerr>(r)->error;
        return fail(Error::from_errno(what, err));
      }
      const char* p = reinterpret_cast<const char*>(r);
      out.emplace_back(p, p + r->nlmsg_len);
    }
  }
}

Status Netlink::create_bridge(const std::string& name, int mtu) {
  Msg m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  m.put(ifi);
  m.attr_str(IFLA_IFNAME, name);
  if (mtu > 0) m.attr_u32(IFLA_MTU, static_cast<uint32_t>(mtu));
  size_t info = m.begin_nest(IFLA_LINKINFO);
  m.attr_str(IFLA_INFO_KIND, "bridge");
  m.end_nest(info);
  return request(m.finish(), "create bridge " + name);
}

Status Netlink::create_veth(const std::string& name, const std::string& peer, int peer_netns_fd,
                            int mtu, int peer_index) {
  Msg m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  m.put(ifi);
  m.attr_str(IFLA_IFNAME, name);
  if (mtu > 0) m.attr_u32(IFLA_MTU, static_cast<uint32_t>(mtu));
  size_t info = m.begin_nest(IFLA_LINKINFO);
  m.attr_str(IFLA_INFO_KIND, "veth");
  size_t data = m.begin_nest(IFLA_INFO_DATA);
  size_t p = m.begin_nest(VETH_INFO_PEER);
  ifinfomsg pifi{};
  pifi.ifi_family = AF_UNSPEC;
  pifi.ifi_index = peer_index;
  m.put(pifi);
  m.attr_str(IFLA_IFNAME, peer);
  if (mtu > 0) m.attr_u32(IFLA_MTU, static_cast<uint32_t>(mtu));
  m.attr_u32(IFLA_NET_NS_FD, static_cast<uint32_t>(peer_netns_fd));
  m.end_nest(p);
  m.end_nest(data);
  m.end_nest(info);
  return request(m.finish(), "create veth " + name);
}

Status Netlink::delete_link(const std::string& name) {
  Msg m(RTM_DELLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  m.put(ifi);
  m.attr_str(IFLA_IFNAME, name);
  auto r = request(m.finish(), "delete interface " + name);
  if (!r && r.error().errnum() == ENODEV) return {};
  return r;
}

Status Netlink::set_up(int index) {
  Msg m(RTM_NEWLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = index;
  ifi.ifi_flags = IFF_UP;
  ifi.ifi_change = IFF_UP;
  m.put(ifi);
  return request(m.finish(), "bring interface " + std::to_string(index) + " up");
}

Status Netlink::set_master(int index, int master_index) {
  Msg m(RTM_NEWLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = index;
  m.put(ifi);
  m.attr_u32(IFLA_MASTER, static_cast<uint32_t>(master_index));
  return request(m.finish(), "attach interface " + std::to_string(index) + " to the bridge");
}

Status Netlink::set_isolated(int index) {
  Msg m(RTM_SETLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_BRIDGE;
  ifi.ifi_index = index;
  m.put(ifi);
  size_t p = m.begin_nest(IFLA_PROTINFO);
  uint8_t on = 1;
  m.attr(IFLA_BRPORT_ISOLATED, &on, 1);
  m.end_nest(p);
  return request(m.finish(), "isolate bridge port " + std::to_string(index));
}

Status Netlink::add_address(int index, const IpPrefix& a, bool nodad) {
  Msg m(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
  ifaddrmsg ifa{};
  ifa.ifa_family = static_cast<uint8_t>(a.family);
  ifa.ifa_prefixlen = static_cast<uint8_t>(a.prefix);
  ifa.ifa_index = static_cast<uint32_t>(index);
  ifa.ifa_flags = nodad ? IFA_F_NODAD : 0;
  m.put(ifa);
  size_t len = a.family == AF_INET ? 4 : 16;
  m.attr(IFA_LOCAL, a.bytes, len);
  m.attr(IFA_ADDRESS, a.bytes, len);
  if (nodad) m.attr_u32(IFA_FLAGS, IFA_F_NODAD);
  return request(m.finish(), "add address " + a.str());
}

Status Netlink::add_default_route(int family, const IpPrefix& gateway) {
  Msg m(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
  rtmsg rt{};
  rt.rtm_family = static_cast<uint8_t>(family);
  rt.rtm_table = RT_TABLE_MAIN;
  rt.rtm_protocol = RTPROT_STATIC;
  rt.rtm_scope = RT_SCOPE_UNIVERSE;
  rt.rtm_type = RTN_UNICAST;
  m.put(rt);
  m.attr(RTA_GATEWAY, gateway.bytes, family == AF_INET ? 4 : 16);
  return request(m.finish(), "add a default route via " + gateway.address());
}

Status Netlink::add_link_route(int index, const IpPrefix& dst) {
  Msg m(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
  rtmsg rt{};
  rt.rtm_family = static_cast<uint8_t>(dst.family);
  rt.rtm_dst_len = static_cast<uint8_t>(dst.prefix);
  rt.rtm_table = RT_TABLE_MAIN;
  rt.rtm_protocol = RTPROT_STATIC;
  rt.rtm_scope = RT_SCOPE_LINK;
  rt.rtm_type = RTN_UNICAST;
  m.put(rt);
  m.attr(RTA_DST, dst.bytes, dst.family == AF_INET ? 4 : 16);
  m.attr_u32(RTA_OIF, static_cast<uint32_t>(index));
  return request(m.finish(), "add a route to " + dst.str());
}

Result<int> Netlink::link_index(const std::string& name) {
  LS_TRY_ASSIGN(auto all, links());
  for (const auto& l : all)
    if (l.name == name) return l.index;
  return fail("no interface " + name, ErrorKind::kNotFound);
}

Result<std::vector<LinkInfo>> Netlink::links() {
  Msg m(RTM_GETLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  m.put(ifi);
  LS_TRY_ASSIGN(auto msgs, dump(m.finish(), "list interfaces"));
  std::vector<LinkInfo> out;
  for (const auto& raw : msgs) {
    const auto* h = reinterpret_cast<const nlmsghdr*>(raw.data());
    if (h->nlmsg_type != RTM_NEWLINK) continue;
    const auto* i = payload<ifinfomsg>(h);
    LinkInfo li;
    li.index = i->ifi_index;
    for_each_attr(h, sizeof(ifinfomsg), [&](uint16_t type, const char* data, size_t len) {
      if (type == IFLA_IFNAME) li.name.assign(data, strnlen(data, len));
      if (type == IFLA_MTU && len >= 4) std::memcpy(&li.mtu, data, 4);
    });
    out.push_back(li);
  }
  return out;
}

Result<std::vector<RouteInfo>> Netlink::routes(int family) {
  Msg m(RTM_GETROUTE, 0);
  rtmsg rt{};
  rt.rtm_family = static_cast<uint8_t>(family);
  m.put(rt);
  LS_TRY_ASSIGN(auto msgs, dump(m.finish(), "list routes"));
  std::vector<RouteInfo> out;
  for (const auto& raw : msgs) {
    const auto* h = reinterpret_cast<const nlmsghdr*>(raw.data());
    if (h->nlmsg_type != RTM_NEWROUTE) continue;
    const auto* r = payload<rtmsg>(h);
    if (r->rtm_table != RT_TABLE_MAIN || r->rtm_type != RTN_UNICAST) continue;
    RouteInfo ri;
    ri.family = r->rtm_family;
    ri.dst.family = r->rtm_family;
    ri.dst.prefix = r->rtm_dst_len;
    for_each_attr(h, sizeof(rtmsg), [&](uint16_t type, const char* data, size_t len) {
      if (type == RTA_DST) std::memcpy(ri.dst.bytes, data, std::min<size_t>(len, 16));
      if (type == RTA_OIF && len >= 4) std::memcpy(&ri.oif, data, 4);
    });
    out.push_back(ri);
  }
  return out;
}

Result<std::vector<IpPrefix>> Netlink::addresses(int family) {
  Msg m(RTM_GETADDR, 0);
  ifaddrmsg ifa{};
  ifa.ifa_family = static_cast<uint8_t>(family);
  m.put(ifa);
  LS_TRY_ASSIGN(auto msgs, dump(m.finish(), "list addresses"));
  std::vector<IpPrefix> out;
  for (const auto& raw : msgs) {
    const auto* h = reinterpret_cast<const nlmsghdr*>(raw.data());
    if (h->nlmsg_type != RTM_NEWADDR) continue;
    const auto* a = payload<ifaddrmsg>(h);
    IpPrefix p;
    p.family = a->ifa_family;
    p.prefix = a->ifa_prefixlen;
    bool have = false;
    for_each_attr(h, sizeof(ifaddrmsg), [&](uint16_t type, const char* data, size_t len) {
      if (type == IFA_ADDRESS || (type == IFA_LOCAL && !have)) {
        std::memcpy(p.bytes, data, std::min<size_t>(len, 16));
        have = true;
      }
    });
    if (have) out.push_back(p);
  }
  return out;
}

}  // namespace lockstep::executor::detail
