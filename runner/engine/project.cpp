#include "runner/engine/project.hpp"

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/paths.hpp"

namespace lockstep::runner {
namespace fs = std::filesystem;

Result<fs::path> default_workflow() {
  fs::path dir = ".github/workflows";
  std::error_code ec;
  std::vector<fs::path> found;
  if (fs::is_directory(dir, ec)) {
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      auto ext = e.path().extension();
      if (ext == ".yml" || ext == ".yaml") found.push_back(e.path());
    }
  }
  std::sort(found.begin(), found.end());
  if (found.size() == 1) return found[0];
  if (found.empty())
    return fail("no workflow given and no .github/workflows/*.yml here; name the WORKFLOW",
                ErrorKind::kUsage);
  std::string names;
  for (const auto& f : found) names += (names.empty() ? "" : ", ") + f.string();
  return fail("several workflows in .github/workflows (" + names + "); name the one to use",
              ErrorKind::kUsage);
}

std::optional<fs::path> repository_root(const fs::path& workflow) {
  std::error_code ec;
  fs::path dir = fs::absolute(workflow, ec).lexically_normal().parent_path();
  for (;;) {
    if (fs::exists(dir / ".git", ec)) return dir;
    if (dir == dir.root_path() || dir.empty()) return std::nullopt;
    dir = dir.parent_path();
  }
}

fs::path project_dir(const fs::path& workflow) {
  if (auto root = repository_root(workflow)) return *root;
  std::error_code ec;
  return fs::absolute(workflow, ec).lexically_normal().parent_path();
}

fs::path default_lock_path(const fs::path& workflow) {
  return project_dir(workflow) / "lockstep.lock";
}

Result<pipeline::ProjectConfig> load_config_for(const fs::path& workflow,
                                                const fs::path& explicit_file) {
  if (!explicit_file.empty()) {
    auto c = pipeline::load_project_config(explicit_file);
    if (!c && c.error().kind() != ErrorKind::kWorkflow)
      return fail(std::move(c.error()).context("--config").set_kind(ErrorKind::kUsage));
    return c;
  }
  std::vector<fs::path> candidates;
  if (auto root = repository_root(workflow)) candidates.push_back(*root);
  std::error_code ec;
  candidates.push_back(fs::absolute(workflow, ec).lexically_normal().parent_path());
  for (const auto& dir : candidates) {
    fs::path f = dir / pipeline::kProjectConfigName;
    if (fs::is_regular_file(f, ec)) return pipeline::load_project_config(f);
  }
  return pipeline::ProjectConfig{};
}

const std::map<std::string, std::string>& hosted_label_images() {
  static const std::map<std::string, std::string> images = {
      {"ubuntu-latest", "docker.io/library/ubuntu:24.04"},
      {"ubuntu-24.04", "docker.io/library/ubuntu:24.04"},
      {"ubuntu-22.04", "docker.io/library/ubuntu:22.04"},
  };
  return images;
}

std::map<std::string, std::string> with_hosted_defaults(
    std::map<std::string, std::string> platforms, std::set<std::string>* defaulted) {
  for (const auto& [label, image] : hosted_label_images())
    if (platforms.emplace(label, image).second && defaulted) defaulted->insert(label);
  return platforms;
}

fs::path choose_state_dir(const fs::path& flag, const pipeline::ProjectConfig& config) {
  if (!flag.empty()) return flag;
  if (const char* h = std::getenv("LOCKSTEP_HOME"); h && *h) return h;
  if (!config.state_dir.empty()) {
    fs::path p = config.state_dir;
    if (p.is_relative()) p = fs::path(config.file).parent_path() / p;
    return p;
  }
  return state_dir();
}

}  // namespace lockstep::runner
