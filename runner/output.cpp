#include "runner/output.hpp"

#include <unistd.h>

#include <algorithm>

namespace lockstep::runner {

namespace {

std::string_view trimmed(std::string_view s) {
  const char* ws = " \t\r\n\f\v";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

}  // namespace

void Masker::add(std::string secret) {
  // Masking a one-character "secret" would garble every line; GitHub masks
  // any non-empty value, but a single space or newline is never a secret.
  if (trimmed(secret).empty()) return;
  // As GitHub's runner: the value, the value trimmed, and each of its lines
  // trimmed, since a step's output reaches the log one line at a time.
  std::vector<std::string> values = {secret, std::string(trimmed(secret))};
  if (secret.find_first_of("\r\n") != std::string::npos) {
    for (size_t start = 0; start <= secret.size();) {
      size_t end = secret.find_first_of("\r\n", start);
      if (end == std::string::npos) end = secret.size();
      std::string_view line = trimmed(std::string_view(secret).substr(start, end - start));
      if (!line.empty()) values.emplace_back(line);
      start = end + 1;
    }
  }
  std::lock_guard lk(mu_);
  for (auto& v : values)
    if (std::find(secrets_.begin(), secrets_.end(), v) == secrets_.end())
      secrets_.push_back(std::move(v));
  std::stable_sort(secrets_.begin(), secrets_.end(),
                   [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

std::string Masker::mask(std::string_view text) const {
  std::string out(text);
  std::lock_guard lk(mu_);
  for (const auto& s : secrets_) {
    size_t pos = 0;
    while ((pos = out.find(s, pos)) != std::string::npos) {
      out.replace(pos, s.size(), "***");
      pos += 3;
    }
  }
  return out;
}

Console::Console(FILE* out, bool color) : out_(out), color_(color) {}

bool Console::stdout_is_tty() {
  return ::isatty(STDOUT_FILENO) == 1;
}

void Console::line(const std::string& prefix, std::string_view text, bool is_stderr) {
  static constexpr int kColors[] = {36, 33, 35, 32, 34, 96, 93, 95, 92, 94};
  std::lock_guard lk(mu_);
  std::string buf;
  buf.reserve(prefix.size() + text.size() + 16);
  if (color_) {
    auto it = std::find(prefixes_.begin(), prefixes_.end(), prefix);
    size_t idx = static_cast<size_t>(it - prefixes_.begin());
    if (it == prefixes_.end()) prefixes_.push_back(prefix);
    buf +=
        "\033[" + std::to_string(kColors[idx % std::size(kColors)]) + "m[" + prefix + "]\033[0m ";
    if (is_stderr) buf += "\033[2m";
    buf.append(text);
    if (is_stderr) buf += "\033[0m";
  } else {
    buf += "[" + prefix + "] ";
    buf.append(text);
  }
  buf += '\n';
  std::fwrite(buf.data(), 1, buf.size(), out_);
  std::fflush(out_);
}

void Console::plain(std::string_view text) {
  std::lock_guard lk(mu_);
  std::fwrite(text.data(), 1, text.size(), out_);
  if (text.empty() || text.back() != '\n') std::fputc('\n', out_);
  std::fflush(out_);
}

}  // namespace lockstep::runner
