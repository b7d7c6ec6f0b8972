#pragma once
// Pull progress: events from the client, and their rendering. On a terminal
// each blob gets a line that is redrawn in place ("<digest>: Downloading
// 12.3 MiB / 40.0 MiB  8.1 MiB/s"), as docker pull does; otherwise one plain
// line per event ("sha256:abcd1234ef56… downloaded 12.3 MiB").
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/digest.hpp"

namespace lockstep::registry {

struct ProgressEvent {
  enum class Kind {
    kResolved,  // digest: the manifest chosen; note: the reference
    kStart,     // a blob download begins; total: its size
    kBytes,     // bytes: received so far (may go back to 0 after a restart)
    kExists,    // the blob was already in the store
    kRetry,     // note: why; bytes: where it resumes
    kDone,      // bytes: final size
  };
  Kind kind = Kind::kStart;
  Digest digest;
  uint64_t bytes = 0;
  uint64_t total = 0;
  std::string note;
};

// Called from several download threads at once: implementations must be
// thread-safe. An empty sink is allowed and means "no progress".
using ProgressSink = std::function<void(const ProgressEvent&)>;

// "12.3 MiB", "512 B"
std::string human_bytes(uint64_t n);

class ProgressRenderer {
 public:
  // tty: redraw lines in place with ANSI cursor movement; otherwise plain lines.
  ProgressRenderer(std::FILE* out, bool tty);
  // A sink that forwards to this renderer; the renderer must outlive it.
  ProgressSink sink();
  void handle(const ProgressEvent& e);

 private:
  struct Line {
    std::string status;
    uint64_t bytes = 0;
    uint64_t total = 0;
    std::chrono::steady_clock::time_point started;
  };
  std::string render(const Digest& d, const Line& l) const;
  void redraw(bool force);

  std::FILE* out_;
  bool tty_;
  std::mutex mu_;
  std::vector<Digest> order_;
  std::map<Digest, Line> lines_;
  size_t drawn_ = 0;  // lines currently on screen from the last redraw
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace lockstep::registry
