#include "registry-mirror/reference.hpp"
#include "common/text.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

namespace lockstep::registry {
namespace {

constexpr size_t kNameTotalLengthMax = 255;
constexpr size_t kTagLengthMax = 128;

bool is_lower_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
bool is_word(char c) {
  return is_alnum(c) || c == '_';
}
bool has_upper(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}
// component := [a-z0-9]+ ( ( [._] | __ | -+ ) [a-z0-9]+ )*
bool valid_path_component(std::string_view c) {
  size_t i = 0;
  auto alnum_run = [&] {
    size_t start = i;
    while (i < c.size() && is_lower_alnum(c[i])) ++i;
    return i > start;
  };
  if (!alnum_run()) return false;
  while (i < c.size()) {
    if (c[i] == '.') {
      ++i;
    } else if (c[i] == '_') {
      ++i;
      if (i < c.size() && c[i] == '_') ++i;
    } else if (c[i] == '-') {
      while (i < c.size() && c[i] == '-') ++i;
    } else {
      return false;
    }
    if (!alnum_run()) return false;
  }
  return true;
}

bool valid_path(std::string_view p) {
  if (p.empty()) return false;
  size_t start = 0;
  while (true) {
    size_t slash = p.find('/', start);
    std::string_view comp =
        p.substr(start, slash == std::string_view::npos ? p.npos : slash - start);
    if (!valid_path_component(comp)) return false;
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

// domain-component := [A-Za-z0-9] | [A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]
bool valid_domain_name(std::string_view h) {
  if (h.empty()) return false;
  size_t start = 0;
  while (true) {
    size_t dot = h.find('.', start);
    std::string_view comp = h.substr(start, dot == std::string_view::npos ? h.npos : dot - start);
    if (comp.empty() || !is_alnum(comp.front()) || !is_alnum(comp.back())) return false;
    for (char c : comp)
      if (!is_alnum(c) && c != '-') return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

// domain := ( domain-name | "[" [0-9A-Fa-f:]+ "]" ) [ ":" [0-9]+ ]
bool valid_domain(std::string_view d) {
  std::string_view host = d;
  std::string_view port;
  if (!d.empty() && d.front() == '[') {
    size_t close = d.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    for (char c : d.substr(1, close - 1))
      if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':') return false;
    std::string_view rest = d.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return false;
      port = rest.substr(1);
      if (port.empty()) return false;
    }
  } else {
    size_t colon = d.find(':');
    if (colon != std::string_view::npos) {
      host = d.substr(0, colon);
      port = d.substr(colon + 1);
      if (port.empty()) return false;
    }
    if (!valid_domain_name(host)) return false;
  }
  for (char c : port)
    if (c < '0' || c > '9') return false;
  return true;
}

bool is_hex64(std::string_view s) {
  return s.size() == 64 &&
         std::all_of(s.begin(), s.end(), [](char c) { return is_lower_alnum(c) && c <= 'f'; });
}

// Docker's splitDockerDomain: the first element is a domain only when it
// looks like one.
void split_domain(std::string_view s, std::string& domain, std::string& rest) {
  size_t slash = s.find('/');
  if (slash == std::string_view::npos) {
    domain = kDockerHubDomain;
    rest = "library/" + std::string(s);
    return;
  }
  std::string_view first = s.substr(0, slash);
  std::string_view remainder = s.substr(slash + 1);
  if (first == "localhost" || first.find_first_of(".:") != std::string_view::npos ||
      has_upper(first)) {
    domain = first == "index.docker.io" ? std::string(kDockerHubDomain) : std::string(first);
    rest = remainder;
  } else {
    domain = kDockerHubDomain;
    rest = s;
  }
  if (domain == kDockerHubDomain && rest.find('/') == std::string::npos) rest = "library/" + rest;
}

}  // namespace

bool valid_tag(std::string_view t) {
  if (t.empty() || t.size() > kTagLengthMax || !is_word(t.front())) return false;
  return std::all_of(t.begin(), t.end(), [](char c) { return is_word(c) || c == '.' || c == '-'; });
}

Result<Reference> Reference::parse(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return fail("invalid reference '" + std::string(text) + "': " + std::string(why),
                ErrorKind::kUsage);
  };
  if (text.empty()) return bad("empty reference");
  if (is_hex64(text)) return bad("a 64-character hexadecimal string is an image ID, not a name");

  std::string domain, rest;
  split_domain(text, domain, rest);

  Reference ref;
  ref.domain = domain;
  std::string_view name_part = rest;
  if (size_t at = name_part.find('@'); at != std::string_view::npos) {
    std::string_view dig = name_part.substr(at + 1);
    name_part = name_part.substr(0, at);
    if (size_t colon = dig.find(':');
        colon != std::string_view::npos && colon > 0 && dig.substr(0, colon) != "sha256") {
      return bad("unsupported digest algorithm '" + std::string(dig.substr(0, colon)) +
                 "' (only sha256)");
    }
    auto d = Digest::parse(dig);
    if (!d) return bad("invalid digest '" + std::string(dig) + "'");
    ref.digest = *d;
  }
  std::string_view path = name_part;
  size_t last_slash = name_part.rfind('/');
  if (size_t colon = name_part.rfind(':');
      colon != std::string_view::npos &&
      (last_slash == std::string_view::npos || colon > last_slash)) {
    path = name_part.substr(0, colon);
    std::string_view tag = name_part.substr(colon + 1);
    if (!valid_tag(tag)) {
      if (tag.size() > kTagLengthMax) return bad("tag is longer than 128 characters");
      return bad("invalid tag '" + std::string(tag) +
                 "' (letters, digits, '_', '.' and '-', not starting with '.' or '-')");
    }
    ref.tag = tag;
  }
  if (has_upper(path)) {
    if (valid_path(ascii_lower(path))) return bad("repository name must be lowercase");
  }
  if (!valid_path(path)) {
    if (path.empty() || path.back() == '/' || path.front() == '/')
      return bad("repository name must have at least one component in each path element");
    return bad("invalid repository name '" + std::string(path) +
               "' (lowercase letters and digits, separated by '.', '_', '__', '-' or '/')");
  }
  if (!valid_domain(domain)) return bad("invalid registry host '" + domain + "'");
  ref.path = path;
  if (ref.domain.size() + 1 + ref.path.size() > kNameTotalLengthMax)
    return bad("repository name must not be more than 255 characters");
  return ref;
}

std::string Reference::str() const {
  std::string s = name();
  if (!tag.empty()) s += ":" + tag;
  if (digest) s += "@" + digest->str();
  return s;
}

std::string Reference::familiar() const {
  std::string s;
  if (domain == kDockerHubDomain) {
    s = path.rfind("library/", 0) == 0 && path.find('/', 8) == std::string::npos ? path.substr(8)
                                                                                 : path;
  } else {
    s = name();
  }
  if (!tag.empty()) s += ":" + tag;
  if (digest) s += "@" + digest->str();
  return s;
}

std::string Reference::api_host() const {
  return domain == kDockerHubDomain ? std::string(kDockerHubApiHost) : domain;
}

Reference Reference::with_digest(const Digest& d) const {
  Reference r = *this;
  r.tag.clear();
  r.digest = d;
  return r;
}

bool is_loopback_registry(std::string_view domain) {
  std::string host(domain);
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    host = host.substr(1, close == std::string::npos ? std::string::npos : close - 1);
    return host == "::1";
  }
  if (size_t colon = host.find(':'); colon != std::string::npos) host.resize(colon);
  if (host == "localhost") return true;
  in_addr addr{};
  if (::inet_pton(AF_INET, host.c_str(), &addr) == 1) return (ntohl(addr.s_addr) >> 24) == 127;
  return false;
}

}  // namespace lockstep::registry
