#pragma once
// The built-in actions that `uses:` may name (any @version): checkout, cache,
// upload-artifact, download-artifact. They run in the runner, on the job's
// workspace as seen from the host, never as JavaScript or containers.
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace lockstep::runner {

struct RunContext;
struct ResolvedInput;

// What a built-in action sees of its job.
struct ActionEnv {
  RunContext* run = nullptr;
  std::string job_display;                       // "build (gcc)"
  std::filesystem::path workspace_host;          // the job's $GITHUB_WORKSPACE on the host
  std::string workspace_container;               // the same, as the container sees it
  std::filesystem::path home_host;               // the job's $HOME on the host
  std::map<std::string, std::string> with;       // evaluated `with:` inputs
  std::function<void(const std::string&)> note;  // a line in the job's log
  bool job_succeeded = true;                     // for post-job cache saves
  std::vector<ResolvedInput>* inputs = nullptr;  // checkouts add what they resolved to
  // "url@ref" -> commit resolved when the job started (its hash names them).
  const std::map<std::string, std::string>* checkouts = nullptr;
};

struct ActionResult {
  std::map<std::string, std::string> outputs;
  // Called after the job's steps (actions/cache saves there). May be empty.
  std::function<Status(bool job_succeeded)> post;
};

// "actions/checkout@v4" -> "actions/checkout"; empty when not built in.
std::string builtin_action_name(const std::string& uses);

// Runs a built-in; errors are one line naming the action and the input.
Result<ActionResult> run_builtin_action(const std::string& uses, ActionEnv& env);

}  // namespace lockstep::runner
