#include "http_proxy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <sstream>

namespace lockstep::registry::testing {
namespace {

bool send_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Reads until the connection closes (or 5 s of silence).
std::string read_to_eof(int fd) {
  std::string out;
  char buf[65536];
  while (true) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) break;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace

HttpProxy::HttpProxy(int upstream_port, Hook hook)
    : upstream_(upstream_port), hook_(std::move(hook)) {
  listener_ = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(listener_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::listen(listener_.get(), 64);
  ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

HttpProxy::~HttpProxy() {
  stop_ = true;
  ::shutdown(listener_.get(), SHUT_RDWR);
  acceptor_.join();
  std::vector<std::thread> w;
  {
    std::lock_guard lock(mu_);
    w.swap(workers_);
  }
  for (auto& t : w) t.join();
}

int HttpProxy::count(const std::string& prefix) const {
  std::lock_guard lock(mu_);
  return static_cast<int>(std::count_if(
      seen_.begin(), seen_.end(), [&](const std::string& s) { return s.rfind(prefix, 0) == 0; }));
}

std::string HttpProxy::response(int status, const std::string& reason,
                                const std::vector<std::string>& headers, const std::string& body) {
  std::string r = "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\n";
  for (const auto& h : headers) r += h + "\r\n";
  r += "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
  return r;
}

void HttpProxy::accept_loop() {
  while (!stop_) {
    int c = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;
    }
    std::lock_guard lock(mu_);
    workers_.emplace_back([this, c] { serve(UniqueFd(c)); });
  }
}

void HttpProxy::serve(UniqueFd client) {
  // The request head (and a Content-Length body, if any).
  std::string in;
  char buf[65536];
  size_t head_end = std::string::npos;
  while ((head_end = in.find("\r\n\r\n")) == std::string::npos) {
    pollfd p{client.get(), POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) return;
    ssize_t n = ::recv(client.get(), buf, sizeof buf, 0);
    if (n <= 0) return;
    in.append(buf, static_cast<size_t>(n));
  }
  ProxyRequest req;
  std::istringstream lines(in.substr(0, head_end));
  std::string line;
  std::getline(lines, line);
  std::istringstream first(line);
  first >> req.method >> req.target;
  std::string upstream_head = line.substr(0, line.find('\r')) + "\r\n";
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    req.headers[name] = value;
    if (name == "connection" || name == "host") continue;
    upstream_head += line + "\r\n";
  }
  upstream_head += "Host: 127.0.0.1:" + std::to_string(upstream_) + "\r\nConnection: close\r\n\r\n";
  size_t body_len = 0;
  if (auto it = req.headers.find("content-length"); it != req.headers.end())
    body_len = std::stoul(it->second);
  std::string body = in.substr(head_end + 4);
  while (body.size() < body_len) {
    ssize_t n = ::recv(client.get(), buf, sizeof buf, 0);
    if (n <= 0) return;
    body.append(buf, static_cast<size_t>(n));
  }
  {
    std::lock_guard lock(mu_);
    seen_.push_back(req.target);
  }
  ProxyAction act = hook_ ? hook_(req) : ProxyAction{};
  if (act.respond) {
    send_all(client.get(), act.respond->data(), act.respond->size());
    return;
  }
  UniqueFd up(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(upstream_));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(up.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return;
  if (!send_all(up.get(), upstream_head.data(), upstream_head.size()) ||
      !send_all(up.get(), body.data(), body.size()))
    return;
  std::string resp = read_to_eof(up.get());
  size_t resp_head = resp.find("\r\n\r\n");
  if (resp_head == std::string::npos) return;
  size_t body_at = resp_head + 4;
  if (act.tamper && resp.size() > body_at) resp[body_at] = static_cast<char>(resp[body_at] ^ 0x01);
  size_t send_len = resp.size();
  if (act.cut_after) send_len = std::min(resp.size(), body_at + *act.cut_after);
  send_all(client.get(), resp.data(), send_len);
}

}  // namespace lockstep::registry::testing
