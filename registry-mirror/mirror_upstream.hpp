#pragma once
// One upstream registry as the mirror sees it: authenticated requests through
// the client's Transport (bearer tokens cached per scope), a Retry-After gate
// that holds back every request after a 429 until the upstream said to come
// back, and an optional budget of manifest GETs per time window. Thread-safe;
// each calling thread uses its own libcurl connection.
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/error.hpp"
#include "registry-mirror/http.hpp"
#include "registry-mirror/mirror_config.hpp"
#include "registry-mirror/mirror_metrics.hpp"
#include "registry-mirror/reference.hpp"

namespace lockstep::registry {

class Transport;

// Why the mirror will not ask the upstream right now.
struct Refusal {
  std::chrono::seconds retry_after{0};
  std::string reason;  // "upstream docker.io asked to retry after 30s", "... budget spent"
};

class Upstream {
 public:
  Upstream(const UpstreamConfig& cfg, MirrorMetrics& metrics);
  ~Upstream();
  Upstream(const Upstream&) = delete;
  Upstream& operator=(const Upstream&) = delete;

  const std::string& name() const { return cfg_.name; }
  bool is_docker_hub() const { return domain_ == "docker.io"; }
  const std::string& domain() const { return domain_; }

  // Checks the Retry-After gate (and, for a manifest GET, spends one unit of
  // the budget): nullopt when the request may go out.
  std::optional<Refusal> admit(bool manifest_get);
  // Whether a manifest GET would be refused, without spending anything.
  bool budget_low() const;

  // One request (no retries): GET or HEAD of "<repo>/<suffix>" ("manifests/x",
  // "tags/list?n=10"), or of "/v2/_catalog" when repo is empty. `kind` labels
  // the metric. A 429 closes the gate for its Retry-After.
  Result<HttpResponse> request(const std::string& kind, const std::string& method,
                               const std::string& repo, const std::string& suffix,
                               std::vector<std::string> headers = {});
  // Streams a blob GET (optionally from `offset` with Range) to the callbacks.
  Result<HttpResponse> stream(const std::string& repo, const std::string& suffix, uint64_t offset,
                              std::function<Status(long, const HttpResponse&)> on_start,
                              std::function<Status(const char*, size_t)> on_data);

  // Backoff before retry `attempt` (1-based).
  std::chrono::milliseconds backoff(int attempt) const;

 private:
  Reference ref_for(const std::string& repo) const;
  void note_status(const HttpResponse& resp);

  UpstreamConfig cfg_;
  MirrorMetrics& metrics_;
  std::string domain_;
  std::string base_url_;  // "http://127.0.0.1:5000/v2"
  std::unique_ptr<Transport> transport_;
  mutable std::mutex mu_;
  std::chrono::steady_clock::time_point blocked_until_{};
  std::deque<std::chrono::steady_clock::time_point> spent_;  // manifest GETs in the window
};

// A parsed Retry-After header (seconds or HTTP date); nullopt when absent/invalid.
std::optional<std::chrono::seconds> parse_retry_after(const HttpResponse& resp);

}  // namespace lockstep::registry
