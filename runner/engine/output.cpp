#include "runner/engine/output.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>

#include <nlohmann/json.hpp>

namespace lockstep::runner {

namespace {

std::string_view trimmed(std::string_view s) {
  const char* ws = " \t\r\n\f\v";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

std::string base64(std::string_view in) {
  static constexpr char kDigits[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v =
        uint32_t(uint8_t(in[i])) << 16 | uint32_t(uint8_t(in[i + 1])) << 8 | uint8_t(in[i + 2]);
    for (int shift : {18, 12, 6, 0}) out += kDigits[(v >> shift) & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint32_t(uint8_t(in[i])) << 16;
    out += kDigits[(v >> 18) & 63];
    out += kDigits[(v >> 12) & 63];
  } else if (i + 2 == in.size()) {
    uint32_t v = uint32_t(uint8_t(in[i])) << 16 | uint32_t(uint8_t(in[i + 1])) << 8;
    for (int shift : {18, 12, 6}) out += kDigits[(v >> shift) & 63];
  }
  return out;  // no padding: some encoders omit it
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size())
    s.replace(pos, from.size(), to);
  return s;
}

// The forms a secret takes when a step encodes it, as GitHub's runner masks
// them: base64 at each of the three byte alignments it can start at inside a
// longer encoded text (standard and URL-safe alphabets, without padding), a
// JSON string, a URI component, XML text, a double-quoted shell argument,
// an expression string, and a value without its surrounding double quotes.
std::vector<std::string> encoded_forms(const std::string& v) {
  std::vector<std::string> out;
  for (size_t offset = 0; offset <= 2 && offset < v.size(); ++offset) {
    std::string b = base64(std::string_view(v).substr(offset));
    out.push_back(b);
    std::replace(b.begin(), b.end(), '+', '-');
    std::replace(b.begin(), b.end(), '/', '_');
    out.push_back(std::move(b));
  }
  std::string json =
      nlohmann::json(v).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  out.push_back(json.substr(1, json.size() - 2));
  std::string uri;
  for (unsigned char c : v) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      uri += char(c);
    } else {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", c);
      uri += hex;
    }
  }
  out.push_back(std::move(uri));
  std::string xml = replace_all(v, "&", "&amp;");
  xml = replace_all(xml, "<", "&lt;");
  xml = replace_all(xml, ">", "&gt;");
  xml = replace_all(xml, "\"", "&quot;");
  xml = replace_all(xml, "'", "&apos;");
  out.push_back(std::move(xml));
  out.push_back(replace_all(v, "\"", "\\\""));
  out.push_back(replace_all(v, "'", "''"));
  if (v.size() > 8 && v.front() == '"' && v.back() == '"') out.push_back(v.substr(1, v.size() - 2));
  return out;
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
  // Encoded forms shorter than this would mask unrelated text (the base64 of a
  // secret's last byte is two characters).
  constexpr size_t kMinEncoded = 6;
  for (size_t i = 0, n = values.size(); i < n; ++i)
    for (auto& e : encoded_forms(values[i]))
      if (e.size() >= kMinEncoded) values.push_back(std::move(e));
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
