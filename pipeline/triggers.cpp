#include "pipeline/triggers.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <regex>

namespace lockstep::pipeline {

namespace {

Error at(const std::string& file, const YAML::Node& n, std::string msg) {
  auto m = n.Mark();
  return Error(
      file + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1) + ": " + msg, 0,
      ErrorKind::kWorkflow);
}

std::string glob_to_regex(std::string_view g) {
  std::string re;
  for (size_t i = 0; i < g.size(); ++i) {
    char c = g[i];
    if (c == '*') {
      if (i + 1 < g.size() && g[i + 1] == '*') {
        re += ".*";
        ++i;
      } else {
        re += "[^/]*";
      }
    } else if (c == '?' || c == '+') {
      re += c;  // of the preceding character, as GitHub's filters define them
    } else if (c == '[') {
      size_t close = g.find(']', i + 1);
      if (close == std::string_view::npos) {
        re += "\\[";
      } else {
        re += std::string(g.substr(i, close - i + 1));
        i = close;
      }
    } else if (std::string_view("\\^$.|(){}").find(c) != std::string_view::npos) {
      re += '\\';
      re += c;
    } else {
      re += c;
    }
  }
  return re;
}

// The last matching pattern decides; `!` patterns exclude.
bool filters_match(const std::vector<std::string>& patterns, std::string_view name) {
  bool matched = false;
  for (const auto& p : patterns) {
    bool neg = !p.empty() && p[0] == '!';
    if (filter_glob_match(neg ? std::string_view(p).substr(1) : std::string_view(p), name))
      matched = !neg;
  }
  return matched;
}

Result<std::vector<std::string>> list(const YAML::Node& n, const std::string& file,
                                      const std::string& what) {
  std::vector<std::string> out;
  if (n.IsScalar()) {
    out.push_back(n.Scalar());
  } else if (n.IsSequence()) {
    for (const auto& e : n) {
      if (!e.IsScalar()) return fail(at(file, e, "'" + what + "' must list strings"));
      out.push_back(e.Scalar());
    }
  } else {
    return fail(at(file, n, "'" + what + "' must be a string or a list of strings"));
  }
  return out;
}

Result<bool> match_push(const YAML::Node& f, const std::string& file, const TriggerEvent& ev) {
  if (!f || f.IsNull()) return true;
  if (!f.IsMap()) return fail(at(file, f, "'push' must be a mapping of filters"));
  bool has_branches = f["branches"] || f["branches-ignore"];
  bool has_tags = f["tags"] || f["tags-ignore"];
  if (f["branches"] && f["branches-ignore"])
    return fail(at(file, f, "'push' cannot have both 'branches' and 'branches-ignore'"));
  if (f["tags"] && f["tags-ignore"])
    return fail(at(file, f, "'push' cannot have both 'tags' and 'tags-ignore'"));
  if (f["paths"] && f["paths-ignore"])
    return fail(at(file, f, "'push' cannot have both 'paths' and 'paths-ignore'"));
  if (!ev.tag.empty()) {
    if (has_branches && !has_tags) return false;
    if (f["tags"]) {
      LS_TRY_ASSIGN(auto pats, list(f["tags"], file, "tags"));
      if (!filters_match(pats, ev.tag)) return false;
    } else if (f["tags-ignore"]) {
      LS_TRY_ASSIGN(auto pats, list(f["tags-ignore"], file, "tags-ignore"));
      if (filters_match(pats, ev.tag)) return false;
    }
    return true;  // path filters are not evaluated for tags
  }
  if (has_tags && !has_branches) return false;
  if (f["branches"]) {
    LS_TRY_ASSIGN(auto pats, list(f["branches"], file, "branches"));
    if (!filters_match(pats, ev.branch)) return false;
  } else if (f["branches-ignore"]) {
    LS_TRY_ASSIGN(auto pats, list(f["branches-ignore"], file, "branches-ignore"));
    if (filters_match(pats, ev.branch)) return false;
  }
  return true;
}

Result<bool> match_paths(const YAML::Node& f, const std::string& file, const TriggerEvent& ev) {
  if (!f || !f.IsMap() || !ev.tag.empty()) return true;
  // Without a change set (a new branch) GitHub runs the workflow.
  if (!ev.paths_known) return true;
  if (f["paths"]) {
    LS_TRY_ASSIGN(auto pats, list(f["paths"], file, "paths"));
    for (const auto& p : ev.changed_paths)
      if (filters_match(pats, p)) return true;
    return false;
  }
  if (f["paths-ignore"]) {
    LS_TRY_ASSIGN(auto pats, list(f["paths-ignore"], file, "paths-ignore"));
    for (const auto& p : ev.changed_paths)
      if (!filters_match(pats, p)) return true;
    return false;
  }
  return true;
}

Result<bool> match_pull_request(const YAML::Node& f, const std::string& file,
                                const TriggerEvent& ev) {
  std::vector<std::string> types = {"opened", "synchronize", "reopened"};
  if (f && !f.IsNull()) {
    if (!f.IsMap()) return fail(at(file, f, "'pull_request' must be a mapping of filters"));
    if (f["types"]) {
      LS_TRY_ASSIGN(types, list(f["types"], file, "types"));
    }
    if (f["branches"] && f["branches-ignore"])
      return fail(at(file, f, "'pull_request' cannot have both 'branches' and 'branches-ignore'"));
    if (f["branches"]) {
      LS_TRY_ASSIGN(auto pats, list(f["branches"], file, "branches"));
      if (!filters_match(pats, ev.branch)) return false;
    } else if (f["branches-ignore"]) {
      LS_TRY_ASSIGN(auto pats, list(f["branches-ignore"], file, "branches-ignore"));
      if (filters_match(pats, ev.branch)) return false;
    }
  }
  if (std::find(types.begin(), types.end(), ev.action) == types.end()) return false;
  return match_paths(f, file, ev);
}

}  // namespace

bool filter_glob_match(std::string_view pattern, std::string_view name) {
  try {
    return std::regex_match(name.begin(), name.end(), std::regex(glob_to_regex(pattern)));
  } catch (const std::regex_error&) {
    return false;
  }
}

Result<bool> workflow_triggered(std::string_view yaml, const std::string& file,
                                const TriggerEvent& ev) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return fail(Error(file + ":" + std::to_string(e.mark.line + 1) + ":" +
                          std::to_string(e.mark.column + 1) + ": " + e.msg,
                      0, ErrorKind::kWorkflow));
  }
  if (!root.IsMap()) return false;
  YAML::Node on = root["on"];
  // YAML 1.1 reads a bare `on` key as the boolean true.
  if (!on) on = root["true"];
  if (!on) return false;
  if (on.IsScalar()) return on.Scalar() == ev.name;
  if (on.IsSequence()) {
    for (const auto& e : on)
      if (e.IsScalar() && e.Scalar() == ev.name) return true;
    return false;
  }
  if (!on.IsMap()) return fail(at(file, on, "'on' must be an event, a list or a mapping"));
  YAML::Node f = on[ev.name];
  if (!f) return false;
  if (ev.name == "push") {
    LS_TRY_ASSIGN(bool refs, match_push(f, file, ev));
    if (!refs) return false;
    return match_paths(f, file, ev);
  }
  if (ev.name == "pull_request") return match_pull_request(f, file, ev);
  return true;
}

}  // namespace lockstep::pipeline
