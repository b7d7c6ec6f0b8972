#pragma once
// A thin, synchronous HTTP layer over one libcurl easy handle. Connections
// are kept alive between requests on the same HttpSession. Redirects are not
// followed here: the registry client follows them itself so that it can drop
// credentials when a redirect leaves the registry's host.
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.hpp"

namespace lockstep::registry {

struct HttpResponse;

struct HttpRequest {
  std::string method = "GET";  // GET, HEAD, PUT, POST, PATCH, DELETE
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string_view body;             // sent for PUT/POST/PATCH
  // When set, the body of a 2xx response is handed here chunk by chunk
  // instead of being collected; an error aborts the transfer and is returned
  // from perform() as is.
  std::function<Status(const char*, size_t)> on_data;
  // Called once, before the first on_data chunk, with the 2xx status and the
  // headers received so far (e.g. to check a 206's Content-Range).
  std::function<Status(long status, const HttpResponse&)> on_start;
  // Largest body collected into HttpResponse::body (non-streamed responses
  // and error bodies); more is an error.
  size_t max_body = 8u << 20;
  // Whole-request time limit in milliseconds (0: none): for callers that
  // must act by a deadline (an agent renewing its lease).
  long timeout_ms = 0;
};

struct HttpResponse {
  long status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::string body;                                          // collected body (empty when streamed)
  std::string redirect_url;                                  // absolute Location for 3xx responses
  uint64_t bytes_streamed = 0;

  // Last header of that name (case-insensitive), if any.
  std::optional<std::string> header(std::string_view name) const;
};

// Transport failures (no HTTP response at all) come back as an Error of kind
// kUnavailable whose errnum is the socket errno when curl knows it, and whose
// message is the reason alone ("Connection refused", "Operation timed out").
// A transfer cut short after some body bytes arrived is such a failure too;
// HttpResponse::bytes_streamed is then lost, so callers that resume count the
// bytes they were handed.
class HttpSession {
 public:
  HttpSession();
  ~HttpSession();
  HttpSession(HttpSession&&) noexcept;
  HttpSession& operator=(HttpSession&&) noexcept;

  Result<HttpResponse> perform(const HttpRequest& req);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "http://a:1/x" -> "http://a:1": scheme, host and port, for comparing origins.
std::string url_origin(std::string_view url);
// Resolves a possibly relative URL (a Location header) against base.
std::string url_resolve(std::string_view base, std::string_view relative);
// Percent-encodes a query parameter value.
std::string url_escape(std::string_view s);

}  // namespace lockstep::registry
