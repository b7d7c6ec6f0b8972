#pragma once
// A test's own "internet", in network namespaces the test creates (nothing
// leaves the machine): `host` is where lockstep runs (its default routes lead
// to `world`), `world` holds the servers.
//
//   host  up0 203.0.113.2/24, 2001:db8:1::2/64 -- wan0 203.0.113.1, 2001:db8:1::1  world
//   world addresses on lo: 198.51.100.10 and 2001:db8:100::10 (public servers),
//         10.77.0.10 (a private-range server), 169.254.169.254 (cloud metadata)
//
// Both namespaces are anonymous: they go when the object and every process
// started in them are gone. Needs root (links with lockstep_executor for
// its netlink client).
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "common/fd.hpp"
#include "executor/netlink.hpp"
#include "executor/network_internal.hpp"

namespace lockstep::testing {

inline constexpr const char* kWorldServer4 = "198.51.100.10";
inline constexpr const char* kWorldServer6 = "2001:db8:100::10";
inline constexpr const char* kWorldPrivate = "10.77.0.10";
inline constexpr const char* kWorldMetadata = "169.254.169.254";
inline constexpr const char* kHostUplink4 = "203.0.113.2";

class NetnsWorld {
 public:
  NetnsWorld() {
    using executor::detail::IpPrefix;
    using executor::detail::Netlink;
    auto make = [](UniqueFd& out) {
      return executor::detail::in_namespace(
          -1,
          []() -> Status {
            LS_TRY(executor::detail::write_sysctl("net/ipv6/conf/default/accept_dad", "0"));
            // A new namespace starts with the IPv4 settings the host has right
            // now (net.core.devconf_inherit_init_net=0), and a run on the host
            // may have forwarding on: start from the kernel's default.
            LS_TRY(executor::detail::write_sysctl("net/ipv4/ip_forward", "0"));
            LS_TRY_ASSIGN(auto nl, Netlink::open());
            LS_TRY_ASSIGN(int lo, nl.link_index("lo"));
            return nl.set_up(lo);
          },
          &out);
    };
    ok_ = make(host_) && make(world_);
    if (!ok_) return;
    auto host_side = [&]() -> Status {
      LS_TRY_ASSIGN(auto nl, Netlink::open());
      LS_TRY(nl.create_veth("up0", "wan0", world_.get(), 1500));
      LS_TRY_ASSIGN(int up, nl.link_index("up0"));
      LS_TRY(nl.add_address(up, *IpPrefix::parse("203.0.113.2/24"), false));
      LS_TRY(nl.add_address(up, *IpPrefix::parse("2001:db8:1::2/64"), true));
      LS_TRY(nl.set_up(up));
      LS_TRY(nl.add_default_route(AF_INET, *IpPrefix::parse("203.0.113.1")));
      return nl.add_default_route(AF_INET6, *IpPrefix::parse("2001:db8:1::1"));
    };
    auto world_side = [&]() -> Status {
      LS_TRY_ASSIGN(auto nl, Netlink::open());
      LS_TRY_ASSIGN(int wan, nl.link_index("wan0"));
      LS_TRY(nl.add_address(wan, *IpPrefix::parse("203.0.113.1/24"), false));
      LS_TRY(nl.add_address(wan, *IpPrefix::parse("2001:db8:1::1/64"), true));
      LS_TRY(nl.set_up(wan));
      LS_TRY_ASSIGN(int lo, nl.link_index("lo"));
      for (const char* a : {kWorldServer4, kWorldServer6, kWorldPrivate, kWorldMetadata})
        LS_TRY(nl.add_address(lo, *IpPrefix::parse(a), true));
      // Replies to the host's uplink go back over wan0 (on-link); nothing else.
      return {};
    };
    auto h = executor::detail::in_namespace(host_.get(), host_side);
    auto w = h ? executor::detail::in_namespace(world_.get(), world_side) : h;
    ok_ = h && w;
    if (!ok_) error_ = (!h ? h.error() : w.error()).message();
  }

  ~NetnsWorld() {
    for (pid_t p : children_) {
      ::kill(p, SIGKILL);
      ::waitpid(p, nullptr, 0);
    }
  }

  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  int host_fd() const { return host_.get(); }
  int world_fd() const { return world_.get(); }

  // Runs `fn` on a thread inside the host namespace (what a lockstep process
  // there would do) and waits for it.
  void in_host(const std::function<void()>& fn) const { in(host_.get(), fn); }
  void in_world(const std::function<void()>& fn) const { in(world_.get(), fn); }

  // Starts argv in `netns_fd` with a private mount namespace in which
  // `resolv_conf` (when given) is /etc/resolv.conf. Killed by the destructor
  // unless waited for with wait().
  pid_t spawn(int netns_fd, const std::vector<std::string>& argv,
              const std::vector<std::string>& env = {}, const std::string& resolv_conf = "",
              int out_fd = -1, int err_fd = -1) {
    pid_t pid = ::fork();
    if (pid == 0) {
      if (::setns(netns_fd, CLONE_NEWNET) != 0) ::_exit(120);
      if (!resolv_conf.empty()) {
        if (::unshare(CLONE_NEWNS) != 0) ::_exit(121);
        if (::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) ::_exit(122);
        if (::mount(resolv_conf.c_str(), "/etc/resolv.conf", nullptr, MS_BIND, nullptr) != 0)
          ::_exit(123);
      }
      if (out_fd >= 0) ::dup2(out_fd, 1);
      if (err_fd >= 0) ::dup2(err_fd, 2);
      std::vector<char*> args, envp;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      for (char** e = environ; *e; ++e) envp.push_back(*e);
      for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
      envp.push_back(nullptr);
      ::execve(args[0], args.data(), envp.data());
      ::_exit(127);
    }
    if (pid > 0) children_.push_back(pid);
    return pid;
  }

  int wait(pid_t pid) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    std::erase(children_, pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  static void in(int fd, const std::function<void()>& fn) {
    std::thread t([&] {
      if (::setns(fd, CLONE_NEWNET) != 0) return;
      fn();
    });
    t.join();
  }

  UniqueFd host_, world_;
  bool ok_ = false;
  std::string error_;
  std::vector<pid_t> children_;
};

}  // namespace lockstep::testing
