#pragma once
// Wakes threads of the server when PostgreSQL NOTIFYs: claimers waiting in a
// long poll (lockstep_jobs), log followers (lockstep_log) and the planner
// (lockstep_deliveries). One listening connection feeds it; each channel has
// a generation counter, so a waiter that read the counter before looking at
// the database never misses a notification that came in between.
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace lockstep::server {

class Notifier {
 public:
  enum Channel { kJobs, kLog, kDeliveries, kChannels };

  uint64_t generation(Channel c) {
    std::lock_guard lk(mu_);
    return gen_[c];
  }
  // Until the generation differs from `seen`, the timeout passes or
  // shutdown(); false only after shutdown().
  bool wait(Channel c, uint64_t seen, std::chrono::milliseconds timeout) {
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, timeout, [&] { return gen_[c] != seen || down_; });
    return !down_;
  }
  void bump(Channel c) {
    std::lock_guard lk(mu_);
    ++gen_[c];
    cv_.notify_all();
  }
  // After a lost listening connection: notifications may have been missed.
  void bump_all() {
    std::lock_guard lk(mu_);
    for (auto& g : gen_) ++g;
    cv_.notify_all();
  }
  void shutdown() {
    std::lock_guard lk(mu_);
    down_ = true;
    cv_.notify_all();
  }
  bool down() {
    std::lock_guard lk(mu_);
    return down_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::array<uint64_t, kChannels> gen_{};
  bool down_ = false;
};

}  // namespace lockstep::server
