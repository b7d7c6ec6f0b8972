#include "registry-mirror/mirror_upstream.hpp"

#include <curl/curl.h>

#include <ctime>

#include "registry-mirror/client.hpp"
#include "registry-mirror/transport.hpp"

namespace lockstep::registry {
namespace {

// Each thread that talks to upstreams keeps one libcurl handle (and so its
// kept-alive connections) for its lifetime.
HttpSession& thread_session() {
  thread_local HttpSession session;
  return session;
}

}  // namespace

std::optional<std::chrono::seconds> parse_retry_after(const HttpResponse& resp) {
  auto ra = resp.header("retry-after");
  if (!ra) return std::nullopt;
  char* end = nullptr;
  long secs = std::strtol(ra->c_str(), &end, 10);
  if (end && end != ra->c_str() && *end == '\0' && secs >= 0) return std::chrono::seconds(secs);
  if (time_t when = curl_getdate(ra->c_str(), nullptr); when != -1)
    return std::chrono::seconds(std::max<time_t>(0, when - std::time(nullptr)));
  return std::nullopt;
}

Upstream::Upstream(const UpstreamConfig& cfg, MirrorMetrics& metrics)
    : cfg_(cfg), metrics_(metrics) {
  std::string rest = cfg.url.substr(cfg.url.find("://") + 3);
  std::string host = rest.substr(0, rest.find('/'));
  domain_ =
      host == kDockerHubApiHost || host == "index.docker.io" ? std::string(kDockerHubDomain) : host;
  base_url_ = cfg.url + "/v2";
  ClientOptions o;
  if (cfg.url.rfind("http://", 0) == 0 || cfg.insecure) o.insecure.push_back(domain_);
  CredentialStore creds;
  if (auto loaded = CredentialStore::load(CredentialStore::default_path())) creds = *loaded;
  if (!cfg.username.empty()) creds.add(domain_, Credentials{cfg.username, cfg.password});
  o.max_attempts = 3;
  transport_ = std::make_unique<Transport>(o, std::move(creds));
}

Upstream::~Upstream() = default;

Reference Upstream::ref_for(const std::string& repo) const {
  Reference r;
  r.domain = domain_;
  r.path = repo;
  return r;
}

std::chrono::milliseconds Upstream::backoff(int attempt) const {
  return transport_->delay(attempt, nullptr);
}

std::optional<Refusal> Upstream::admit(bool manifest_get) {
  auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  if (now < blocked_until_) {
    auto left = std::chrono::ceil<std::chrono::seconds>(blocked_until_ - now);
    return Refusal{left, "upstream " + cfg_.name + " asked to retry after " +
                             std::to_string(left.count()) + "s"};
  }
  if (manifest_get && cfg_.manifest_budget > 0) {
    while (!spent_.empty() && now - spent_.front() >= cfg_.budget_window) spent_.pop_front();
    if (spent_.size() >= cfg_.manifest_budget) {
      auto left =
          std::chrono::ceil<std::chrono::seconds>(spent_.front() + cfg_.budget_window - now);
      return Refusal{left, "upstream " + cfg_.name + " manifest budget of " +
                               std::to_string(cfg_.manifest_budget) + " per " +
                               std::to_string(cfg_.budget_window.count()) + "s is spent"};
    }
    spent_.push_back(now);
  }
  return std::nullopt;
}

bool Upstream::budget_low() const {
  if (cfg_.manifest_budget == 0) return false;
  auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  size_t live = 0;
  for (auto t : spent_)
    if (now - t < cfg_.budget_window) ++live;
  return live >= cfg_.manifest_budget;
}

void Upstream::note_status(const HttpResponse& resp) {
  if (resp.status != 429) return;
  auto wait = parse_retry_after(resp).value_or(std::chrono::seconds(1));
  std::lock_guard lock(mu_);
  blocked_until_ = std::max(blocked_until_, std::chrono::steady_clock::now() + wait);
}

Result<HttpResponse> Upstream::request(const std::string& kind, const std::string& method,
                                       const std::string& repo, const std::string& suffix,
                                       std::vector<std::string> headers) {
  HttpRequest req;
  req.method = method;
  req.url = repo.empty() ? base_url_ + "/" + suffix : base_url_ + "/" + repo + "/" + suffix;
  req.headers = std::move(headers);
  req.max_body = 16u << 20;
  auto resp = transport_->send(thread_session(), ref_for(repo), "pull", std::move(req));
  metrics_.upstream_request(cfg_.name, kind, resp ? resp->status : 0);
  if (resp) note_status(*resp);
  return resp;
}

Result<HttpResponse> Upstream::stream(const std::string& repo, const std::string& suffix,
                                      uint64_t offset,
                                      std::function<Status(long, const HttpResponse&)> on_start,
                                      std::function<Status(const char*, size_t)> on_data) {
  HttpRequest req;
  req.url = base_url_ + "/" + repo + "/" + suffix;
  if (offset > 0) req.headers.push_back("Range: bytes=" + std::to_string(offset) + "-");
  req.on_start = std::move(on_start);
  req.on_data = std::move(on_data);
  auto resp = transport_->send(thread_session(), ref_for(repo), "pull", std::move(req));
  metrics_.upstream_request(cfg_.name, "blob", resp ? resp->status : 0);
  if (resp) note_status(*resp);
  return resp;
}

}  // namespace lockstep::registry
