// The egress network: NAT to a test-made "internet", isolation from the
// host, other jobs, link-local and private ranges, and nothing left behind,
// not even by a killed owner. Everything happens in network namespaces the
// test creates (tests/support/netns_world.hpp).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "common/fd.hpp"
#include "executor/network.hpp"
#include "executor/network_internal.hpp"
#include "harness.hpp"
#include "tests/support/netns_world.hpp"

namespace lockstep::executor::testing {
namespace {
using lockstep::testing::NetnsWorld;
using std::chrono::milliseconds;

// Answers every connection on its sockets with one fixed HTTP response.
class TinyHttp {
 public:
  explicit TinyHttp(std::string body) : body_(std::move(body)), stop_(::eventfd(0, EFD_CLOEXEC)) {}
  ~TinyHttp() {
    uint64_t one = 1;
    (void)::write(stop_.get(), &one, sizeof one);
    if (thread_.joinable()) thread_.join();
  }
  // Binds in the calling thread's network namespace.
  bool listen(const std::string& addr, int port) {
    sockaddr_storage ss{};
    socklen_t len;
    int family = addr.find(':') == std::string::npos ? AF_INET : AF_INET6;
    if (family == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      a->sin_family = AF_INET;
      a->sin_port = htons(static_cast<uint16_t>(port));
      ::inet_pton(AF_INET, addr.c_str(), &a->sin_addr);
      len = sizeof *a;
    } else {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      a->sin6_family = AF_INET6;
      a->sin6_port = htons(static_cast<uint16_t>(port));
      ::inet_pton(AF_INET6, addr.c_str(), &a->sin6_addr);
      len = sizeof *a;
    }
    UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd.get(), 16) != 0)
      return false;
    fds_.push_back(std::move(fd));
    return true;
  }
  void run() {
    thread_ = std::thread([this] {
      for (;;) {
        std::vector<pollfd> p = {{stop_.get(), POLLIN, 0}};
        for (const auto& f : fds_) p.push_back({f.get(), POLLIN, 0});
        if (::poll(p.data(), p.size(), -1) < 0) continue;
        if (p[0].revents) return;
        for (size_t i = 1; i < p.size(); ++i) {
          if (!p[i].revents) continue;
          UniqueFd c(::accept4(p[i].fd, nullptr, nullptr, SOCK_CLOEXEC));
          if (!c) continue;
          ++accepted;
          char buf[4096];
          (void)::read(c.get(), buf, sizeof buf);
          std::string r = "HTTP/1.0 200 OK\r\nContent-Length: " + std::to_string(body_.size()) +
                          "\r\n\r\n" + body_;
          (void)::write(c.get(), r.data(), r.size());
        }
      }
    });
  }
  std::atomic<int> accepted{0};

 private:
  std::string body_;
  UniqueFd stop_;
  std::vector<UniqueFd> fds_;
  std::thread thread_;
};

class EgressTest : public ExecutorTest {
 protected:
  void SetUp() override {
    ExecutorTest::SetUp();
    world_ = std::make_unique<NetnsWorld>();
    ASSERT_TRUE(world_->ok()) << world_->error();
  }
  void TearDown() override {
    world_.reset();
    ExecutorTest::TearDown();
  }
  std::vector<std::string> objects() {
    std::vector<std::string> out;
    world_->in_host([&] {
      auto r = list_network_objects();
      if (r)
        out = *r;
      else
        out = {"error: " + r.error().message()};
    });
    return out;
  }
  std::string forwarding() {
    std::string v;
    world_->in_host([&] { v = detail::read_sysctl("net/ipv4/ip_forward").value_or("?"); });
    return v;
  }
  std::unique_ptr<NetnsWorld> world_;
};

