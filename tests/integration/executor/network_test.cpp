// Network modes: none (loopback only), host, and joining another container.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "common/fd.hpp"
#include "harness.hpp"

namespace lockstep::executor::testing {
namespace {
using std::chrono::milliseconds;

// A TCP listener on the host's 127.0.0.1, on a port the kernel picks.
struct HostListener {
  UniqueFd fd;
  int port = 0;
  HostListener() {
    fd = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd.get(), 4), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  bool has_pending() {
    pollfd p{fd.get(), POLLIN, 0};
    return ::poll(&p, 1, 0) == 1;
  }
};

TEST_F(ExecutorTest, NetworkNoneCannotReachHostLoopback) {
  HostListener l;
  auto c = start(spec());
  ASSERT_TRUE(c);
  Output o = sh(*c, "echo x | nc 127.0.0.1 " + std::to_string(l.port));
  EXPECT_NE(o.result.exit_code, 0);
  EXPECT_FALSE(l.has_pending());
  // Inside there is only lo, it is up (IFF_UP|IFF_LOOPBACK) and it works.
  o = sh(*c,
         "ls /sys/class/net; cat /sys/class/net/lo/flags; httpd -p 127.0.0.1:8080 -h /www && "
         "wget -q -O - http://127.0.0.1:8080/index.html");
  EXPECT_EQ(o.out, (std::vector<std::string>{"lo", "0x9", "hello from the service"}));
}

TEST_F(ExecutorTest, NetworkHostReachesHostLoopback) {
  HostListener l;
  ContainerSpec s = spec();
  s.network.mode = NetworkMode::kHost;
  auto c = start(s);
  ASSERT_TRUE(c);
  // The host side accepts one connection, reads the line and hangs up.
  std::string got;
  std::thread server([&] {
    UniqueFd conn(::accept4(l.fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
    char buf[64];
    ssize_t n = conn ? ::read(conn.get(), buf, sizeof buf) : -1;
    if (n > 0) got.assign(buf, static_cast<size_t>(n));
  });
  Output o = sh(*c, "echo from-container | nc 127.0.0.1 " + std::to_string(l.port));
  server.join();
  EXPECT_EQ(got, "from-container\n");
}

TEST_F(ExecutorTest, ContainersShareLocalhostThroughNetworkJoin) {
  auto service = start(spec("svc"));
  ASSERT_TRUE(service);
  Output o = run(*service, {"httpd", "-p", "127.0.0.1:8080", "-h", "/www"});
  ASSERT_TRUE(o.result.ok()) << o.result.reason;
  ContainerSpec job = spec("job");
  job.network = {NetworkMode::kContainer, prefix_ + "svc"};
  auto c = start(job);
  ASSERT_TRUE(c);
  o = sh(*c, "wget -q -O - http://127.0.0.1:8080/index.html");
  EXPECT_EQ(o.out_text(), "hello from the service");
  // A container on its own network does not see the service.
  auto other = start(spec("other"));
  ASSERT_TRUE(other);
  o = sh(*other, "wget -q -O - http://127.0.0.1:8080/index.html");
  EXPECT_NE(o.result.exit_code, 0);

  ContainerSpec bad = spec("bad");
  bad.network = {NetworkMode::kContainer, "no-such"};
  auto r = executor_->start(bad);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "network container:no-such: no such running container");
  ASSERT_TRUE(c->stop(milliseconds(0)));
  ASSERT_TRUE(service->stop(milliseconds(0)));
}

}  // namespace
}  // namespace lockstep::executor::testing
