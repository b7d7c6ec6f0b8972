#pragma once
// Which workflows an event starts: the `on:` key evaluated as GitHub does
// for `push` and `pull_request` (docs/server.md, "Webhooks").
//
// push: `branches`/`branches-ignore` and `tags`/`tags-ignore` select refs;
// when only branch filters are given a tag push does not run (and the other
// way round); `paths`/`paths-ignore` need the changed files and are not
// evaluated for tags. pull_request: `branches` match the base branch,
// `types` default to opened, synchronize and reopened. Patterns are GitHub's
// filter globs: `*` (not '/'), `**`, `?` and `+` (of the preceding
// character), `[...]`, and `!` in front to exclude; the last pattern that
// matches decides.
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace lockstep::pipeline {

struct TriggerEvent {
  std::string name;    // "push", "pull_request"
  std::string branch;  // push to a branch; pull_request: the base branch
  std::string tag;     // push of a tag
  std::string action;  // pull_request: "opened", "synchronize", ...
  std::vector<std::string> changed_paths;
  bool paths_known = true;  // false: the change set could not be computed (a new branch)
};

// Whether the workflow text's `on:` starts a run for the event. Errors are
// workflow errors with file:line:col.
Result<bool> workflow_triggered(std::string_view yaml, const std::string& file,
                                const TriggerEvent& ev);

// One filter glob against a name (exposed for tests).
bool filter_glob_match(std::string_view pattern, std::string_view name);

}  // namespace lockstep::pipeline
