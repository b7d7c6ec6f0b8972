#include "registry-mirror/auth.hpp"

#include <cctype>
#include <cstdlib>

#include "common/fs.hpp"
#include "common/json.hpp"
#include "common/text.hpp"

namespace lockstep::registry {
namespace {

bool is_token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

}  // namespace

std::vector<Challenge> parse_www_authenticate(std::string_view h) {
  std::vector<Challenge> out;
  size_t i = 0;
  auto skip_ws = [&] {
    while (i < h.size() && (h[i] == ' ' || h[i] == '\t')) ++i;
  };
  auto token = [&] {
    size_t s = i;
    while (i < h.size() && is_token_char(h[i])) ++i;
    return h.substr(s, i - s);
  };
  while (i < h.size()) {
    skip_ws();
    while (i < h.size() && (h[i] == ',' || h[i] == ' ')) ++i;
    std::string_view scheme = token();
    if (scheme.empty()) break;
    Challenge c;
    c.scheme = ascii_lower(scheme);
    // auth-params: name=value or name="quoted", separated by commas. A token
    // followed by a space and another token starts the next challenge.
    while (i < h.size()) {
      skip_ws();
      size_t save = i;
      std::string_view name = token();
      skip_ws();
      if (name.empty() || i >= h.size() || h[i] != '=') {
        i = save;
        break;
      }
      ++i;
      skip_ws();
      std::string value;
      if (i < h.size() && h[i] == '"') {
        ++i;
        while (i < h.size() && h[i] != '"') {
          if (h[i] == '\\' && i + 1 < h.size()) ++i;
          value += h[i++];
        }
        if (i < h.size()) ++i;
      } else {
        value = std::string(token());
      }
      c.params[ascii_lower(name)] = value;
      skip_ws();
      if (i < h.size() && h[i] == ',') ++i;
    }
    out.push_back(std::move(c));
  }
  return out;
}

Result<Token> parse_token_response(std::string_view body) {
  LS_TRY_ASSIGN(Json j, parse_json(body, "token response"));
  Token t;
  if (j.contains("token") && j["token"].is_string()) t.value = j["token"].get<std::string>();
  if (t.value.empty() && j.contains("access_token") && j["access_token"].is_string())
    t.value = j["access_token"].get<std::string>();
  if (t.value.empty()) return fail("token response has no token", ErrorKind::kIntegrity);
  if (j.contains("expires_in") && j["expires_in"].is_number_integer()) {
    auto s = j["expires_in"].get<int64_t>();
    if (s > 0) t.expires_in = std::chrono::seconds(s);
  }
  return t;
}

std::string base64_encode(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (static_cast<uint8_t>(in[i]) << 16) | (static_cast<uint8_t>(in[i + 1]) << 8) |
                 static_cast<uint8_t>(in[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = (static_cast<uint8_t>(in[i]) << 16) | (static_cast<uint8_t>(in[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

Result<std::string> base64_decode(std::string_view in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=' || c == '\n' || c == '\r') continue;
    int v = val(c);
    if (v < 0) return fail("invalid base64", ErrorKind::kUsage);
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

std::string normalize_auth_key(std::string_view key) {
  std::string_view k = key;
  if (size_t p = k.find("://"); p != std::string_view::npos) k = k.substr(p + 3);
  k = k.substr(0, k.find('/'));
  std::string host = ascii_lower(k);
  if (host == "index.docker.io" || host == "registry-1.docker.io" || host == "registry.docker.io")
    host = "docker.io";
  return host;
}

std::filesystem::path CredentialStore::default_path() {
  if (const char* d = std::getenv("DOCKER_CONFIG"); d && *d)
    return std::filesystem::path(d) / "config.json";
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home ? home : "/root") / ".docker/config.json";
}

Result<CredentialStore> CredentialStore::load(const std::filesystem::path& path) {
  CredentialStore store;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return store;
  auto ctx = "docker config " + path.string();
  auto text = read_file(path);
  if (!text) return fail(Error(text.error()).context(ctx));
  auto j = parse_json(*text, ctx);
  if (!j) return fail(j.error());
  auto auths = j->find("auths");
  if (auths == j->end() || !auths->is_object()) return store;
  for (const auto& [key, entry] : auths->items()) {
    if (!entry.is_object()) continue;
    Credentials c;
    if (std::string auth = json_string(entry, "auth"); !auth.empty()) {
      auto decoded = base64_decode(auth);
      size_t colon = decoded ? decoded->find(':') : std::string::npos;
      if (colon == std::string::npos)
        return fail(ctx + ": 'auth' for " + key + " is not base64 of user:password",
                    ErrorKind::kUsage);
      c.username = decoded->substr(0, colon);
      c.password = decoded->substr(colon + 1);
    } else {
      c.username = json_string(entry, "username");
      c.password = json_string(entry, "password");
    }
    if (c.username.empty()) continue;
    store.add(key, std::move(c));
  }
  return store;
}

std::optional<Credentials> CredentialStore::find(std::string_view domain) const {
  auto it = by_host_.find(normalize_auth_key(domain));
  if (it == by_host_.end()) return std::nullopt;
  return it->second;
}

void CredentialStore::add(std::string_view domain, Credentials c) {
  by_host_[normalize_auth_key(domain)] = std::move(c);
}

}  // namespace lockstep::registry
