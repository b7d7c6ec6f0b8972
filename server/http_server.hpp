#pragma once
// A small HTTP/1.1 server for the API, the UI and webhooks: one thread per
// connection (long polls and event streams each hold one), at most
// `max_connections` at once, keep-alive with an idle limit. Boost.Beast
// stays in http_server.cpp.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace lockstep::server {

struct HttpRequest {
  std::string method;
  std::string path;                            // without the query
  std::map<std::string, std::string> query;    // decoded
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
  std::string param(const std::string& name) const {
    auto it = query.find(name);
    return it == query.end() ? std::string() : it->second;
  }
};

// Writes to a streaming response; false once the client is gone.
using StreamWrite = std::function<bool(std::string_view)>;

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, the body is streamed by this function instead (the connection
  // closes after it returns): Server-Sent Events.
  std::function<void(const StreamWrite&)> stream;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

class HttpServer {
 public:
  // Binds "host:port" (port 0 picks one).
  static Result<std::unique_ptr<HttpServer>> listen(const std::string& address, HttpHandler handler,
                                                    size_t max_connections = 256,
                                                    size_t max_body = 16u << 20);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  uint16_t port() const;
  // Accepts until stop(); then closes every connection and waits for their
  // threads.
  void run();
  void stop();

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

std::string url_decode(std::string_view s);

}  // namespace lockstep::server
