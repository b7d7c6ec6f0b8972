#include "registry-mirror/progress.hpp"

namespace lockstep::registry {
namespace {

std::string short_digest(const Digest& d) {
  return "sha256:" + d.hex().substr(0, 12) + "\u2026";
}

}  // namespace

std::string human_bytes(uint64_t n) {
  if (n < 1024) return std::to_string(n) + " B";
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n) / 1024.0;
  size_t u = 0;
  while (v >= 1024.0 && u + 1 < std::size(kUnits)) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[u]);
  return buf;
}

ProgressRenderer::ProgressRenderer(std::FILE* out, bool tty) : out_(out), tty_(tty) {}

ProgressSink ProgressRenderer::sink() {
  return [this](const ProgressEvent& e) { handle(e); };
}

std::string ProgressRenderer::render(const Digest& d, const Line& l) const {
  std::string s = short_digest(d) + " " + l.status;
  if (l.status == "Downloading") {
    s += " " + human_bytes(l.bytes) + " / " + human_bytes(l.total);
    double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - l.started).count();
    if (secs > 0.2) s += "  " + human_bytes(static_cast<uint64_t>(l.bytes / secs)) + "/s";
  } else if (l.status == "Download complete") {
    s += " " + human_bytes(l.bytes);
  }
  return s;
}

void ProgressRenderer::redraw(bool force) {
  auto now = std::chrono::steady_clock::now();
  if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  if (drawn_ > 0) std::fprintf(out_, "\x1b[%zuA", drawn_);
  for (const auto& d : order_) std::fprintf(out_, "\x1b[2K%s\n", render(d, lines_[d]).c_str());
  drawn_ = order_.size();
  std::fflush(out_);
}

void ProgressRenderer::handle(const ProgressEvent& e) {
  std::lock_guard lock(mu_);
  using K = ProgressEvent::Kind;
  if (e.kind == K::kResolved) {
    if (tty_ && drawn_ > 0) redraw(true), drawn_ = 0;
    std::fprintf(out_, "%s: resolved to %s\n", e.note.c_str(), e.digest.str().c_str());
    std::fflush(out_);
    return;
  }
  if (!tty_) {
    const char* what = nullptr;
    std::string extra;
    switch (e.kind) {
      case K::kExists:
        what = "already present";
        break;
      case K::kDone:
        what = "downloaded";
        extra = " " + human_bytes(e.bytes);
        break;
      case K::kRetry:
        what = "retrying";
        extra = " at " + human_bytes(e.bytes) + ": " + e.note;
        break;
      default:
        return;  // starts and byte counts are noise in a log
    }
    std::fprintf(out_, "%s %s%s\n", short_digest(e.digest).c_str(), what, extra.c_str());
    std::fflush(out_);
    return;
  }
  auto [it, fresh] = lines_.try_emplace(e.digest);
  if (fresh) {
    order_.push_back(e.digest);
    it->second.started = std::chrono::steady_clock::now();
  }
  Line& l = it->second;
  bool force = true;
  switch (e.kind) {
    case K::kStart:
      l.status = "Waiting";
      l.total = e.total;
      break;
    case K::kBytes:
      l.status = "Downloading";
      l.bytes = e.bytes;
      l.total = e.total ? e.total : l.total;
      force = false;
      break;
    case K::kExists:
      l.status = "Already exists";
      break;
    case K::kRetry:
      l.status = "Retrying (" + e.note + ")";
      l.bytes = e.bytes;
      break;
    case K::kDone:
      l.status = "Download complete";
      l.bytes = e.bytes;
      break;
    default:
      break;
  }
  redraw(force);
}

}  // namespace lockstep::registry
