#include "registry-mirror/mirror_route.hpp"

#include <algorithm>
#include <charconv>
#include <optional>

#include "common/json.hpp"

namespace lockstep::registry {
namespace {

std::string percent_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
      };
      int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

bool contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// The upstream a "?ns=" value or path prefix names: by its name, else by its
// registry's domain. Empty when none does.
std::string upstream_named(const RouteTable& table, std::string_view key) {
  if (key.empty()) return {};
  if (contains(table.upstreams, key)) return std::string(key);
  for (const auto& [domain, name] : table.registries)
    if (domain == key) return name;
  return {};
}

// A reference's first component is a registry when it has a '.' or a ':' or
// is "localhost" (the Docker reference grammar).
bool looks_like_registry(std::string_view component) {
  return component.find_first_of(".:") != std::string_view::npos || component == "localhost";
}

// The first byte of `s` that is not printable ASCII.
std::optional<size_t> non_ascii(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x21 || c > 0x7E) return i;
  }
  return std::nullopt;
}

std::string hex_byte(char c) {
  static const char* digits = "0123456789ABCDEF";
  unsigned char b = static_cast<unsigned char>(c);
  return std::string("0x") + digits[b >> 4] + digits[b & 15];
}

Route bad_request(std::string code, std::string message) {
  Route r;
  r.endpoint = Endpoint::kBadRequest;
  r.error_code = std::move(code);
  r.error_message = std::move(message);
  return r;
}

}  // namespace

bool valid_digest_syntax(std::string_view reference) {
  // algorithm: [a-z0-9]+ ([+._-] [a-z0-9]+)* ; encoded: [a-zA-Z0-9=_-]+
  size_t colon = reference.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == reference.size()) return false;
  std::string_view alg = reference.substr(0, colon), enc = reference.substr(colon + 1);
  auto lower_alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  bool after_separator = true;
  for (char c : alg) {
    if (lower_alnum(c)) {
      after_separator = false;
    } else if (c == '+' || c == '.' || c == '_' || c == '-') {
      if (after_separator) return false;
      after_separator = true;
    } else {
      return false;
    }
  }
  if (after_separator) return false;
  for (char c : enc)
    if (!lower_alnum(c) && !(c >= 'A' && c <= 'Z') && c != '=' && c != '_' && c != '-')
      return false;
  return true;
}

bool valid_repo_name(std::string_view repo) {
  if (repo.empty() || repo.size() > 255) return false;
  size_t start = 0;
  while (start <= repo.size()) {
    size_t end = repo.find('/', start);
    if (end == std::string_view::npos) end = repo.size();
    std::string_view comp = repo.substr(start, end - start);
    if (comp.empty()) return false;
    auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    if (!alnum(comp.front()) || !alnum(comp.back())) return false;
    for (char c : comp)
      if (!alnum(c) && c != '.' && c != '_' && c != '-') return false;
    start = end + 1;
  }
  return true;
}

