#include "runner/run_options.hpp"

#include <cstdlib>

#include "common/fs.hpp"
#include "runner/project.hpp"
#include "runner/pull.hpp"

namespace lockstep::runner {

Result<std::pair<std::string, std::string>> split_key_value(const std::string& s,
                                                            const char* option, const char* form) {
  auto eq = s.find('=');
  if (eq == std::string::npos || eq == 0)
    return fail(std::string("--") + option + " '" + s + "': expected " + form, ErrorKind::kUsage);
  return std::make_pair(s.substr(0, eq), s.substr(eq + 1));
}

Result<std::filesystem::path> workflow_argument(const ParsedArgs& p) {
  if (p.positionals.size() > 1)
    return fail("expected at most one WORKFLOW, got " + std::to_string(p.positionals.size()),
                ErrorKind::kUsage);
  if (p.positionals.empty()) return default_workflow();
  return std::filesystem::path(p.positionals[0]);
}

Status add_selection_options(const ParsedArgs& p, RunOptions& o) {
  for (const auto& j : p.all("job")) o.jobs.push_back(j);
  for (const auto& m : p.all("matrix")) {
    LS_TRY_ASSIGN(auto kv, split_key_value(m, "matrix"));
    o.matrix_filter.push_back(kv);
  }
  for (const auto& e : p.all("env")) {
    LS_TRY_ASSIGN(auto kv, split_key_value(e, "env"));
    o.env.push_back(kv);
  }
  for (const auto& s : p.all("platform")) {
    LS_TRY_ASSIGN(auto kv, split_key_value(s, "platform", "LABEL=IMAGE"));
    o.platforms[kv.first] = kv.second;
  }
  return {};
}

Status add_secret_and_pull_options(const ParsedArgs& p, RunOptions& o) {
  for (const auto& s : p.all("secret")) {
    LS_TRY_ASSIGN(auto kv, split_key_value(s, "secret"));
    o.secrets[kv.first] = kv.second;
  }
  for (const auto& f : p.all("secret-file")) {
    LS_TRY_ASSIGN(auto secrets, read_secret_file(f));
    for (auto& [k, v] : secrets) o.secrets[k] = v;
  }
  o.insecure_registries = p.all("insecure-registry");
  LS_TRY_ASSIGN(o.mirror, mirror_option(p));
  if (auto u = p.get("actions-url")) {
    if (u->empty()) return fail("--actions-url: expected a URL or a directory", ErrorKind::kUsage);
    o.actions.base_url = *u;
    o.actions_url_given = true;
  }
  return {};
}

Result<std::string> mirror_option(const ParsedArgs& p) {
  if (auto m = p.get("mirror")) return normalize_mirror_url(*m, "--mirror");
  if (const char* env = std::getenv("LOCKSTEP_MIRROR"); env && *env)
    return normalize_mirror_url(env, "LOCKSTEP_MIRROR");
  return std::string();
}

Result<std::map<std::string, std::string>> read_secret_file(const std::string& f) {
  std::map<std::string, std::string> out;
  auto text = read_file(f);
  if (!text)
    return fail(std::move(text.error()).context("--secret-file").set_kind(ErrorKind::kUsage));
  size_t pos = 0, lineno = 0;
  while (pos < text->size()) {
    size_t nl = text->find('\n', pos);
    std::string line = text->substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text->size() : nl + 1;
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    auto eq = line.find('=');
    if (eq == std::string::npos || eq == 0)
      return fail(f + ":" + std::to_string(lineno) + ": expected KEY=VALUE", ErrorKind::kUsage);
    out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

Status apply_config_mirror(const pipeline::ProjectConfig& config, std::string& mirror) {
  if (!mirror.empty() || config.mirror.empty()) return {};
  auto m = normalize_mirror_url(config.mirror, ".lockstep.yml mirror");
  if (!m) return fail(std::move(m.error()).set_kind(ErrorKind::kUsage));
  mirror = *m;
  return {};
}

void apply_config_actions(const pipeline::ProjectConfig& config, ActionsConfig& actions,
                          bool url_given) {
  auto place = [&](const std::string& u) {
    if (u.find("://") != std::string::npos || u.empty() || u[0] == '/' || config.file.empty())
      return u;
    return (std::filesystem::absolute(config.file).parent_path() / u).lexically_normal().string();
  };
  if (!url_given && !config.actions_url.empty()) actions.base_url = place(config.actions_url);
  for (const auto& [owner, url] : config.action_owners) actions.owners[owner] = place(url);
}

Status apply_project_config(const pipeline::ProjectConfig& config, RunOptions& o) {
  apply_config_actions(config, o.actions, o.actions_url_given);
  for (const auto& [label, image] : config.platforms) o.platforms.emplace(label, image);
  LS_TRY(apply_config_mirror(config, o.mirror));
  o.userns = o.userns || config.userns;
  o.default_options = config.default_options;
  o.egress_allow = config.egress_allow;
  o.egress_unpinned = config.egress_unpinned;
  return {};
}

}  // namespace lockstep::runner
