#pragma once
// What the recording proxy reads of HTTP/1.1 (RFC 9112): request and
// response heads, the target of a proxy request, and chunked bodies (decoded
// only to hash the content; the bytes are relayed as they came). Pure.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lockstep::egress {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct RequestHead {
  std::string method, target, version;
  Headers headers;
};

struct ResponseHead {
  int status = 0;
  Headers headers;
};

// `head` ends with the empty line. nullopt: not HTTP.
std::optional<RequestHead> parse_request_head(std::string_view head);
std::optional<ResponseHead> parse_response_head(std::string_view head);
// Case-insensitive; the first one; nullopt when absent.
std::optional<std::string> header(const Headers& h, std::string_view name);

struct Target {
  std::string scheme;  // "http", or "" for CONNECT's authority form
  std::string host;    // without brackets
  uint16_t port = 0;
  std::string path;  // origin form, "/" at least
  std::string url() const;
};
// "http://host[:port]/path" (absolute form) or, for CONNECT, "host:port".
// nullopt for anything else, and for a target with a byte that is not
// printable ASCII.
std::optional<Target> parse_target(std::string_view target, bool connect);

// The request as sent to the origin: origin-form target, hop-by-hop and
// Proxy-* headers removed, "Connection: close" (one request per connection).
std::string origin_request(const RequestHead& req, const Target& t);

// Decodes a chunked body incrementally; `content` gets the payload bytes.
class ChunkedDecoder {
 public:
  // Returns false once the framing is invalid (then nothing more is decoded).
  bool feed(std::string_view data, const std::function<void(std::string_view)>& content);
  bool done() const { return state_ == State::kDone; }
  // How many bytes of the last feed() belonged to the body (all of them
  // unless it ended within them).
  size_t used() const { return used_; }

 private:
  enum class State { kSize, kSizeExt, kSizeLf, kData, kDataCr, kDataLf, kTrailer, kDone, kBad };
  State state_ = State::kSize;
  uint64_t left_ = 0;
  size_t used_ = 0;
  bool size_digits_ = false;
  std::string trailer_line_;
};

}  // namespace lockstep::egress
