#include "registry-mirror/transport.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <ctime>
#include <thread>

#include "common/json.hpp"
#include "registry-mirror/client.hpp"

namespace lockstep::registry {
namespace {

constexpr int kMaxRedirects = 10;

void set_header(std::vector<std::string>& headers, std::string_view name, std::string value) {
  auto match = [&](const std::string& h) {
    return h.size() > name.size() && h[name.size()] == ':' &&
           std::equal(name.begin(), name.end(), h.begin(),
                      [](char a, char b) { return std::tolower(a) == std::tolower(b); });
  };
  headers.erase(std::remove_if(headers.begin(), headers.end(), match), headers.end());
  if (!value.empty()) headers.push_back(std::string(name) + ": " + value);
}

}  // namespace

Transport::Transport(const ClientOptions& o, CredentialStore credentials)
    : insecure_(o.insecure),
      mirror_(o.mirror),
      credentials_(std::move(credentials)),
      max_attempts_(std::max(1, o.max_attempts)),
      backoff_initial_(o.backoff_initial),
      backoff_max_(o.backoff_max),
      retry_after_max_(o.retry_after_max) {}

std::string Transport::repo_url(const Reference& ref) const {
  if (!mirror_.empty()) return mirror_ + "/v2/" + ref.domain + "/" + ref.path;
  bool plain = is_loopback_registry(ref.domain) ||
               std::find(insecure_.begin(), insecure_.end(), ref.domain) != insecure_.end();
  return std::string(plain ? "http://" : "https://") + ref.api_host() + "/v2/" + ref.path;
}

std::optional<std::string> Transport::cached_auth(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = auth_.find(key);
  if (it == auth_.end()) return std::nullopt;
  if (std::chrono::steady_clock::now() >= it->second.expires) {
    auth_.erase(it);
    return std::nullopt;
  }
  return it->second.header;
}

Status Transport::answer_challenge(HttpSession& http, const Reference& ref, const std::string& key,
                                   const std::string& scope, const HttpResponse& resp) {
  auto header = resp.header("www-authenticate");
  auto challenges = parse_www_authenticate(header.value_or(""));
  auto creds = credentials_.find(ref.domain);
  auto remember = [&](std::string value, std::chrono::seconds ttl) {
    std::lock_guard lock(mu_);
    auth_[key] = {std::move(value), std::chrono::steady_clock::now() + ttl};
  };
  for (const auto& c : challenges) {
    if (c.scheme == "bearer") {
      auto realm = c.params.find("realm");
      if (realm == c.params.end() || realm->second.empty()) continue;
      std::string url = realm->second;
      char sep = url.find('?') == std::string::npos ? '?' : '&';
      if (auto svc = c.params.find("service"); svc != c.params.end()) {
        url += sep + std::string("service=") + url_escape(svc->second);
        sep = '&';
      }
      auto sc = c.params.find("scope");
      url += sep + std::string("scope=") + url_escape(sc != c.params.end() ? sc->second : scope);
      HttpRequest treq;
      treq.url = url;
      treq.max_body = 1u << 20;
      if (creds)
        treq.headers.push_back("Authorization: Basic " +
                               base64_encode(creds->username + ":" + creds->password));
      auto tresp = http.perform(treq);
      if (!tresp)
        return fail(
            Error("cannot reach token service " + realm->second + ": " + tresp.error().message(),
                  tresp.error().errnum(), ErrorKind::kUnavailable));
      if (tresp->status != 200) {
        std::string hint = creds ? " (check the credentials for " + ref.domain + " in " +
                                       CredentialStore::default_path().string() + ")"
                                 : " (no credentials for " + ref.domain + " in " +
                                       CredentialStore::default_path().string() + ")";
        Error e = http_error("authentication for " + ref.name() + " at " + realm->second, *tresp);
        return fail(Error(e.message() + hint, 0, ErrorKind::kGeneric));
      }
      LS_TRY_ASSIGN(Token tok, parse_token_response(tresp->body));
      // Refresh a little early so that a token never expires mid-request.
      auto ttl = tok.expires_in > std::chrono::seconds(20)
                     ? tok.expires_in - std::chrono::seconds(10)
                     : tok.expires_in;
      remember("Bearer " + tok.value, ttl);
      return {};
    }
    if (c.scheme == "basic") {
      if (!creds)
        return fail("registry " + ref.domain + " requires a login: no credentials for it in " +
                        CredentialStore::default_path().string(),
                    ErrorKind::kGeneric);
      remember("Basic " + base64_encode(creds->username + ":" + creds->password),
               std::chrono::hours(24 * 365));
      return {};
    }
  }
  return fail("registry " + ref.domain + " answered 401 without a usable challenge (" +
                  header.value_or("no WWW-Authenticate") + ")",
              ErrorKind::kGeneric);
}

Result<HttpResponse> Transport::send(HttpSession& http, const Reference& ref,
                                     std::string_view actions, HttpRequest req) {
  const std::string scope = "repository:" + ref.path + ":" + std::string(actions);
  const std::string key = ref.domain + " " + scope;
  const std::string origin = url_origin(repo_url(ref));
  bool answered = false;
  int redirects = 0;
  while (true) {
    bool same_origin = url_origin(req.url) == origin;
    std::string auth = same_origin ? cached_auth(key).value_or("") : "";
    set_header(req.headers, "Authorization", auth);
    auto resp = http.perform(req);
    if (!resp) return resp;
    if (resp->status == 401 && same_origin && !answered) {
      answered = true;
      LS_TRY(answer_challenge(http, ref, key, scope, *resp));
      continue;
    }
    if (resp->status >= 300 && resp->status < 400 && !resp->redirect_url.empty()) {
      if (++redirects > kMaxRedirects)
        return fail("too many redirects for " + req.url, ErrorKind::kUnavailable);
      req.url = resp->redirect_url;
      if (resp->status == 303) req.method = req.method == "HEAD" ? "HEAD" : "GET";
      continue;
    }
    return resp;
  }
}

std::chrono::milliseconds Transport::delay(int attempt, const HttpResponse* resp) const {
  if (resp && resp->status == 429) {
    if (auto ra = resp->header("retry-after")) {
      std::chrono::milliseconds wait{-1};
      char* end = nullptr;
      long secs = std::strtol(ra->c_str(), &end, 10);
      if (end && end != ra->c_str() && *end == '\0' && secs >= 0) {
        wait = std::chrono::seconds(secs);
      } else if (time_t when = curl_getdate(ra->c_str(), nullptr); when != -1) {
        wait = std::chrono::seconds(std::max<time_t>(0, when - std::time(nullptr)));
      }
      if (wait.count() >= 0) return std::min(wait, retry_after_max_);
    }
  }
  auto d = backoff_initial_;
  for (int i = 1; i < attempt && d < backoff_max_; ++i) d *= 2;
  return std::min(d, backoff_max_);
}

Result<HttpResponse> Transport::send_with_retries(HttpSession& http, const Reference& ref,
                                                  std::string_view actions,
                                                  const HttpRequest& req) {
  for (int attempt = 1;; ++attempt) {
    auto resp = send(http, ref, actions, req);
    bool last = attempt >= max_attempts_;
    if (!resp) {
      if (resp.error().kind() != ErrorKind::kUnavailable || last) return resp;
      std::this_thread::sleep_for(delay(attempt, nullptr));
      continue;
    }
    if (!retryable_status(resp->status) || last) return resp;
    std::this_thread::sleep_for(delay(attempt, &*resp));
  }
}

Error Transport::unreachable(const Reference& ref, const Error& transport) const {
  if (!mirror_.empty())
    return Error("cannot reach mirror " + mirror_ + ": " + transport.message(), transport.errnum(),
                 ErrorKind::kUnreachable);
  bool plain = is_loopback_registry(ref.domain) ||
               std::find(insecure_.begin(), insecure_.end(), ref.domain) != insecure_.end();
  // Over HTTPS the cause may also be a registry that speaks plain HTTP.
  return Error("cannot reach registry " + ref.domain + ": " + transport.message() +
                   (plain ? " (is it running?)"
                          : " (is it running? it was asked over HTTPS; a plain-HTTP registry "
                            "must be allowed as insecure)"),
               transport.errnum(), ErrorKind::kUnreachable);
}

Error Transport::wrap(const Reference& ref, const Error& e, std::string_view what) const {
  if (e.kind() == ErrorKind::kUnreachable) return e;
  if (e.kind() != ErrorKind::kUnavailable) return Error(e).context(what);
  return unreachable(ref, e);
}

Error Transport::http_error(std::string_view what, const HttpResponse& resp) {
  std::string detail;
  if (auto j = parse_json(resp.body, "error body"); j && j->is_object()) {
    if (auto errs = j->find("errors"); errs != j->end() && errs->is_array() && !errs->empty()) {
      const auto& e = (*errs)[0];
      if (e.is_object()) detail = e.value("code", "") + ": " + e.value("message", "");
    }
  }
  std::string msg = std::string(what) + ": HTTP " + std::to_string(resp.status);
  if (!detail.empty()) msg += " (" + detail + ")";
  ErrorKind kind = ErrorKind::kGeneric;
  if (resp.status == 404) kind = ErrorKind::kNotFound;
  if (resp.status == 429 || resp.status >= 500) kind = ErrorKind::kUnavailable;
  return Error(msg, 0, kind);
}

}  // namespace lockstep::registry
