// The egress services on Boost.Asio: the DNS stub, the recording proxy and
// the connection log of each job, served by a few threads per process. Every
// job's work runs on its own strand, so its records need no other ordering.
#include "egress/service.hpp"

// Asio's scheduler trips GCC 12's flow-based -Wnull-dereference once inlined;
// the warning is about Boost's code, not ours (as in the mirror server).
#pragma GCC diagnostic ignored "-Wnull-dereference"
#pragma GCC diagnostic ignored "-Wtsan"
// GCC 12 pairs an inlined coroutine frame's operator delete with the wrong
// allocation function (Asio's recycling allocator); Boost's code again.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "cache/blob_store.hpp"
#include "common/digest.hpp"
#include "common/fs.hpp"
#include "common/time.hpp"
#include "egress/conntrack.hpp"
#include "egress/dns.hpp"
#include "egress/http_head.hpp"
#include "egress/job_egress.hpp"
#include "egress/tls_tunnel.hpp"

namespace lockstep::egress {
namespace asio = boost::asio;
using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;
using udp = asio::ip::udp;
using Clock = std::chrono::system_clock;
using boost::system::error_code;

// The proxy port whose CONNECT tunnels are never inspected.
constexpr uint16_t kOpaqueProxyPort = 3129;

std::vector<std::string> parse_nameservers(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string key, value;
    if (words >> key >> value && key == "nameserver") {
      if (auto pct = value.find('%'); pct != std::string::npos) value.resize(pct);
      out.push_back(value);
    }
  }
  return out;
}

namespace {

std::string timestamp(Clock::time_point t) {
  return rfc3339_ms(t);
}

// Every address of this host's interfaces (numeric).
std::set<std::string> host_addresses() {
  std::set<std::string> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr) continue;
    char buf[INET6_ADDRSTRLEN];
    if (i->ifa_addr->sa_family == AF_INET)
      ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, buf, sizeof buf);
    else if (i->ifa_addr->sa_family == AF_INET6)
      ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, buf,
                  sizeof buf);
    else
      continue;
    out.insert(buf);
  }
  ::freeifaddrs(list);
  return out;
}

Clock::time_point from_ns(uint64_t ns) {
  return Clock::time_point(
      std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(ns)));
}

