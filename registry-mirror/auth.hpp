#pragma once
// Registry authentication pieces that need no network: WWW-Authenticate
// challenges, token responses, and credentials from Docker's config.json.
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace lockstep::registry {

struct Challenge {
  std::string scheme;                         // lowercased: "bearer", "basic"
  std::map<std::string, std::string> params;  // keys lowercased: realm, service, scope
};

// Parses one WWW-Authenticate header value (RFC 7235), which may hold several
// challenges: `Bearer realm="https://auth.docker.io/token",service="registry.docker.io"`.
std::vector<Challenge> parse_www_authenticate(std::string_view header);

struct Token {
  std::string value;
  std::chrono::seconds expires_in{60};  // the spec's default when absent
};
// {"token": "...", "access_token": "...", "expires_in": 300}
Result<Token> parse_token_response(std::string_view body);

struct Credentials {
  std::string username;
  std::string password;
};

std::string base64_encode(std::string_view in);
Result<std::string> base64_decode(std::string_view in);

// Credentials from a Docker config file's "auths": either the base64 "auth"
// field ("user:password") or "username"/"password". Keys may be URLs
// ("https://index.docker.io/v1/") or host[:port]; they are matched by host.
// Credential helpers (credsStore, credHelpers) are not run.
class CredentialStore {
 public:
  CredentialStore() = default;
  // A missing file is an empty store; an unreadable or invalid one is an error.
  static Result<CredentialStore> load(const std::filesystem::path& config_json);
  // $DOCKER_CONFIG/config.json, else $HOME/.docker/config.json.
  static std::filesystem::path default_path();

  // For a reference domain ("docker.io", "127.0.0.1:5000").
  std::optional<Credentials> find(std::string_view domain) const;
  void add(std::string_view domain, Credentials c);

 private:
  std::map<std::string, Credentials> by_host_;
};

// "https://index.docker.io/v1/" -> "docker.io"; "http://host:5000/x" -> "host:5000".
std::string normalize_auth_key(std::string_view key);

}  // namespace lockstep::registry
