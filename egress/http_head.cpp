#include "egress/http_head.hpp"

#include <algorithm>
#include <cctype>

namespace lockstep::egress {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// Splits the head into its first line and header fields.
std::optional<std::pair<std::string_view, Headers>> split_head(std::string_view head) {
  size_t eol = head.find("\r\n");
  if (eol == std::string_view::npos) return std::nullopt;
  std::string_view first = head.substr(0, eol);
  Headers h;
  size_t pos = eol + 2;
  while (pos < head.size()) {
    size_t end = head.find("\r\n", pos);
    if (end == std::string_view::npos) end = head.size();
    std::string_view line = head.substr(pos, end - pos);
    pos = end + 2;
    if (line.empty()) break;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    h.emplace_back(std::string(line.substr(0, colon)), std::string(trim(line.substr(colon + 1))));
  }
  return std::make_pair(first, std::move(h));
}

}  // namespace

std::optional<RequestHead> parse_request_head(std::string_view head) {
  auto parts = split_head(head);
  if (!parts) return std::nullopt;
  std::string_view first = parts->first;
  size_t a = first.find(' ');
  size_t b = a == std::string_view::npos ? a : first.find(' ', a + 1);
  if (b == std::string_view::npos) return std::nullopt;
  RequestHead r;
  r.method = first.substr(0, a);
  r.target = first.substr(a + 1, b - a - 1);
  r.version = first.substr(b + 1);
  if (r.method.empty() || r.target.empty() || !r.version.starts_with("HTTP/1."))
    return std::nullopt;
  r.headers = std::move(parts->second);
  return r;
}

std::optional<ResponseHead> parse_response_head(std::string_view head) {
  auto parts = split_head(head);
  if (!parts) return std::nullopt;
  std::string_view first = parts->first;
  if (!first.starts_with("HTTP/1.") || first.size() < 12) return std::nullopt;
  ResponseHead r;
  std::string_view code = first.substr(9, 3);
  if (!std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  r.status = std::stoi(std::string(code));
  r.headers = std::move(parts->second);
  return r;
}

std::optional<std::string> header(const Headers& h, std::string_view name) {
  for (const auto& [k, v] : h)
    if (iequals(k, name)) return v;
  return std::nullopt;
}

std::string Target::url() const {
  std::string hostpart = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if (scheme.empty()) return hostpart + ":" + std::to_string(port);
  bool dflt = (scheme == "http" && port == 80) || (scheme == "https" && port == 443);
  return scheme + "://" + hostpart + (dflt ? "" : ":" + std::to_string(port)) + path;
}

std::optional<Target> parse_target(std::string_view target, bool connect) {
  // A request target is ASCII (RFC 9112; anything else is percent-encoded):
  // what a job sends here ends up in its record and its hashes as text.
  if (!std::all_of(target.begin(), target.end(), [](char c) {
        auto b = static_cast<unsigned char>(c);
        return b > 0x20 && b < 0x7F;
      }))
    return std::nullopt;
  Target t;
  std::string_view authority = target;
  if (!connect) {
    size_t colon = target.find("://");
    if (colon == std::string_view::npos) return std::nullopt;
    t.scheme = std::string(target.substr(0, colon));
    std::transform(t.scheme.begin(), t.scheme.end(), t.scheme.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (t.scheme != "http") return std::nullopt;
    std::string_view rest = target.substr(colon + 3);
    size_t slash = rest.find_first_of("/?#");
    authority = rest.substr(0, slash);
    t.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
    if (t.path[0] != '/') t.path = "/" + t.path;
    if (auto hash = t.path.find('#'); hash != std::string::npos) t.path.resize(hash);
    t.port = 80;
  }
  if (authority.find('@') != std::string_view::npos || authority.empty()) return std::nullopt;
  std::string_view host = authority, port;
  if (authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':') return std::nullopt;
      port = after.substr(1);
    }
  } else if (size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return std::nullopt;
  t.host = std::string(host);
  std::transform(t.host.begin(), t.host.end(), t.host.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (!port.empty()) {
    if (port.size() > 5 ||
        !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return std::nullopt;
    int p = std::stoi(std::string(port));
    if (p <= 0 || p > 65535) return std::nullopt;
    t.port = static_cast<uint16_t>(p);
  } else if (connect) {
    return std::nullopt;
  }
  return t;
}

std::string origin_request(const RequestHead& req, const Target& t) {
  std::string out = req.method + " " + t.path + " HTTP/1.1\r\n";
  bool host_seen = false;
  for (const auto& [k, v] : req.headers) {
    if (iequals(k, "connection") || iequals(k, "proxy-connection") || iequals(k, "keep-alive") ||
        iequals(k, "proxy-authorization") || iequals(k, "te") || iequals(k, "upgrade"))
      continue;
    if (iequals(k, "host")) host_seen = true;
    out += k + ": " + v + "\r\n";
  }
  if (!host_seen) {
    std::string hostpart = t.host.find(':') != std::string::npos ? "[" + t.host + "]" : t.host;
    out += "Host: " + hostpart + (t.port == 80 ? "" : ":" + std::to_string(t.port)) + "\r\n";
  }
  out += "Connection: close\r\n\r\n";
  return out;
}

bool ChunkedDecoder::feed(std::string_view d,
                          const std::function<void(std::string_view)>& content) {
  size_t i = 0;
  used_ = 0;
  while (i < d.size()) {
    char c = d[i];
    switch (state_) {
      case State::kSize:
        if (std::isxdigit(static_cast<unsigned char>(c))) {
          if (left_ > (uint64_t{1} << 56)) return (state_ = State::kBad), false;
          left_ = left_ * 16 + static_cast<uint64_t>(std::isdigit(static_cast<unsigned char>(c))
                                                         ? c - '0'
                                                         : std::tolower(c) - 'a' + 10);
          size_digits_ = true;
        } else if (c == ';' || c == ' ' || c == '\t') {
          state_ = State::kSizeExt;
        } else if (c == '\r') {
          state_ = State::kSizeLf;
        } else {
          return (state_ = State::kBad), false;
        }
        ++i;
        break;
      case State::kSizeExt:
        if (c == '\r') state_ = State::kSizeLf;
        ++i;
        break;
      case State::kSizeLf:
        if (c != '\n' || !size_digits_) return (state_ = State::kBad), false;
        ++i;
        size_digits_ = false;
        state_ = left_ == 0 ? State::kTrailer : State::kData;
        break;
      case State::kData: {
        size_t n = static_cast<size_t>(std::min<uint64_t>(left_, d.size() - i));
        content(d.substr(i, n));
        i += n;
        left_ -= n;
        if (left_ == 0) state_ = State::kDataCr;
        break;
      }
      case State::kDataCr:
        if (c != '\r') return (state_ = State::kBad), false;
        ++i;
        state_ = State::kDataLf;
        break;
      case State::kDataLf:
        if (c != '\n') return (state_ = State::kBad), false;
        ++i;
        state_ = State::kSize;
        break;
      case State::kTrailer:
        // Trailer fields until an empty line.
        ++i;
        if (c == '\n') {
          if (trailer_line_.empty() || trailer_line_ == "\r") {
            state_ = State::kDone;
            used_ = i;
            return true;
          }
          trailer_line_.clear();
        } else {
          trailer_line_ += c;
        }
        break;
      case State::kDone:
        used_ = i;
        return true;
      case State::kBad:
        return false;
    }
  }
  used_ = i;
  return state_ != State::kBad;
}

}  // namespace lockstep::egress
