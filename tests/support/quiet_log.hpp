#pragma once
// Servers under test (nginx, the distribution registry) write their
// access-log line after the response has gone out, so a client can be faster
// than the log. Before counting lines, wait until the log has stopped growing
// for a while (bounded, so a busy log cannot hang a test).
#include <chrono>
#include <filesystem>
#include <system_error>
#include <thread>

namespace lockstep::testing {

inline void wait_until_log_is_still(const std::filesystem::path& log) {
  std::error_code ec;
  auto size_now = [&] { return std::filesystem::file_size(log, ec); };
  auto last = size_now();
  int still = 0;
  for (int i = 0; i < 100 && still < 4; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    auto now = size_now();
    still = now == last ? still + 1 : 0;
    last = now;
  }
}

}  // namespace lockstep::testing
