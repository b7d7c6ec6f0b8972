#pragma once
// The mirror's counters, rendered in Prometheus text format at /metrics.
// Counters are atomics (or a mutex-guarded map for labelled series), so the
// numbers are exact under any concurrency.
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

namespace lockstep::registry {

class MirrorMetrics {
 public:
  // kind: "manifest", "blob"; hit = served from the store.
  void hit(const std::string& kind) { count(hits_, kind); }
  void miss(const std::string& kind) { count(misses_, kind); }
  void stale() { stale_.fetch_add(1, std::memory_order_relaxed); }
  // One request sent upstream: kind "manifest", "manifest_head", "blob",
  // "tags", "catalog", "token"; status 0 for a transport failure.
  void upstream_request(const std::string& upstream, const std::string& kind, long status);
  void bytes_served(uint64_t n) { served_.fetch_add(n, std::memory_order_relaxed); }
  void bytes_fetched(uint64_t n) { fetched_.fetch_add(n, std::memory_order_relaxed); }
  void response(int status) { count(responses_, std::to_string(status)); }

  std::atomic<int64_t> downloads_in_flight{0};
  std::atomic<int64_t> waiters{0};  // clients streaming from a download in progress
  std::atomic<int64_t> store_bytes{0};
  std::atomic<int64_t> evictions{0};

  std::string render() const;
  uint64_t bytes_fetched_total() const { return fetched_.load(); }
  uint64_t bytes_served_total() const { return served_.load(); }

 private:
  void count(std::map<std::string, uint64_t>& m, const std::string& k);
  mutable std::mutex mu_;
  std::map<std::string, uint64_t> hits_, misses_, responses_;
  std::map<std::tuple<std::string, std::string, long>, uint64_t> upstream_;
  std::atomic<uint64_t> served_{0}, fetched_{0}, stale_{0};
};

}  // namespace lockstep::registry
