#pragma once
// Where a workflow's project files live, for `lockstep run` and `lockstep
// lock`: the repository root (the nearest directory above the workflow that
// holds .git), `.lockstep.yml` and `lockstep.lock`.
//
// Both files are looked up at the repository root, else in the workflow's
// own directory (a workflow outside any repository). See docs/config.md and
// docs/lockfile.md.
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "common/error.hpp"
#include "pipeline/project_config.hpp"

namespace lockstep::runner {

// The only .yml/.yaml in ./.github/workflows; a usage error naming what was
// found otherwise.
Result<std::filesystem::path> default_workflow();

// The nearest directory at or above the workflow's directory holding .git;
// nullopt when there is none.
std::optional<std::filesystem::path> repository_root(const std::filesystem::path& workflow);

// The repository root, else the workflow's directory (absolute).
std::filesystem::path project_dir(const std::filesystem::path& workflow);

// project_dir(workflow)/lockstep.lock.
std::filesystem::path default_lock_path(const std::filesystem::path& workflow);

// `explicit_file` when given (must exist), else .lockstep.yml at the
// repository root, else next to the workflow; an empty config when there is
// none.
Result<pipeline::ProjectConfig> load_config_for(const std::filesystem::path& workflow,
                                                const std::filesystem::path& explicit_file);

// The images that stand in for GitHub-hosted runner labels a project did
// not map (`runs-on: ubuntu-latest` with no `container:`): the official
// Ubuntu image of that release. GitHub's hosted runners are VM images, not
// container images; the official image is small, kept current by Canonical
// and Docker, pinned by digest like any other image, and JavaScript actions
// bring their own runtime. docs/workflows.md says how to choose another.
const std::map<std::string, std::string>& hosted_label_images();

// `platforms` plus hosted_label_images() for the labels it does not map;
// `defaulted` (if given) receives the labels that were added.
std::map<std::string, std::string> with_hosted_defaults(
    std::map<std::string, std::string> platforms, std::set<std::string>* defaulted = nullptr);

// The state dir: --state-dir, else $LOCKSTEP_HOME, else the config's
// state-dir (relative to the config file), else the default.
std::filesystem::path choose_state_dir(const std::filesystem::path& flag,
                                       const pipeline::ProjectConfig& config);

}  // namespace lockstep::runner
