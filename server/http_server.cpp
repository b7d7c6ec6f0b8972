#include "server/http_server.hpp"

// Asio's scheduler trips GCC 12's flow-based -Wnull-dereference once inlined
// (a false positive in its op queue); only for this file.
#pragma GCC diagnostic ignored "-Wnull-dereference"

#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

namespace lockstep::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::string url_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() &&
               std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

namespace {

const char* reason(int status) {
  return http::obsolete_reason(static_cast<http::status>(status)).data();
}

}  // namespace

struct HttpServer::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  HttpHandler handler;
  size_t max_connections = 256;
  size_t max_body = 16u << 20;
  std::atomic<bool> stopping{false};
  std::mutex mu;
  std::set<int> open_fds;        // connections, for shutdown on stop
  std::condition_variable idle;  // signalled when a connection ends
  size_t live = 0;               // connections being served (under mu)

  void serve(tcp::socket sock) {
    int fd = sock.native_handle();
    // Idle keep-alive connections are closed after a minute.
    timeval tv{60, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    beast::flat_buffer buf;
    for (;;) {
      beast::error_code ec;
      http::request_parser<http::string_body> parser;
      parser.body_limit(max_body);
      http::read(sock, buf, parser, ec);
      if (ec) {
        if (ec == http::error::body_limit) {
          http::response<http::string_body> res{http::status::payload_too_large, 11};
          res.set(http::field::content_type, "text/plain");
          res.body() = "request body too large\n";
          res.prepare_payload();
          http::write(sock, res, ec);
        }
        break;
      }
      auto& req = parser.get();
      HttpRequest r;
      r.method = std::string(req.method_string());
      std::string target(req.target());
      auto q = target.find('?');
      r.path = url_decode(target.substr(0, q));
      if (q != std::string::npos) {
        std::string_view qs(target);
        qs.remove_prefix(q + 1);
        while (!qs.empty()) {
          auto amp = qs.find('&');
          std::string_view kv = qs.substr(0, amp);
          auto eq = kv.find('=');
          r.query[url_decode(kv.substr(0, eq))] =
              eq == std::string_view::npos ? "" : url_decode(kv.substr(eq + 1));
          if (amp == std::string_view::npos) break;
          qs.remove_prefix(amp + 1);
        }
      }
      for (const auto& f : req) {
        std::string name(f.name_string());
        for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        r.headers[name] = std::string(f.value());
      }
      r.body = std::move(req.body());
      bool keep = req.keep_alive();
      HttpResponse out;
      try {
        out = handler(r);
      } catch (const std::exception& e) {
        out = HttpResponse{500, "text/plain", std::string("internal error: ") + e.what() + "\n"};
      }
      if (out.stream) {
        std::string head = "HTTP/1.1 " + std::to_string(out.status) + " " + reason(out.status) +
                           "\r\nContent-Type: " + out.content_type +
                           "\r\nCache-Control: no-cache\r\nConnection: close\r\n";
        for (const auto& [k, v] : out.headers) head += k + ": " + v + "\r\n";
        head += "\r\n";
        asio::write(sock, asio::buffer(head), ec);
        if (ec) break;
        out.stream([&](std::string_view data) {
          if (stopping) return false;
          beast::error_code wec;
          asio::write(sock, asio::buffer(data.data(), data.size()), wec);
          return !wec;
        });
        break;
      }
      http::response<http::string_body> res{static_cast<http::status>(out.status), req.version()};
      res.set(http::field::content_type, out.content_type);
      res.set(http::field::server, "lockstep");
      for (const auto& [k, v] : out.headers) res.set(k, v);
      res.body() = std::move(out.body);
      res.keep_alive(keep && !stopping);
      res.prepare_payload();
      http::write(sock, res, ec);
      if (ec || !keep || stopping) break;
    }
    beast::error_code ec;
    {
      std::lock_guard lk(mu);
      open_fds.erase(fd);
    }
    sock.shutdown(tcp::socket::shutdown_both, ec);
    sock.close(ec);
    std::lock_guard lk(mu);
    --live;
    idle.notify_all();
  }
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpServer::~HttpServer() {
  stop();
  std::unique_lock lk(impl_->mu);
  impl_->idle.wait(lk, [&] { return impl_->live == 0; });
}

Result<std::unique_ptr<HttpServer>> HttpServer::listen(const std::string& address,
                                                       HttpHandler handler, size_t max_connections,
                                                       size_t max_body) {
  auto impl = std::make_unique<Impl>();
  impl->handler = std::move(handler);
  impl->max_connections = max_connections;
  impl->max_body = max_body;
  auto colon = address.rfind(':');
  if (colon == std::string::npos)
    return fail("listen address '" + address + "' is not host:port", ErrorKind::kUsage);
  std::string host = address.substr(0, colon);
  if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
  beast::error_code ec;
  auto ip = asio::ip::make_address(host, ec);
  if (ec) return fail("listen address '" + address + "': " + ec.message(), ErrorKind::kUsage);
  int port = 0;
  try {
    port = std::stoi(address.substr(colon + 1));
  } catch (...) {
    return fail("listen address '" + address + "' has no port number", ErrorKind::kUsage);
  }
  tcp::endpoint ep(ip, static_cast<uint16_t>(port));
  impl->acceptor.open(ep.protocol(), ec);
  if (!ec) impl->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(ep, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail(Error("listen on " + address + ": " + ec.message(), ec.value()));
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

uint16_t HttpServer::port() const {
  beast::error_code ec;
  return impl_->acceptor.local_endpoint(ec).port();
}

void HttpServer::run() {
  auto& im = *impl_;
  int lfd = im.acceptor.native_handle();
  while (!im.stopping) {
    pollfd p{lfd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    beast::error_code ec;
    tcp::socket sock(im.io);
    im.acceptor.accept(sock, ec);
    if (ec) continue;
    {
      std::lock_guard lk(im.mu);
      if (im.live >= im.max_connections) {
        // Over the limit: answer at once rather than queueing forever.
        std::string busy =
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        asio::write(sock, asio::buffer(busy), ec);
        continue;
      }
      ++im.live;
      im.open_fds.insert(sock.native_handle());
    }
    // Detached: the destructor waits for `live` to reach zero.
    std::thread([&im, s = std::move(sock)]() mutable { im.serve(std::move(s)); }).detach();
  }
}

void HttpServer::stop() {
  auto& im = *impl_;
  if (im.stopping.exchange(true)) return;
  std::lock_guard lk(im.mu);
  for (int fd : im.open_fds) ::shutdown(fd, SHUT_RDWR);
}

}  // namespace lockstep::server
