#include "registry-mirror/mirror_metrics.hpp"

namespace lockstep::registry {

void MirrorMetrics::count(std::map<std::string, uint64_t>& m, const std::string& k) {
  // The maps are tiny (a few kinds and statuses); one mutex keeps them exact.
  std::lock_guard lock(mu_);
  ++m[k];
}

void MirrorMetrics::upstream_request(const std::string& upstream, const std::string& kind,
                                     long status) {
  std::lock_guard lock(mu_);
  ++upstream_[{upstream, kind, status}];
}

std::string MirrorMetrics::render() const {
  std::string out;
  auto line = [&](const std::string& s) { out += s + "\n"; };
  auto labelled = [&](const char* name, const char* help, const char* label,
                      const std::map<std::string, uint64_t>& m) {
    line(std::string("# HELP ") + name + " " + help);
    line(std::string("# TYPE ") + name + " counter");
    for (const auto& [k, v] : m)
      line(std::string(name) + "{" + label + "=\"" + k + "\"} " + std::to_string(v));
  };
  std::map<std::string, uint64_t> hits, misses, responses;
  std::map<std::tuple<std::string, std::string, long>, uint64_t> upstream;
  {
    std::lock_guard lock(mu_);
    upstream = upstream_;
    hits = hits_;
    misses = misses_;
    responses = responses_;
  }
  labelled("lockstep_mirror_hits_total", "Requests served from the store.", "kind", hits);
  labelled("lockstep_mirror_misses_total", "Requests that needed the upstream.", "kind", misses);
  labelled("lockstep_mirror_responses_total", "Responses by HTTP status.", "status", responses);
  line("# HELP lockstep_mirror_upstream_requests_total Requests sent upstream.");
  line("# TYPE lockstep_mirror_upstream_requests_total counter");
  for (const auto& [k, v] : upstream)
    line("lockstep_mirror_upstream_requests_total{upstream=\"" + std::get<0>(k) + "\",kind=\"" +
         std::get<1>(k) + "\",status=\"" + std::to_string(std::get<2>(k)) + "\"} " +
         std::to_string(v));
  auto scalar = [&](const char* name, const char* type, const char* help, int64_t v) {
    line(std::string("# HELP ") + name + " " + help);
    line(std::string("# TYPE ") + name + " " + type);
    line(std::string(name) + " " + std::to_string(v));
  };
  scalar("lockstep_mirror_stale_total", "counter", "Stale tags served after an upstream failure.",
         static_cast<int64_t>(stale_.load()));
  scalar("lockstep_mirror_bytes_served_total", "counter", "Body bytes sent to clients.",
         static_cast<int64_t>(served_.load()));
  scalar("lockstep_mirror_bytes_fetched_total", "counter", "Body bytes received from upstreams.",
         static_cast<int64_t>(fetched_.load()));
  scalar("lockstep_mirror_downloads_in_flight", "gauge", "Blob downloads in progress.",
         downloads_in_flight.load());
  scalar("lockstep_mirror_waiters", "gauge", "Clients streaming a blob still downloading.",
         waiters.load());
  scalar("lockstep_mirror_store_bytes", "gauge", "Bytes of blobs in the store.",
         store_bytes.load());
  scalar("lockstep_mirror_evictions_total", "counter", "Blobs evicted for the size limit.",
         evictions.load());
  return out;
}

}  // namespace lockstep::registry
