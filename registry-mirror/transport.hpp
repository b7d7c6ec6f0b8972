#pragma once
// The registry client's transport: URLs, authentication (bearer tokens
// cached per scope, Basic), redirects, retries and error wording. Shared by
// every download thread of one RegistryClient; thread-safe.
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "registry-mirror/auth.hpp"
#include "registry-mirror/http.hpp"
#include "registry-mirror/reference.hpp"

namespace lockstep::registry {

struct ClientOptions;

class Transport {
 public:
  Transport(const ClientOptions& options, CredentialStore credentials);

  // "http://127.0.0.1:5000/v2/app" or "https://registry-1.docker.io/v2/library/alpine".
  std::string repo_url(const Reference& ref) const;

  // One request with authentication: answers a 401 challenge once (fetching
  // a token or using Basic credentials) and follows redirects, dropping
  // Authorization when one leaves the registry's origin. No retries.
  // `actions` is the scope's action list: "pull" or "pull,push".
  Result<HttpResponse> send(HttpSession& http, const Reference& ref, std::string_view actions,
                            HttpRequest req);
  // send() retried on transport errors, 5xx and 429 (not for streamed bodies).
  Result<HttpResponse> send_with_retries(HttpSession& http, const Reference& ref,
                                         std::string_view actions, const HttpRequest& req);

  // Whether a response status / error is worth another attempt, and how long
  // to wait before attempt number `attempt` (1-based).
  static bool retryable_status(long status) { return status == 429 || status >= 500; }
  std::chrono::milliseconds delay(int attempt, const HttpResponse* resp) const;
  int max_attempts() const { return max_attempts_; }

  // "cannot reach registry 127.0.0.1:5999: Connection refused (is it running? use
  // --insecure for plain HTTP)"; through a mirror: "cannot reach mirror
  // http://127.0.0.1:5001: Connection refused".
  Error unreachable(const Reference& ref, const Error& transport) const;
  // A failed request as the user should see it: transport failures become
  // unreachable(), other errors gain "what: " as context.
  Error wrap(const Reference& ref, const Error& e, std::string_view what) const;
  // "<what>: HTTP 404 (MANIFEST_UNKNOWN: manifest unknown)"
  static Error http_error(std::string_view what, const HttpResponse& resp);

 private:
  struct CachedAuth {
    std::string header;  // the Authorization value: "Bearer ...", "Basic ..."
    std::chrono::steady_clock::time_point expires;
  };
  std::optional<std::string> cached_auth(const std::string& key);
  Status answer_challenge(HttpSession& http, const Reference& ref, const std::string& key,
                          const std::string& scope, const HttpResponse& resp);

  std::vector<std::string> insecure_;
  std::string mirror_;
  CredentialStore credentials_;
  int max_attempts_;
  std::chrono::milliseconds backoff_initial_, backoff_max_, retry_after_max_;
  std::mutex mu_;
  std::map<std::string, CachedAuth> auth_;  // key: domain + " " + scope
};

}  // namespace lockstep::registry
