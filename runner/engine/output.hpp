#pragma once
// Live output of a run: whole lines, each prefixed by its job's display name,
// one colour per job on a terminal, plain text otherwise. Every line passes
// through the Masker first, so secrets never reach the terminal or a log.
#include <cstdio>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace lockstep::runner {

// Replaces every registered secret value with "***". Longer secrets are
// replaced first so that a secret containing another is masked whole.
class Masker {
 public:
  // Registers the value, the value trimmed and, for a multi-line value,
  // each of its lines trimmed (GitHub's runner does the same for secrets
  // and ::add-mask::): a value that is only blanks is no secret. Each of
  // those is also masked in the encoded forms GitHub's runner masks (base64
  // at any alignment, JSON, URI, XML, shell and expression escapes) when
  // the encoded form is at least 6 characters long.
  void add(std::string secret);
  std::string mask(std::string_view text) const;

 private:
  mutable std::mutex mu_;
  std::vector<std::string> secrets_;  // sorted longest first
};

class Console {
 public:
  explicit Console(FILE* out, bool color);
  static bool stdout_is_tty();

  // Assigns a stable colour to each job prefix in the order first seen.
  void line(const std::string& prefix, std::string_view text, bool is_stderr = false);
  void plain(std::string_view text);  // no prefix, still whole-line atomic
  bool color() const { return color_; }

 private:
  FILE* out_;
  bool color_;
  std::mutex mu_;
  std::vector<std::string> prefixes_;
};

}  // namespace lockstep::runner
