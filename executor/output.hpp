#pragma once
// Turns a byte stream into lines for a LineSink.
#include <chrono>
#include <string>
#include <string_view>

#include "executor/spec.hpp"

namespace lockstep::executor::detail {

class LineSplitter {
 public:
  // A line longer than this is delivered in pieces of this size, so that a
  // writer that never sends '\n' cannot grow our memory without bound.
  static constexpr size_t kMaxLine = 1 << 20;

  explicit LineSplitter(Stream s) : stream_(s) {}
  // Delivers every complete line in `data` (plus what was buffered).
  void feed(std::string_view data, std::chrono::system_clock::time_point when,
            const LineSink& sink);
  // Delivers a final unterminated line, if any.
  void finish(std::chrono::system_clock::time_point when, const LineSink& sink);

 private:
  Stream stream_;
  std::string partial_;
};

}  // namespace lockstep::executor::detail