Route route_request(std::string_view target, const RouteTable& table) {
  if (auto at = non_ascii(target))
    return bad_request("NAME_INVALID",
                       "the request target holds byte " + hex_byte(target[*at]) + " at offset " +
                           std::to_string(*at) +
                           ": it must be printable ASCII (percent-encode the rest)");
  Route r;
  std::string_view path = target, query;
  if (auto q = target.find('?'); q != std::string_view::npos) {
    path = target.substr(0, q);
    query = target.substr(q + 1);
  }
  std::string ns;
  {  // split off ns=, keep the rest of the query for passthrough
    std::string rest;
    size_t start = 0;
    while (start < query.size()) {
      size_t amp = query.find('&', start);
      if (amp == std::string_view::npos) amp = query.size();
      std::string_view kv = query.substr(start, amp - start);
      if (kv.rfind("ns=", 0) == 0) {
        ns = percent_decode(kv.substr(3));
        if (auto at = non_ascii(ns))
          return bad_request("NAME_INVALID", "?ns= holds byte " + hex_byte(ns[*at]) +
                                                 ": a registry name is printable ASCII");
      } else if (!kv.empty()) {
        if (!rest.empty()) rest += '&';
        rest += kv;
      }
      start = amp + 1;
    }
    r.query = rest;
  }
  if (path == "/metrics") {
    r.endpoint = Endpoint::kMetrics;
    return r;
  }
  if (path == "/v2" || path == "/v2/") {
    r.endpoint = Endpoint::kBase;
    return r;
  }
  if (path.rfind("/v2/", 0) != 0) return r;
  std::string_view rest = path.substr(4);
  std::string by_ns = upstream_named(table, ns);
  if (!ns.empty() && by_ns.empty()) {
    r.unknown_registry = ns;
    return r;
  }
  r.upstream = by_ns.empty() ? table.default_upstream : by_ns;
  if (rest == "_catalog") {
    r.endpoint = Endpoint::kCatalog;
    return r;
  }
  std::string_view name;
  if (rest.size() > 10 && rest.substr(rest.size() - 10) == "/tags/list") {
    name = rest.substr(0, rest.size() - 10);
    r.endpoint = Endpoint::kTagsList;
  } else if (auto m = rest.rfind("/manifests/"); m != std::string_view::npos) {
    name = rest.substr(0, m);
    r.reference = std::string(rest.substr(m + 11));
    r.endpoint = Endpoint::kManifest;
  } else if (auto b = rest.rfind("/blobs/"); b != std::string_view::npos) {
    name = rest.substr(0, b);
    r.reference = std::string(rest.substr(b + 7));
    r.endpoint = Endpoint::kBlob;
    if (r.reference.rfind("uploads", 0) == 0) r.endpoint = Endpoint::kUnsupported;
  } else {
    return r;
  }
  // A path prefix naming an upstream (or its registry) wins over the default,
  // not over ?ns=.
  if (by_ns.empty()) {
    auto slash = name.find('/');
    if (slash != std::string_view::npos) {
      std::string_view first = name.substr(0, slash);
      if (auto up = upstream_named(table, first); !up.empty()) {
        r.upstream = up;
        name = name.substr(slash + 1);
      } else if (looks_like_registry(first)) {
        // "/v2/quay.io/org/app/...": a registry, as references name one,
        // that no upstream serves; not a repository of the default.
        r.endpoint = Endpoint::kNotFound;
        r.unknown_registry = std::string(first);
        r.upstream.clear();
        return r;
      }
    }
  }
  r.repo = std::string(name);
  if (contains(table.docker_hub, r.upstream) && r.repo.find('/') == std::string::npos)
    r.repo = "library/" + r.repo;
  if (!valid_repo_name(r.repo)) {
    r.endpoint = Endpoint::kNotFound;
    return r;
  }
  if (r.endpoint == Endpoint::kManifest && !valid_tag(r.reference) &&
      !valid_digest_syntax(r.reference)) {
    bool digest_like = r.reference.find(':') != std::string::npos;
    return bad_request(
        digest_like ? "DIGEST_INVALID" : "TAG_INVALID",
        std::string(digest_like ? "invalid digest '" : "invalid tag '") + r.reference + "'");
  }
  if (r.endpoint == Endpoint::kManifest || r.endpoint == Endpoint::kBlob) {
    if (r.reference.rfind("sha256:", 0) == 0) {
      auto d = Digest::parse(r.reference);
      if (d) r.digest = *d;
    }
  }
  return r;
}

bool parse_byte_range(std::string_view v, uint64_t total, uint64_t& first, uint64_t& last) {
  if (v.rfind("bytes=", 0) != 0 || total == 0) return false;
  v.remove_prefix(6);
  auto dash = v.find('-');
  if (dash == std::string_view::npos) return false;
  std::string_view a = v.substr(0, dash), b = v.substr(dash + 1);
  auto num = [](std::string_view s, uint64_t& out) {
    if (s.empty()) return false;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && end == s.data() + s.size();  // digits only, no overflow
  };
  if (a.empty()) {
    uint64_t n = 0;
    if (!num(b, n) || n == 0) return false;
    first = n >= total ? 0 : total - n;
    last = total - 1;
    return true;
  }
  if (!num(a, first) || first >= total) return false;
  if (b.empty()) {
    last = total - 1;
  } else if (!num(b, last) || last < first) {
    return false;
  }
  last = std::min(last, total - 1);
  return true;
}

std::string error_body(std::string_view code, std::string_view message, std::string_view detail) {
  Json e = {{"code", code}, {"message", message}};
  if (!detail.empty()) e["detail"] = detail;
  Json doc = {{"errors", Json::array({e})}};
  return doc.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace lockstep::registry