TEST_F(EgressTest, ReachesTheWorldAndIsRefusedEverythingElseAtOnce) {
  TinyHttp world("hello from the world");
  world_->in_world([&] {
    ASSERT_TRUE(world.listen(lockstep::testing::kWorldServer4, 8080));
    ASSERT_TRUE(world.listen(lockstep::testing::kWorldServer6, 8080));
    ASSERT_TRUE(world.listen(lockstep::testing::kWorldPrivate, 8080));
    ASSERT_TRUE(world.listen(lockstep::testing::kWorldMetadata, 80));
  });
  world.run();
  TinyHttp host("the host itself");
  world_->in_host([&] { ASSERT_TRUE(host.listen("0.0.0.0", 8081)); });
  host.run();
  ASSERT_EQ(forwarding(), "0");

  world_->in_host([&] {
    auto fabric = EgressFabric::create({});
    ASSERT_TRUE(fabric) << fabric.error().message();
    auto ns = (*fabric)->create_namespace("job");
    ASSERT_TRUE(ns) << ns.error().message();
    auto ns2 = (*fabric)->create_namespace("other");
    ASSERT_TRUE(ns2) << ns2.error().message();
    EXPECT_EQ(detail::read_sysctl("net/ipv4/ip_forward").value_or("?"), "1");

    ContainerSpec other = spec("other");
    other.network = {NetworkMode::kEgress, "", *ns2};
    auto oc = start(other);
    ASSERT_TRUE(oc);
    Output o = run(*oc, {"httpd", "-p", "9000", "-h", "/www"});
    ASSERT_TRUE(o.result.ok()) << o.result.reason;

    ContainerSpec s = spec("job");
    s.network = {NetworkMode::kEgress, "", *ns};
    auto c = start(s);
    ASSERT_TRUE(c);
    o = sh(*c, "wget -q -O - http://198.51.100.10:8080/ 2>&1");
    EXPECT_EQ(o.out_text(), "hello from the world");
    o = sh(*c, "wget -q -O - 'http://[2001:db8:100::10]:8080/' 2>&1");
    EXPECT_EQ(o.out_text(), "hello from the world");
    o = sh(*c, "cat /sys/class/net/eth0/mtu; ls /sys/class/net");
    EXPECT_EQ(o.out, (std::vector<std::string>{"1500", "eth0", "lo"}));

    std::string gateway = (*fabric)->subnet4().substr(0, (*fabric)->subnet4().rfind('.')) + ".1";
    // Every refusal is an answer (reset or ICMP), never a timeout.
    for (std::string target :
         {std::string("10.77.0.10 8080"), std::string("169.254.169.254 80"),
          std::string("203.0.113.2 8081"), gateway + " 8081", (*ns2)->address4() + " 9000"}) {
      o = sh(*c, "nc -w 30 " + target + " </dev/null 2>&1; echo rc=$?");
      ASSERT_FALSE(o.out.empty());
      EXPECT_EQ(o.out.back(), "rc=1") << target;
      EXPECT_NE(o.out_text().find("Connection refused"), std::string::npos)
          << target << ": " << o.out_text();
    }
    EXPECT_EQ(host.accepted, 0);
    ASSERT_TRUE(c->stop(milliseconds(0)));
    ASSERT_TRUE(oc->stop(milliseconds(0)));
  });
  EXPECT_EQ(world.accepted, 2);  // the two public requests, nothing else
  EXPECT_EQ(objects(), std::vector<std::string>{});
  EXPECT_EQ(forwarding(), "0");
}

TEST_F(EgressTest, AllowListOpensAPrivateRangeAndClosesThePublic) {
  TinyHttp world("private hello");
  world_->in_world([&] {
    ASSERT_TRUE(world.listen(lockstep::testing::kWorldPrivate, 8080));
    ASSERT_TRUE(world.listen(lockstep::testing::kWorldServer4, 8080));
  });
  world.run();
  world_->in_host([&] {
    EgressPolicy p;
    p.any_public = false;
    p.cidrs = {{"10.77.0.0/16", 8080}};
    auto fabric = EgressFabric::create(p);
    ASSERT_TRUE(fabric) << fabric.error().message();
    auto ns = (*fabric)->create_namespace("job");
    ASSERT_TRUE(ns) << ns.error().message();
    ContainerSpec s = spec("job");
    s.network = {NetworkMode::kEgress, "", *ns};
    auto c = start(s);
    ASSERT_TRUE(c);
    Output o = sh(*c, "wget -q -O - http://10.77.0.10:8080/");
    EXPECT_EQ(o.out_text(), "private hello");
    o = sh(*c, "nc -w 30 198.51.100.10 8080 </dev/null 2>&1; echo rc=$?");
    EXPECT_NE(o.out_text().find("Connection refused"), std::string::npos) << o.out_text();
    // A name the DNS stub resolved for the allow-list opens its address.
    ASSERT_TRUE((*fabric)->allow_address("198.51.100.10", 8080, std::chrono::seconds(60)));
    o = sh(*c, "wget -q -O - http://198.51.100.10:8080/");
    EXPECT_EQ(o.out_text(), "private hello");
    ASSERT_TRUE(c->stop(milliseconds(0)));
  });
  EXPECT_EQ(objects(), std::vector<std::string>{});
}

TEST_F(EgressTest, ManyNamespacesLeaveNothingBehind) {
  world_->in_host([&] {
    auto fabric = EgressFabric::create({});
    ASSERT_TRUE(fabric) << fabric.error().message();
    for (int i = 0; i < 200; ++i) {
      auto ns = (*fabric)->create_namespace("job " + std::to_string(i));
      ASSERT_TRUE(ns) << i << ": " << ns.error().message();
    }
  });
  EXPECT_EQ(objects(), std::vector<std::string>{});
}

