#include "executor/output.hpp"

namespace lockstep::executor::detail {

void LineSplitter::feed(std::string_view data, std::chrono::system_clock::time_point when,
                        const LineSink& sink) {
  while (!data.empty()) {
    size_t nl = data.find('\n');
    if (nl == std::string_view::npos) {
      partial_.append(data);
      while (partial_.size() >= kMaxLine) {
        if (sink) sink(stream_, std::string_view(partial_).substr(0, kMaxLine), when);
        partial_.erase(0, kMaxLine);
      }
      return;
    }
    if (partial_.empty()) {
      if (sink) sink(stream_, data.substr(0, nl), when);
    } else {
      partial_.append(data.substr(0, nl));
      if (sink) sink(stream_, partial_, when);
      partial_.clear();
    }
    data.remove_prefix(nl + 1);
  }
}

void LineSplitter::finish(std::chrono::system_clock::time_point when, const LineSink& sink) {
  if (partial_.empty()) return;
  if (sink) sink(stream_, partial_, when);
  partial_.clear();
}

}  // namespace lockstep::executor::detail
