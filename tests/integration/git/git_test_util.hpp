#pragma once
// Helpers for tests that build real git repositories with the git CLI.
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace lockstep::testing {

inline std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

// Runs a shell command; returns its stdout without the trailing newline.
// Throws (failing the test) when it exits non-zero.
inline std::string sh(const std::string& cmd) {
  const std::string full =
      "export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.org GIT_COMMITTER_NAME=t "
      "GIT_COMMITTER_EMAIL=t@example.org GIT_CONFIG_NOSYSTEM=1 HOME=/nonexistent "
      "GIT_AUTHOR_DATE='2024-01-01T00:00:00Z' GIT_COMMITTER_DATE='2024-01-01T00:00:00Z'; " +
      cmd;
  FILE* p = ::popen(full.c_str(), "r");
  if (!p) throw std::runtime_error("popen failed: " + cmd);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = ::pclose(p);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    throw std::runtime_error("command failed: " + cmd + "\n" + out);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

inline std::string git(const std::filesystem::path& repo, const std::string& args) {
  return sh("git -C " + quote(repo.string()) + " " + args);
}

inline void write(const std::filesystem::path& p, const std::string& content) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
}

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A new repository with branch main and one commit holding `file`.
inline void init_repo(const std::filesystem::path& dir, const std::string& file = "README",
                      const std::string& content = "hello\n") {
  std::filesystem::create_directories(dir);
  git(dir, "init -q -b main");
  write(dir / file, content);
  git(dir, "add -A");
  git(dir, "commit -q -m initial");
}

inline std::string commit_file(const std::filesystem::path& dir, const std::string& file,
                               const std::string& content, const std::string& msg = "change") {
  write(dir / file, content);
  git(dir, "add -A");
  git(dir, "commit -q -m " + quote(msg));
  return git(dir, "rev-parse HEAD");
}

}  // namespace lockstep::testing