// A keeper (lockstep agent) keeps the bridge and table between its jobs:
// the next fabric with the same policy takes them over, one with another
// policy gets its own, a job reaches the world through the taken-over one,
// and release_kept_networks removes them (forwarding back off); a fabric
// kept by a keeper that died is reaped.
TEST_F(EgressTest, AKeepersFabricIsTakenOverByItsNextJobAndReleased) {
  TinyHttp world("hello from the world");
  world_->in_world([&] { ASSERT_TRUE(world.listen(lockstep::testing::kWorldServer4, 8080)); });
  world.run();
  const pid_t me = ::getpid();
  std::string first_bridge;
  world_->in_host([&] {
    {
      auto fabric = EgressFabric::create({}, me);
      ASSERT_TRUE(fabric) << fabric.error().message();
      first_bridge = (*fabric)->bridge();
      auto ns = (*fabric)->create_namespace("job 1");
      ASSERT_TRUE(ns) << ns.error().message();
    }
    auto kept = list_network_objects();
    ASSERT_TRUE(kept);
    std::sort(kept->begin(), kept->end());
    std::vector<std::string> want = {first_bridge, "table lockstep_" + first_bridge.substr(4),
                                     "table lockstep_guard"};
    std::sort(want.begin(), want.end());
    EXPECT_EQ(*kept, want);  // the job's veth is gone, bridge and table stay
    EXPECT_EQ(detail::read_sysctl("net/ipv4/ip_forward").value_or("?"), "1");

    auto again = EgressFabric::create({}, me);
    ASSERT_TRUE(again) << again.error().message();
    EXPECT_EQ((*again)->bridge(), first_bridge);
    // In use: a second job of the same keeper gets a fabric of its own.
    auto parallel = EgressFabric::create({}, me);
    ASSERT_TRUE(parallel) << parallel.error().message();
    EXPECT_NE((*parallel)->bridge(), first_bridge);
    EgressPolicy listed;
    listed.any_public = false;
    auto other = EgressFabric::create(listed, me);
    ASSERT_TRUE(other) << other.error().message();
    EXPECT_NE((*other)->bridge(), first_bridge);
    EXPECT_NE((*other)->bridge(), (*parallel)->bridge());

    auto ns = (*again)->create_namespace("job 2");
    ASSERT_TRUE(ns) << ns.error().message();
    ContainerSpec s = spec("job2");
    s.network = {NetworkMode::kEgress, "", *ns};
    auto c = start(s);
    ASSERT_TRUE(c);
    Output o = sh(*c, "wget -q -O - http://198.51.100.10:8080/ 2>&1");
    EXPECT_EQ(o.out_text(), "hello from the world");
    ASSERT_TRUE(c->stop(milliseconds(0)));
    ns->reset();
    again->reset();
    parallel->reset();
    other->reset();
    // Three kept fabrics; none in use.
    ASSERT_TRUE(release_kept_networks(me));
  });
  EXPECT_EQ(objects(), std::vector<std::string>{});
  EXPECT_EQ(forwarding(), "0");

  // A keeper that died: what it kept is reaped once the job's process that
  // made it is gone too.
  int ready[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  pid_t keeper = ::fork();
  if (keeper == 0) {
    ::close(ready[1]);
    char x;
    (void)::read(ready[0], &x, 1);
    ::_exit(0);
  }
  ::close(ready[0]);
  pid_t job = ::fork();
  if (job == 0) {
    if (::setns(world_->host_fd(), CLONE_NEWNET) != 0) ::_exit(1);
    auto fabric = EgressFabric::create({}, keeper);
    ::_exit(fabric ? 0 : 2);
  }
  int st = 0;
  ASSERT_EQ(::waitpid(job, &st, 0), job);
  EXPECT_EQ(st, 0);
  EXPECT_EQ(objects().size(), 3u) << ::testing::PrintToString(objects());
  world_->in_host([&] { ASSERT_TRUE(reap_stale_networks()); });
  EXPECT_EQ(objects().size(), 3u) << "the keeper lives: " << ::testing::PrintToString(objects());
  ::close(ready[1]);
  ::waitpid(keeper, nullptr, 0);
  world_->in_host([&] { ASSERT_TRUE(reap_stale_networks()); });
  EXPECT_EQ(objects(), std::vector<std::string>{});
  EXPECT_EQ(forwarding(), "0");
}

TEST_F(EgressTest, AKilledOwnersNetworkIsReaped) {
  int ready[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::setns(world_->host_fd(), CLONE_NEWNET) != 0) ::_exit(1);
    auto fabric = EgressFabric::create({});
    if (!fabric) ::_exit(2);
    auto ns = (*fabric)->create_namespace("job");
    if (!ns) ::_exit(3);
    (void)::write(ready[1], "x", 1);
    for (;;) ::pause();
  }
  ::close(ready[1]);
  char x = 0;
  ASSERT_EQ(::read(ready[0], &x, 1), 1);
  ::close(ready[0]);
  auto before = objects();
  // Bridge, veths (the job's and those made ahead), its table, and the
  // forwarding guard (forwarding was off).
  EXPECT_GE(before.size(), 4u) << ::testing::PrintToString(before);
  EXPECT_EQ(forwarding(), "1");
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  world_->in_host([&] { ASSERT_TRUE(reap_stale_networks()); });
  EXPECT_EQ(objects(), std::vector<std::string>{});
  EXPECT_EQ(forwarding(), "0");
}

}  // namespace
}  // namespace lockstep::executor::testing
