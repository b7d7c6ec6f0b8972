// A job's log: every line masked, timestamped in runs/<id>/jobs/<n>/log.txt,
// prefixed on the console; ::group:: folded on a terminal.
#include "runner/engine/job_internal.hpp"

namespace lockstep::runner::detail {

JobLog::JobLog(Console& console, const Masker& masker, std::string prefix, const fs::path& file)
    : console_(console), masker_(masker), prefix_(std::move(prefix)), out_(file, std::ios::app) {}

void JobLog::line(executor::Stream stream, std::string_view raw,
                  std::chrono::system_clock::time_point when) {
  std::string masked = masker_.mask(raw);
  if (folding_)
    ++folded_;  // the log file keeps every line; the terminal shows the group's one line
  else
    console_.line(prefix_, masked, stream == executor::Stream::kStderr);
  std::lock_guard lk(mu_);
  auto secs = std::chrono::duration_cast<std::chrono::milliseconds>(when.time_since_epoch());
  out_ << secs.count() / 1000 << '.' << (secs.count() % 1000) / 100
       << (stream == executor::Stream::kStderr ? " E " : " O ") << masked << '\n';
  tail_.push_back(std::move(masked));
  if (tail_.size() > 30) tail_.pop_front();
}

void JobLog::note(const std::string& text) {
  std::string masked = masker_.mask(text);
  console_.line(prefix_, masked);
  std::lock_guard lk(mu_);
  out_ << "-- " << masked << '\n';
  tail_.push_back(masked);
  if (tail_.size() > 30) tail_.pop_front();
}

void JobLog::begin_group(const std::string& title) {
  end_group();
  std::string masked = masker_.mask(title);
  {
    std::lock_guard lk(mu_);
    out_ << "-- group: " << masked << '\n';
  }
  if (console_.color()) {
    folding_ = true;
    folded_ = 0;
    group_title_ = masked;
  } else {
    console_.line(prefix_, "\u25b8 " + masked);
  }
}

void JobLog::end_group() {
  if (!folding_) return;
  folding_ = false;
  console_.line(prefix_, "\u25b8 " + group_title_ + " (" + std::to_string(folded_) +
                             (folded_ == 1 ? " line" : " lines") + ")");
}

std::string JobLog::take_tail() {
  std::lock_guard lk(mu_);
  std::string s;
  for (const auto& l : tail_) s += l + "\n";
  tail_.clear();
  return s;
}

}  // namespace lockstep::runner::detail