class ServiceImpl final : public Service {
 public:
  explicit ServiceImpl(std::vector<std::string> upstreams)
      : work_(asio::make_work_guard(io_)), upstreams_(std::move(upstreams)) {
    unsigned n = std::max(2u, std::min(4u, std::thread::hardware_concurrency()));
    for (unsigned i = 0; i < n; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  ~ServiceImpl() override {
    work_.reset();
    io_.stop();
    for (auto& t : threads_) t.join();
  }
  const std::vector<std::string>& upstreams() const override { return upstreams_; }
  asio::io_context& io() { return io_; }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::string> upstreams_;
  std::vector<std::thread> threads_;
};

using Strand = asio::strand<asio::io_context::executor_type>;

// A relayed connection through the proxy: both sockets, byte counts, and
// what the response said.
struct Relay {
  explicit Relay(const Strand& s)
      : client(s), upstream(s), body_strand(asio::make_strand(s.get_inner_executor())) {}
  tcp::socket client, upstream;
  // The response's body is hashed and written to the content store here,
  // beside the job's strand (on another of the service's threads): its
  // fields below are this strand's once the head is parsed, the job's again
  // after a barrier (a post to this strand, awaited).
  Strand body_strand;
  Json record;
  uint64_t up_bytes = 0, down_bytes = 0;
  int pumps = 2;
  // Plain HTTP: the response head, then the body hashed as content.
  bool http = false, head_only = false;
  std::string head;
  bool in_body = false;
  bool chunked = false;
  ChunkedDecoder decoder;
  Sha256 sha;
  uint64_t body_bytes = 0;
  // Content-Length, when the origin sent one (and no chunked encoding).
  std::optional<uint64_t> content_length;
  // The body as it goes by, kept in the content store (status 200 only);
  // then the store's hash is the body's (`sha` is used without it).
  std::optional<cache::BlobWriter> blob;
  bool blob_ok = true;
  std::optional<Result<Digest>> committed;  // the blob's commit, made on body_strand
  bool local = false;                       // inside the job: relayed, not recorded
};

// Bytes read from one socket at a time by a relay (two such buffers per
// direction: one on its way out while the next is read).
constexpr size_t kRelayBuffer = 256 * 1024;

// Hashes (and keeps) a part of the response's body; on the relay's body_strand.
void absorb_body(Relay& r, std::string_view data) {
  auto content = [&r](std::string_view c) {
    r.body_bytes += c.size();
    if (!r.blob)
      r.sha.update(c);
    else if (r.blob_ok && !r.blob->write(c))
      r.blob_ok = false;
  };
  if (r.chunked)
    r.decoder.feed(data, content);
  else
    content(data);
}

class JobEgressImpl final : public JobEgress {
 public:
  JobEgressImpl(ServiceImpl& svc, JobEgressOptions o)
      : svc_(svc),
        o_(std::move(o)),
        strand_(asio::make_strand(svc.io())),
        dns_(strand_),
        dns_tcp_(strand_),
        acceptor_(strand_),
        opaque_acceptor_(strand_),
        ct_(strand_) {}
  ~JobEgressImpl() override { (void)finish(); }

  Status start() {
    LS_TRY_ASSIGN(auto fds, o_.ns->sockets({{AF_INET, SOCK_DGRAM, 0},
                                            {AF_INET, SOCK_STREAM, 0},
                                            {AF_INET, SOCK_STREAM, 0},
                                            {AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER},
                                            {AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER}}));
    UniqueFd dns_fd = std::move(fds[0]), dns_tcp_fd = std::move(fds[1]),
             proxy_fd = std::move(fds[2]), ct_fd = std::move(fds[3]);
    ct_dump_fd_ = std::move(fds[4]);
    auto addr = asio::ip::make_address_v4(executor::kEgressServiceAddress);
    error_code ec;
    dns_.assign(udp::v4(), dns_fd.release(), ec);
    if (!ec) dns_.bind({addr, executor::kEgressDnsPort}, ec);
    if (!ec) dns_tcp_.assign(tcp::v4(), dns_tcp_fd.release(), ec);
    if (!ec) dns_tcp_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) dns_tcp_.bind({addr, executor::kEgressDnsPort}, ec);
    if (!ec) dns_tcp_.listen(64, ec);
    if (ec) return fail("DNS stub for " + o_.name + ": " + ec.message());
    acceptor_.assign(tcp::v4(), proxy_fd.release(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind({addr, executor::kEgressProxyPort}, ec);
    if (!ec) acceptor_.listen(128, ec);
    if (ec) return fail("proxy for " + o_.name + ": " + ec.message());
    if (o_.inspection) {
      // Under inspection, a second port whose tunnels stay opaque, for
      // clients that cannot be given the run's CA (image builds).
      LS_TRY_ASSIGN(UniqueFd fd, o_.ns->socket(AF_INET, SOCK_STREAM, 0));
      opaque_acceptor_.assign(tcp::v4(), fd.release(), ec);
      if (!ec) opaque_acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
      if (!ec) opaque_acceptor_.bind({addr, kOpaqueProxyPort}, ec);
      if (!ec) opaque_acceptor_.listen(128, ec);
      if (ec) return fail("proxy for " + o_.name + ": " + ec.message());
    }
    sockaddr_nl sa{};
    sa.nl_family = AF_NETLINK;
    sa.nl_groups =
        NF_NETLINK_CONNTRACK_NEW | NF_NETLINK_CONNTRACK_UPDATE | NF_NETLINK_CONNTRACK_DESTROY;
    // A socket that comes subscribed (made by a process allowed to, as
    // without root) is not bound again: only such a process may.
    sockaddr_nl cur{};
    socklen_t len = sizeof cur;
    bool subscribed = ::getsockname(ct_fd.get(), reinterpret_cast<sockaddr*>(&cur), &len) == 0 &&
                      (cur.nl_groups & sa.nl_groups) == sa.nl_groups;
    if (!subscribed && ::bind(ct_fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
      return fail_errno("connection log for " + o_.name);
    int size = 4 << 20;
    (void)::setsockopt(ct_fd.get(), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
    ct_.assign(ct_fd.release(), ec);
    if (ec) return fail("connection log for " + o_.name + ": " + ec.message());
    spawn(dns_loop());
    spawn(dns_tcp_loop());
    spawn(proxy_loop(acceptor_, o_.inspection != nullptr));
    if (o_.inspection) spawn(proxy_loop(opaque_acceptor_, false));
    spawn(ct_loop());
    return {};
  }

  std::map<std::string, std::string> env() const override {
    return proxy_env(executor::kEgressProxyPort);
  }
  std::map<std::string, std::string> opaque_env() const override {
    return proxy_env(o_.inspection ? kOpaqueProxyPort : executor::kEgressProxyPort);
  }
  static std::map<std::string, std::string> proxy_env(uint16_t port) {
    std::string proxy =
        std::string("http://") + executor::kEgressServiceAddress + ":" + std::to_string(port);
    std::string no_proxy = "localhost,127.0.0.1,::1";
    return {{"HTTP_PROXY", proxy},  {"HTTPS_PROXY", proxy}, {"http_proxy", proxy},
            {"https_proxy", proxy}, {"NO_PROXY", no_proxy}, {"no_proxy", no_proxy}};
  }

  std::string resolv_conf() const override {
    return std::string("nameserver ") + executor::kEgressServiceAddress + "\n";
  }

  Json finish() override {
    {
      std::lock_guard lk(mu_);
      if (finished_) return result_;
      finished_ = true;
    }
    // Close everything on the strand; the coroutines end with errors.
    asio::post(strand_, [this] {
      error_code ec;
      dns_.close(ec);
      dns_tcp_.close(ec);
      acceptor_.close(ec);
      opaque_acceptor_.close(ec);
      ct_.close(ec);
      for (auto& w : relays_)
        if (auto r = w.lock()) {
          r->client.close(ec);
          r->upstream.close(ec);
        }
    });
    {
      std::unique_lock lk(mu_);
      cv_.wait_for(lk, std::chrono::seconds(10), [&] { return active_ == 0; });
    }
    dump_conntrack();
    std::lock_guard lk(mu_);
    // Still open when the job's network went away: ended then.
    for (auto& [id, c] : conns_)
      if (!c.contains("ended")) c["ended"] = timestamp(Clock::now());
    Json conns = Json::array();
    for (const auto& [id, c] : conns_) conns.push_back(c);
    result_ = {{"dns", dns_log_}, {"connections", conns}, {"fetches", fetches_}};
    if (!violations_.empty()) result_["violations"] = violations_;
    return result_;
  }

 private:
  template <typename Aw>
  void spawn(Aw&& aw) {
    {
      std::lock_guard lk(mu_);
      ++active_;
    }
    asio::co_spawn(strand_, std::forward<Aw>(aw), [this](std::exception_ptr) {
      std::lock_guard lk(mu_);
      if (--active_ == 0) cv_.notify_all();
    });
  }

  void note(const std::string& line) {
    if (o_.note) o_.note(line);
  }

  // ---- DNS ----

  awaitable<void> dns_loop() {
    std::vector<char> buf(65536);
    for (;;) {
      udp::endpoint from;
      error_code ec;
      size_t n = co_await dns_.async_receive_from(asio::buffer(buf), from,
                                                  asio::redirect_error(use_awaitable, ec));
      if (ec == asio::error::operation_aborted || !dns_.is_open()) co_return;
      if (ec) continue;
      spawn(dns_answer(std::string(buf.data(), n), from));
    }
  }

  awaitable<void> dns_answer(std::string query, udp::endpoint from) {
    std::string reply = co_await dns_resolve(query, false);
    if (reply.empty()) co_return;
    error_code ec;
    co_await dns_.async_send_to(asio::buffer(reply), from, asio::redirect_error(use_awaitable, ec));
  }

  // Queries over TCP (what resolvers fall back to for a truncated answer):
  // each message length-prefixed, forwarded over TCP.
  awaitable<void> dns_tcp_loop() {
    for (;;) {
      error_code ec;
      tcp::socket s = co_await dns_tcp_.async_accept(asio::redirect_error(use_awaitable, ec));
      if (ec == asio::error::operation_aborted || !dns_tcp_.is_open()) co_return;
      if (ec) continue;
      spawn(dns_tcp_session(std::make_shared<tcp::socket>(std::move(s))));
    }
  }

  awaitable<void> dns_tcp_session(std::shared_ptr<tcp::socket> s) {
    for (;;) {
      error_code ec;
      uint8_t len[2];
      co_await asio::async_read(*s, asio::buffer(len), asio::redirect_error(use_awaitable, ec));
      if (ec) co_return;
      std::string query((len[0] << 8) | len[1], '\0');
      co_await asio::async_read(*s, asio::buffer(query), asio::redirect_error(use_awaitable, ec));
      if (ec) co_return;
      std::string reply = co_await dns_resolve(query, true);
      if (reply.empty()) co_return;
      std::string framed = {static_cast<char>(reply.size() >> 8),
                            static_cast<char>(reply.size() & 0xff)};
      framed += reply;
      co_await asio::async_write(*s, asio::buffer(framed), asio::redirect_error(use_awaitable, ec));
      if (ec) co_return;
    }
  }

  // One query forwarded to the host's resolvers in turn, logged; the reply,
  // SERVFAIL when none answered, empty when the query was not DNS.
  awaitable<std::string> dns_resolve(std::string query, bool over_tcp) {
    auto q = parse_dns_question(query);
    if (!q) co_return std::string();
    auto started = Clock::now();
    std::string reply;
    for (const auto& up : svc_.upstreams()) {
      error_code ec;
      auto addr = asio::ip::make_address(up, ec);
      if (ec) continue;
      if (over_tcp) {
        reply = co_await dns_over_tcp(addr, query);
        if (!reply.empty()) break;
        continue;
      }
      auto s = std::make_shared<udp::socket>(strand_);
      s->open(addr.is_v4() ? udp::v4() : udp::v6(), ec);
      if (ec) continue;
      co_await s->async_send_to(asio::buffer(query), udp::endpoint(addr, 53),
                                asio::redirect_error(use_awaitable, ec));
      if (ec) continue;
      auto timer = std::make_shared<asio::steady_timer>(strand_, std::chrono::seconds(3));
      timer->async_wait([s](error_code e) {
        if (!e) {
          error_code ignored;
          s->cancel(ignored);
        }
      });
      std::vector<char> buf(65536);
      udp::endpoint peer;
      size_t n = 0;
      // Replies from the upstream to this query's id only.
      for (;;) {
        n = co_await s->async_receive_from(asio::buffer(buf), peer,
                                           asio::redirect_error(use_awaitable, ec));
        if (ec || n < 2) break;
        if (peer.address() == addr && static_cast<uint8_t>(buf[0]) == (q->id >> 8) &&
            static_cast<uint8_t>(buf[1]) == (q->id & 0xff))
          break;
      }
      timer->cancel();
      if (ec) continue;
      reply.assign(buf.data(), n);
      break;
    }
    Json entry = {{"name", q->name}, {"type", dns_type_name(q->type)}, {"at", timestamp(started)}};
    if (reply.empty()) {
      reply = dns_error_reply(query, 2);  // SERVFAIL
      entry["rcode"] = "SERVFAIL";
      entry["answers"] = Json::array();
    } else if (auto a = parse_dns_answer(reply)) {
      static const char* names[] = {"NOERROR",  "FORMERR", "SERVFAIL",
                                    "NXDOMAIN", "NOTIMP",  "REFUSED"};
      entry["rcode"] = a->rcode < 6 ? names[a->rcode] : std::to_string(a->rcode);
      entry["answers"] = a->addresses;
      std::vector<uint16_t> ports = allowed_ports(o_.policy, q->name);
      for (const auto& address : a->addresses) {
        {
          std::lock_guard lk(mu_);
          names_[address] = q->name;
        }
        // A name of the allow-list opens its addresses for a little longer
        // than the answer may be cached.
        if (o_.fabric)
          for (uint16_t port : ports)
            if (auto s = o_.fabric->allow_address(address, port, std::chrono::seconds(a->ttl + 60));
                !s)
              note("egress: " + s.error().message());
      }
    }
    if (over_tcp) entry["tcp"] = true;
    {
      std::lock_guard lk(mu_);
      dns_log_.push_back(std::move(entry));
    }
    co_return reply;
  }

  awaitable<std::string> dns_over_tcp(asio::ip::address addr, const std::string& query) {
    auto s = std::make_shared<tcp::socket>(strand_);
    auto timer = std::make_shared<asio::steady_timer>(strand_, std::chrono::seconds(5));
    timer->async_wait([s](error_code e) {
      if (!e) {
        error_code ignored;
        s->close(ignored);
      }
    });
    error_code ec;
    co_await s->async_connect({addr, 53}, asio::redirect_error(use_awaitable, ec));
    std::string framed = {static_cast<char>(query.size() >> 8),
                          static_cast<char>(query.size() & 0xff)};
    framed += query;
    if (!ec)
      co_await asio::async_write(*s, asio::buffer(framed), asio::redirect_error(use_awaitable, ec));
    uint8_t len[2];
    if (!ec)
      co_await asio::async_read(*s, asio::buffer(len), asio::redirect_error(use_awaitable, ec));
    std::string reply;
    if (!ec) {
      reply.resize((len[0] << 8) | len[1]);
      co_await asio::async_read(*s, asio::buffer(reply), asio::redirect_error(use_awaitable, ec));
    }
    timer->cancel();
    co_return ec ? std::string() : reply;
  }

  // ---- proxy ----

  // `inspect`: CONNECT tunnels of this port are inspected.
  awaitable<void> proxy_loop(tcp::acceptor& acceptor, bool inspect) {
    for (;;) {
      error_code ec;
      tcp::socket s = co_await acceptor.async_accept(asio::redirect_error(use_awaitable, ec));
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      if (ec) continue;
      auto r = std::make_shared<Relay>(strand_);
      r->client = std::move(s);
      relays_.push_back(r);
      std::erase_if(relays_, [](const std::weak_ptr<Relay>& w) { return w.expired(); });
      spawn(proxy_session(r, inspect));
    }
  }

  awaitable<void> reply_error(std::shared_ptr<Relay> r, int status, const std::string& reason,
                              const std::string& text) {
    std::string body = "lockstep egress: " + text + "\n";
    std::string resp =
        "HTTP/1.1 " + std::to_string(status) + " " + reason +
        "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\nConnection: close\r\n\r\n" + body;
    error_code ec;
    co_await asio::async_write(r->client, asio::buffer(resp),
                               asio::redirect_error(use_awaitable, ec));
    r->client.shutdown(tcp::socket::shutdown_both, ec);
  }

  awaitable<void> proxy_session(std::shared_ptr<Relay> r, bool inspect) {
    std::string buf;
    std::vector<char> chunk(16384);
    size_t end = std::string::npos;
    while (end == std::string::npos) {
      error_code ec;
      size_t n = co_await r->client.async_read_some(asio::buffer(chunk),
                                                    asio::redirect_error(use_awaitable, ec));
      if (ec) co_return;
      buf.append(chunk.data(), n);
      end = buf.find("\r\n\r\n");
      if (end == std::string::npos && buf.size() > 65536) {
        co_await reply_error(r, 431, "Request Header Fields Too Large", "request head too large");
        co_return;
      }
    }
    std::string head = buf.substr(0, end + 4), rest = buf.substr(end + 4);
    auto req = parse_request_head(head);
    if (!req) {
      co_await reply_error(r, 400, "Bad Request", "not an HTTP request");
      co_return;
    }
    bool connect = req->method == "CONNECT";
    auto t = parse_target(req->target, connect);
    if (!t) {
      co_await reply_error(r, 400, "Bad Request",
                           "cannot proxy '" + req->target + "' (http:// URLs and CONNECT only)");
      co_return;
    }
    if (is_local(t->host)) {
      co_await relay_local(r, *req, *t, connect, rest);
      co_return;
    }
    auto started = Clock::now();
    Json rec = {{"kind", connect ? "connect" : "http"},
                {"host", t->host},
                {"port", t->port},
                {"started", timestamp(started)}};
    if (!connect) {
      rec["url"] = t->url();
      rec["method"] = req->method;
    }
    bool pinned = false;
    std::string pin;
    if (!connect && (req->method == "GET" || req->method == "HEAD")) {
      if (auto it = o_.pins.find(t->url()); it != o_.pins.end()) {
        pinned = true;
        pin = it->second;
      } else if (o_.refuse_unpinned) {
        std::string why = "download " + t->url() + " is not pinned by lockstep.lock (--frozen)";
        violation(why);
        rec["refused"] = "not pinned";
        add_fetch(std::move(rec));
        co_await reply_error(r, 403, "Forbidden", why);
        co_return;
      }
    }
    if (pinned && o_.store) {
      auto d = Digest::parse(pin);
      if (d && o_.store->has(*d)) {
        co_await serve_stored(r, *d, req->method == "HEAD", std::move(rec));
        co_return;
      }
    }
    // Resolve from the host and connect to the first address the policy allows.
    error_code ec;
    tcp::resolver resolver(strand_);
    auto results = co_await resolver.async_resolve(t->host, std::to_string(t->port),
                                                   asio::redirect_error(use_awaitable, ec));
    if (ec) {
      rec["error"] = "cannot resolve " + t->host;
      add_fetch(std::move(rec));
      co_await reply_error(r, 502, "Bad Gateway", "cannot resolve " + t->host);
      co_return;
    }
    std::string refused;
    std::vector<tcp::endpoint> targets;
    auto local = host_addresses();
    for (const auto& e : results) {
      std::string a = e.endpoint().address().to_string();
      // The proxy connects from the host: the host's own addresses are as
      // closed to it as the kernel's rules keep them from the job.
      std::string why =
          local.count(a) ? "the host's own address" : refusal(o_.policy, t->host, a, t->port);
      if (why.empty())
        targets.push_back(e.endpoint());
      else if (refused.empty())
        refused = a + ": " + why;
    }
    if (targets.empty()) {
      std::string what = t->host + ":" + std::to_string(t->port) + " (" + refused + ")";
      note("egress: refused " + std::string(connect ? "CONNECT to " : "request to ") + what);
      rec["refused"] = refused;
      add_fetch(std::move(rec));
      co_await reply_error(r, 403, "Forbidden", "refused " + what);
      co_return;
    }
    if (connect && inspect) {
      // The origin is connected when a request in the tunnel needs it.
      detail::TunnelJob job;
      job.inspection = o_.inspection.get();
      job.store = o_.store;
      job.pins = &o_.pins;
      job.refuse_unpinned = o_.refuse_unpinned;
      job.add_fetch = [this](Json f) { add_fetch(std::move(f)); };
      job.violation = [this](const std::string& why) { violation(why); };
      job.note = [this](const std::string& line) { note(line); };
      job.now = [] { return timestamp(Clock::now()); };
      job.body_strand = r->body_strand;
      co_await detail::run_inspected_tunnel(r->client, r->upstream, *t, std::move(targets), rest,
                                            std::move(job));
      co_return;
    }
    // Every allowed address in the resolver's order until one answers.
    for (const auto& target : targets) {
      error_code ignored;
      r->upstream.close(ignored);
      co_await r->upstream.async_connect(target, asio::redirect_error(use_awaitable, ec));
      rec["address"] = target.address().to_string();
      if (!ec) break;
    }
    if (ec) {
      rec["error"] = "connect: " + ec.message();
      add_fetch(std::move(rec));
      co_await reply_error(r, 502, "Bad Gateway",
                           "cannot connect to " + t->url() + ": " + ec.message());
      co_return;
    }
    if (pinned && o_.store) {
      co_await fetch_pinned(r, *req, *t, pin, rest, std::move(rec));
      co_return;
    }
    std::string first;
    if (connect) {
      std::string ok = "HTTP/1.1 200 Connection established\r\n\r\n";
      co_await asio::async_write(r->client, asio::buffer(ok),
                                 asio::redirect_error(use_awaitable, ec));
      if (ec) co_return;
      first = rest;
    } else {
      r->http = true;
      r->head_only = req->method == "HEAD";
      first = origin_request(*req, *t) + rest;
    }
    r->record = std::move(rec);
    if (!first.empty()) {
      co_await asio::async_write(r->upstream, asio::buffer(first),
                                 asio::redirect_error(use_awaitable, ec));
      if (ec) co_return;
      r->up_bytes += first.size();
    }
    spawn(pump(r, true));
    spawn(pump(r, false));
  }

  bool is_local(const std::string& host) const {
    if (host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0) return true;
    return std::find(o_.local_names.begin(), o_.local_names.end(), host) != o_.local_names.end();
  }

  // A request for the job's own loopback or a service: connected from
  // inside the job's namespace, relayed, not recorded.
  awaitable<void> relay_local(std::shared_ptr<Relay> r, RequestHead req, Target t, bool connect,
                              std::string rest) {
    bool v6 = t.host == "::1";
    auto fd = o_.ns->socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    error_code ec;
    if (fd) r->upstream.assign(v6 ? tcp::v6() : tcp::v4(), fd->release(), ec);
    if (!fd || ec) {
      co_await reply_error(r, 502, "Bad Gateway", "cannot reach " + t.url() + " in the job");
      co_return;
    }
    auto addr = asio::ip::make_address(t.host.rfind("127.", 0) == 0 || v6 ? t.host : "127.0.0.1");
    co_await r->upstream.async_connect({addr, t.port}, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      co_await reply_error(r, 502, "Bad Gateway",
                           "cannot connect to " + t.url() + ": " + ec.message());
      co_return;
    }
    std::string first = rest;
    if (connect) {
      std::string ok = "HTTP/1.1 200 Connection established\r\n\r\n";
      co_await asio::async_write(r->client, asio::buffer(ok),
                                 asio::redirect_error(use_awaitable, ec));
      if (ec) co_return;
    } else {
      first = origin_request(req, t) + rest;
    }
    if (!first.empty()) {
      co_await asio::async_write(r->upstream, asio::buffer(first),
                                 asio::redirect_error(use_awaitable, ec));
      if (ec) co_return;
    }
    r->local = true;
    spawn(pump(r, true));
    spawn(pump(r, false));
  }

  // One direction of a relay; the last pump to end writes the record.
  // Downward, a response's body is hashed (and kept) on the relay's
  // body_strand while this strand writes it to the client and reads the
  // next part into the other buffer; a buffer is read into again only once
  // the body strand is done with it.
  awaitable<void> pump(std::shared_ptr<Relay> r, bool upward) {
    tcp::socket& from = upward ? r->client : r->upstream;
    tcp::socket& to = upward ? r->upstream : r->client;
    std::vector<char> bufs[2] = {std::vector<char>(kRelayBuffer), {}};
    int cur = 0;
    error_code ec;
    size_t n = co_await from.async_read_some(asio::buffer(bufs[0]),
                                             asio::redirect_error(use_awaitable, ec));
    while (!ec) {
      std::string_view data(bufs[cur].data(), n);
      bool absorbing = false;
      if (!upward) {
        std::string_view body = observe_response(*r, data);
        if (!body.empty()) {
          asio::post(r->body_strand, [r, body] { absorb_body(*r, body); });
          absorbing = true;
        }
      }
      co_await asio::async_write(to, asio::buffer(data), asio::redirect_error(use_awaitable, ec));
      if (ec) break;
      (upward ? r->up_bytes : r->down_bytes) += n;
      std::vector<char>& next = bufs[1 - cur];
      if (next.empty()) next.resize(kRelayBuffer);
      n = co_await from.async_read_some(asio::buffer(next),
                                        asio::redirect_error(use_awaitable, ec));
      // The body strand is done with this buffer: it may be read into next.
      if (absorbing) co_await asio::post(r->body_strand, use_awaitable);
      cur = 1 - cur;
    }
    // Whatever of the body is still being hashed is done before the record.
    if (!upward) co_await asio::post(r->body_strand, use_awaitable);
    to.shutdown(tcp::socket::shutdown_send, ec);
    if (!upward) {
      from.close(ec);
      // The origin is done: so is the client's request.
      to.close(ec);
    }
    if (--r->pumps > 0 || r->local) co_return;
    Json rec = std::move(r->record);
    rec["ended"] = timestamp(Clock::now());
    rec["bytes_out"] = r->up_bytes;
    rec["bytes_in"] = r->down_bytes;
    if (r->http) {
      auto resp = parse_response_head(r->head);
      if (resp) {
        rec["status"] = resp->status;
        rec["body_bytes"] = r->body_bytes;
        // A body cut short (the origin closed before Content-Length bytes,
        // or before the last chunk) is recorded with its digest but never
        // kept as the URL's content.
        bool complete = r->chunked ? r->decoder.done()
                                   : !r->content_length || r->body_bytes == *r->content_length;
        if (!complete) rec["incomplete"] = true;
        if (r->blob && r->blob_ok) {
          // The commit's fsync waits on the body strand, not on the job's.
          asio::post(r->body_strand, [r] { r->committed.emplace(r->blob->commit()); });
          co_await asio::post(r->body_strand, use_awaitable);
        }
        if (!r->blob) {
          rec["sha256"] = r->sha.finish().str();
        } else if (auto d = r->blob_ok ? std::move(*r->committed)
                                       : Result<Digest>(fail("write failed"))) {
          // The store hashed the body as it wrote it.
          rec["sha256"] = d->str();
          if (complete) rec["stored"] = true;
        } else {
          rec["error"] = "content store: " + d.error().message();
        }
      }
    }
    add_fetch(std::move(rec));
  }

  // A pinned URL whose body is in the store: served from there, the origin
  // never asked.
  awaitable<void> serve_stored(std::shared_ptr<Relay> r, Digest d, bool head_only, Json rec) {
    error_code ec;
    auto fd = o_.store->open(d);
    auto size = o_.store->size(d);
    if (!fd || !size) {
      co_await reply_error(r, 502, "Bad Gateway",
                           "cannot read the stored body of " + rec.value("url", ""));
      co_return;
    }
    std::string head = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(*size) +
                       "\r\nConnection: close\r\n\r\n";
    co_await asio::async_write(r->client, asio::buffer(head),
                               asio::redirect_error(use_awaitable, ec));
    uint64_t sent = 0;
    std::vector<char> buf(256 * 1024);
    while (!ec && !head_only) {
      ssize_t n = ::read(fd->get(), buf.data(), buf.size());
      if (n <= 0) break;
      co_await asio::async_write(r->client, asio::buffer(buf.data(), static_cast<size_t>(n)),
                                 asio::redirect_error(use_awaitable, ec));
      sent += static_cast<uint64_t>(n);
    }
    r->client.shutdown(tcp::socket::shutdown_both, ec);
    rec["status"] = 200;
    rec["sha256"] = d.str();
    rec["body_bytes"] = head_only ? 0 : sent;
    rec["served"] = "store";
    rec["pinned"] = true;
    rec["ended"] = timestamp(Clock::now());
    add_fetch(std::move(rec));
  }

  // A pinned URL not in the store yet: the whole body from the origin into
  // the store first, checked against the pin, then served from the store.
  awaitable<void> fetch_pinned(std::shared_ptr<Relay> r, RequestHead req, Target t, std::string pin,
                               std::string rest, Json rec) {
    error_code ec;
    RequestHead get = req;
    get.method = "GET";
    std::string out = origin_request(get, t) + rest;
    co_await asio::async_write(r->upstream, asio::buffer(out),
                               asio::redirect_error(use_awaitable, ec));
    std::string head;
    std::vector<char> buf(256 * 1024);
    // The store hashes the body as it writes it: that digest is checked
    // against the pin.
    auto writer = o_.store->writer();
    Status written;
    ChunkedDecoder decoder;
    bool chunked = false, in_body = false;
    int status = 0;
    uint64_t bytes = 0;
    auto content = [&](std::string_view c) {
      bytes += c.size();
      if (writer && written) written = writer->write(c);
    };
    while (!ec) {
      size_t n = co_await r->upstream.async_read_some(asio::buffer(buf),
                                                      asio::redirect_error(use_awaitable, ec));
      if (ec) break;
      std::string_view data(buf.data(), n);
      if (!in_body) {
        size_t before = head.size();
        head.append(data);
        size_t end = head.find("\r\n\r\n");
        if (end == std::string::npos) continue;
        data = data.substr(end + 4 - before);
        head.resize(end + 4);
        in_body = true;
        auto resp = parse_response_head(head);
        status = resp ? resp->status : 0;
        auto te = resp ? header(resp->headers, "transfer-encoding") : std::nullopt;
        chunked = te && te->find("chunked") != std::string::npos;
      }
      if (chunked)
        decoder.feed(data, content);
      else
        content(data);
    }
    error_code ignored;
    r->upstream.close(ignored);
    std::string url = t.url();
    rec["status"] = status;
    rec["body_bytes"] = bytes;
    rec["ended"] = timestamp(Clock::now());
    if (status != 200 || (chunked && !decoder.done()) || !writer || !written) {
      std::string why = "pinned download " + url + ": the origin answered " +
                        (status ? std::to_string(status) : std::string("nothing")) +
                        (!writer    ? " (the content store: " + writer.error().message() + ")"
                         : !written ? " (the content store: " + written.error().message() + ")"
                                    : "");
      violation(why);
      rec["error"] = why;
      add_fetch(std::move(rec));
      co_await reply_error(r, 502, "Bad Gateway", why);
      co_return;
    }
    Digest got = writer->digest();
    rec["sha256"] = got.str();
    if (got.str() != pin) {
      std::string why = "download " + url + " has " + got.str() + ", lockstep.lock pins " + pin;
      violation(why);
      rec["refused"] = "does not match its pin " + pin;
      add_fetch(std::move(rec));
      co_await reply_error(r, 502, "Bad Gateway", why);
      co_return;
    }
    auto committed = writer->commit();
    if (!committed) {
      co_await reply_error(r, 502, "Bad Gateway",
                           "store " + url + ": " + committed.error().message());
      co_return;
    }
    rec.erase("status");
    co_await serve_stored(r, got, req.method == "HEAD", std::move(rec));
  }

  void violation(const std::string& why) {
    note("egress: " + why);
    std::lock_guard lk(mu_);
    violations_.push_back(why);
  }

  // Follows the response's head; returns the part of `data` that is body
  // to hash (none for a HEAD request, or what is not HTTP).
  std::string_view observe_response(Relay& r, std::string_view data) {
    if (!r.http) return {};
    if (!r.in_body) {
      size_t before = r.head.size();
      r.head.append(data);
      size_t end = r.head.find("\r\n\r\n");
      if (end == std::string::npos) {
        if (r.head.size() > 65536) r.http = false;
        return {};
      }
      data = data.substr(end + 4 - before);
      r.head.resize(end + 4);
      r.in_body = true;
      auto resp = parse_response_head(r.head);
      if (!resp) {
        r.http = false;
        return {};
      }
      auto te = header(resp->headers, "transfer-encoding");
      r.chunked = te && te->find("chunked") != std::string::npos;
      if (auto cl = header(resp->headers, "content-length"); cl && !r.chunked) {
        char* rest = nullptr;
        errno = 0;
        unsigned long long v = std::strtoull(cl->c_str(), &rest, 10);
        if (errno == 0 && rest != cl->c_str() && *rest == '\0') r.content_length = v;
      }
      if (o_.store && resp->status == 200 && !r.head_only) {
        auto w = o_.store->writer();
        if (w) r.blob.emplace(std::move(*w));
      }
    }
    if (r.head_only) return {};
    return data;
  }

  void add_fetch(Json rec) {
    std::lock_guard lk(mu_);
    fetches_.push_back(std::move(rec));
  }

  // ---- connection log ----

  awaitable<void> ct_loop() {
    std::vector<char> buf(1 << 16);
    for (;;) {
      error_code ec;
      size_t n =
          co_await ct_.async_read_some(asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
      if (ec == asio::error::operation_aborted || !ct_.is_open()) co_return;
      if (ec) continue;  // ENOBUFS: events were lost; the final dump fills in
      for (auto& e : parse_ct_messages(std::string_view(buf.data(), n))) on_ct(e);
    }
  }

  void on_ct(const CtEvent& e) {
    if (e.dst.starts_with("127.") || e.dst == "::1") return;
    std::string refused_line;
    {
      std::lock_guard lk(mu_);
      Json& c = conns_[e.id];
      if (c.is_null()) {
        std::string host = names_.count(e.dst) ? names_[e.dst] : "";
        auto start = e.start_ns ? from_ns(e.start_ns) : Clock::now();
        c = {{"proto", e.proto},
             {"address", e.dst},
             {"port", e.dport},
             {"host", host},
             {"started", timestamp(start)},
             {"bytes_out", 0},
             {"bytes_in", 0}};
        std::string why = local_.count(e.dst) ? "the host's own address"
                                              : refusal(o_.policy, host, e.dst, e.dport);
        if (!why.empty()) {
          c["refused"] = why;
          refused_line = "egress: refused " + e.proto + " connection to " +
                         (host.empty() ? "" : host + " ") + e.dst + ":" + std::to_string(e.dport) +
                         " (" + why + ")";
        }
      }
      if (e.kind == CtEvent::kDestroy || e.kind == CtEvent::kDump) {
        c["bytes_out"] = e.bytes_out;
        c["bytes_in"] = e.bytes_in;
      }
      // Ended: when TCP began to close (the entry lingers in TIME_WAIT), else
      // when the kernel dropped it.
      if (!c.contains("ended") && e.tcp_closing() && e.kind == CtEvent::kUpdate)
        c["ended"] = timestamp(Clock::now());
      if (e.kind == CtEvent::kDestroy && !c.contains("ended"))
        c["ended"] = timestamp(e.stop_ns ? from_ns(e.stop_ns) : Clock::now());
    }
    if (!refused_line.empty()) note(refused_line);
  }

  // Connections still in the table: their counts so far.
  void dump_conntrack() {
    std::string req = ct_dump_request(1);
    if (o_.netlink_request) {
      auto fd = o_.netlink_request(req);
      if (!fd) return;
      ct_dump_fd_ = std::move(*fd);
    } else {
      if (!ct_dump_fd_) return;
      sockaddr_nl sa{};
      sa.nl_family = AF_NETLINK;
      if (::sendto(ct_dump_fd_.get(), req.data(), req.size(), 0, reinterpret_cast<sockaddr*>(&sa),
                   sizeof sa) < 0)
        return;
    }
    std::vector<char> buf(1 << 16);
    for (;;) {
      ssize_t n = ::recv(ct_dump_fd_.get(), buf.data(), buf.size(), 0);
      if (n <= 0) break;
      std::string_view d(buf.data(), static_cast<size_t>(n));
      for (auto& e : parse_ct_messages(d)) on_ct(e);
      bool done = false;
      for (size_t pos = 0; pos + NLMSG_HDRLEN <= d.size();) {
        nlmsghdr h;
        std::memcpy(&h, d.data() + pos, sizeof h);
        if (h.nlmsg_type == NLMSG_DONE || h.nlmsg_type == NLMSG_ERROR) done = true;
        if (h.nlmsg_len < NLMSG_HDRLEN) break;
        pos += NLMSG_ALIGN(h.nlmsg_len);
      }
      if (done) break;
    }
    ct_dump_fd_.reset();
  }

  ServiceImpl& svc_;
  JobEgressOptions o_;
  Strand strand_;
  udp::socket dns_;
  tcp::acceptor dns_tcp_;
  tcp::acceptor acceptor_;
  tcp::acceptor opaque_acceptor_;  // under inspection only
  asio::posix::stream_descriptor ct_;
  UniqueFd ct_dump_fd_;
  std::vector<std::weak_ptr<Relay>> relays_;  // strand only

  std::mutex mu_;
  std::condition_variable cv_;
  int active_ = 0;
  bool finished_ = false;
  Json result_;
  Json dns_log_ = Json::array();
  Json fetches_ = Json::array();
  Json violations_ = Json::array();
  std::map<uint32_t, Json> conns_;
  std::map<std::string, std::string> names_;        // address -> the name it was resolved from
  std::set<std::string> local_ = host_addresses();  // the kernel refuses these to jobs
};

}  // namespace

Result<std::unique_ptr<Service>> make_service(const std::string& resolv_conf) {
  // As the C library resolves: without the file, or without a nameserver in
  // it, the host's own 127.0.0.1 (a host with no network at all still gives
  // its jobs their network; their names of the outside just do not resolve).
  std::vector<std::string> servers;
  std::error_code ec;
  if (std::filesystem::exists(resolv_conf, ec) || ec) {
    auto text = read_file(resolv_conf);
    if (!text) return fail(std::move(text.error()).context("egress: read the host's resolvers"));
    servers = parse_nameservers(*text);
  }
  if (servers.empty()) servers.push_back("127.0.0.1");
  return std::unique_ptr<Service>(std::make_unique<ServiceImpl>(std::move(servers)));
}

Result<std::unique_ptr<JobEgress>> start_job_egress(Service& service, JobEgressOptions options) {
  if (!options.ns) return fail("egress for " + options.name + ": no network namespace");
  auto j = std::make_unique<JobEgressImpl>(static_cast<ServiceImpl&>(service), std::move(options));
  LS_TRY(j->start());
  return std::unique_ptr<JobEgress>(std::move(j));
}

}  // namespace lockstep::egress
