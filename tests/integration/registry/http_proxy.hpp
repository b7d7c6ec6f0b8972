#pragma once
// A small HTTP/1.1 proxy in front of a real registry, for the tests that need
// a misbehaving network or an auth front: one request per connection (it
// forces "Connection: close" upstream), a hook per request that can answer
// itself, flip a byte of the response body, or cut the body after N bytes.
// Runs on its own threads on a loopback port; stops and joins on destruction.
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/fd.hpp"

namespace lockstep::registry::testing {

struct ProxyRequest {
  std::string method;
  std::string target;                          // "/v2/app/blobs/sha256:..."
  std::map<std::string, std::string> headers;  // names lowercased
};

struct ProxyAction {
  std::optional<std::string> respond;  // a whole raw HTTP response: sent instead of forwarding
  bool tamper = false;                 // flip the first byte of the upstream body
  std::optional<size_t> cut_after;     // send only this many body bytes, then close
};

class HttpProxy {
 public:
  using Hook = std::function<ProxyAction(const ProxyRequest&)>;
  // Forwards to 127.0.0.1:upstream_port (0: nothing is forwarded, the hook answers all).
  HttpProxy(int upstream_port, Hook hook);
  ~HttpProxy();
  HttpProxy(const HttpProxy&) = delete;
  HttpProxy& operator=(const HttpProxy&) = delete;

  int port() const { return port_; }
  std::string domain() const { return "127.0.0.1:" + std::to_string(port_); }
  // Requests seen whose target starts with `prefix`.
  int count(const std::string& prefix) const;

  static std::string response(int status, const std::string& reason,
                              const std::vector<std::string>& headers, const std::string& body);

 private:
  void accept_loop();
  void serve(UniqueFd client);

  int upstream_;
  Hook hook_;
  UniqueFd listener_;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::vector<std::thread> workers_;
  std::vector<std::string> seen_;
};

}  // namespace lockstep::registry::testing
