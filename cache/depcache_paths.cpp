#include "cache/depcache_paths.hpp"

#include <fnmatch.h>

#include <algorithm>
#include <system_error>

namespace lockstep::cache {
namespace fs = std::filesystem;

namespace {

std::vector<std::string> components(const fs::path& p) {
  std::vector<std::string> out;
  for (const auto& c : p) {
    const std::string s = c.string();
    if (s == "/" || s.empty()) continue;
    out.push_back(s);
  }
  return out;
}

bool match_from(const std::vector<std::string>& pat, size_t pi, const std::vector<std::string>& s,
                size_t si) {
  if (pi == pat.size()) return si == s.size();
  if (pat[pi] == "**")
    return match_from(pat, pi + 1, s, si) || (si < s.size() && match_from(pat, pi, s, si + 1));
  if (si == s.size()) return false;
  if (::fnmatch(pat[pi].c_str(), s[si].c_str(), 0) != 0) return false;
  return match_from(pat, pi + 1, s, si + 1);
}

void walk(const fs::path& dir, const PathPattern& p, std::vector<fs::path>& out) {
  std::error_code ec;
  for (auto it =
           fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const fs::path path = it->path();
    if (glob_match(p.abs, path)) {
      out.push_back(path);
      if (it->is_directory(ec) && !it->is_symlink(ec)) it.disable_recursion_pending();
    }
  }
}

}  // namespace

bool has_wildcard(const std::string& s) {
  return s.find_first_of("*?[") != std::string::npos;
}

bool is_within(const fs::path& path, const fs::path& dir) {
  auto pc = components(path), dc = components(dir);
  return pc.size() >= dc.size() && std::equal(dc.begin(), dc.end(), pc.begin());
}

bool glob_match(const fs::path& pattern, const fs::path& path) {
  return match_from(components(pattern), 0, components(path), 0);
}

Result<std::vector<PathPattern>> resolve_patterns(const std::vector<std::string>& patterns,
                                                  const JobDirs& dirs, bool confine,
                                                  std::string_view what) {
  std::vector<PathPattern> out;
  for (const auto& raw : patterns) {
    std::string t = raw;
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t' || t.back() == '\r')) t.pop_back();
    while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.erase(t.begin());
    if (t.empty()) continue;
    PathPattern p;
    p.text = t;
    if (t[0] == '!') {
      p.exclude = true;
      t.erase(t.begin());
    }
    fs::path abs;
    if (t == "~")
      abs = dirs.home;
    else if (t.rfind("~/", 0) == 0)
      abs = dirs.home / t.substr(2);
    else if (t[0] == '/')
      abs = t;
    else
      abs = dirs.workspace / t;
    p.abs = abs.lexically_normal();
    if (p.abs.has_filename() == false && p.abs != p.abs.root_path()) p.abs = p.abs.parent_path();
    for (const auto& c : p.abs) {
      if (has_wildcard(c.string())) {
        p.has_glob = true;
        break;
      }
      p.base /= c;
    }
    if (confine && !p.exclude &&
        !(is_within(p.base, dirs.workspace.lexically_normal()) ||
          (!dirs.home.empty() && is_within(p.base, dirs.home.lexically_normal())))) {
      return fail(std::string(what) + " '" + p.text + "' is outside the workspace and home",
                  ErrorKind::kUsage);
    }
    out.push_back(std::move(p));
  }
  return out;
}

bool excluded(const std::vector<PathPattern>& patterns, const fs::path& path) {
  for (const auto& p : patterns)
    if (p.exclude && (glob_match(p.abs, path) || (!p.has_glob && is_within(path, p.abs))))
      return true;
  return false;
}

std::vector<fs::path> expand_patterns(const std::vector<PathPattern>& patterns) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& p : patterns) {
    if (p.exclude) continue;
    if (!p.has_glob) {
      if (fs::exists(fs::symlink_status(p.abs, ec))) out.push_back(p.abs);
      continue;
    }
    if (fs::is_directory(p.base, ec)) walk(p.base, p, out);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  out.erase(std::remove_if(out.begin(), out.end(),
                           [&](const fs::path& x) { return excluded(patterns, x); }),
            out.end());
  return out;
}

}  // namespace lockstep::cache
