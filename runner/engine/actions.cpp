#include "runner/engine/actions.hpp"

#include <algorithm>

#include "cache/git_checkout.hpp"
#include "cache/git_mirror.hpp"
#include "cache/git_worktree.hpp"
#include "runner/engine/job.hpp"
#include "runner/engine/lock_use.hpp"

namespace lockstep::runner {
namespace fs = std::filesystem;

// actions/cache, upload-artifact and download-artifact (actions_storage.cpp).
Result<ActionResult> run_storage_action(const std::string& name, ActionEnv& env);

namespace {

const char* kBuiltins[] = {"actions/checkout",        "actions/cache",
                           "actions/cache/restore",   "actions/cache/save",
                           "actions/upload-artifact", "actions/download-artifact"};

std::string builtin_list() {
  std::string s;
  for (const char* b : kBuiltins) s += (s.empty() ? "" : ", ") + std::string(b);
  return s;
}

Status check_inputs(const std::string& action, const std::map<std::string, std::string>& with,
                    std::initializer_list<const char*> known) {
  for (const auto& [k, v] : with) {
    if (std::find_if(known.begin(), known.end(), [&](const char* n) { return k == n; }) ==
        known.end()) {
      std::string list;
      for (const char* n : known) list += (list.empty() ? "" : ", ") + std::string(n);
      return fail(action + ": unknown input '" + k + "' (supported: " + list + ")",
                  ErrorKind::kWorkflow);
    }
  }
  return {};
}

Result<bool> bool_input(const std::string& action, const std::map<std::string, std::string>& with,
                        const char* key, bool dflt) {
  auto it = with.find(key);
  if (it == with.end() || it->second.empty()) return dflt;
  if (it->second == "true") return true;
  if (it->second == "false") return false;
  return fail(action + ": input '" + key + "' must be true or false, got '" + it->second + "'",
              ErrorKind::kWorkflow);
}

// A relative path inside the workspace, refusing escapes.
Result<fs::path> inside(const fs::path& root, const std::string& rel, const std::string& what) {
  fs::path p = fs::path(rel).lexically_normal();
  if (p.is_absolute() || (!p.empty() && *p.begin() == ".."))
    return fail(what + " '" + rel + "' must be a relative path inside the workspace",
                ErrorKind::kWorkflow);
  return p.empty() || p == "." ? root : root / p;
}

Result<ActionResult> checkout(ActionEnv& env) {
  const std::string action = "actions/checkout";
  LS_TRY(check_inputs(action, env.with,
                      {"repository", "ref", "path", "fetch-depth", "submodules", "clean", "token",
                       "persist-credentials", "lfs", "fetch-tags", "show-progress"}));
  const RunContext& run = *env.run;
  cache::CheckoutRequest req;
  auto get = [&](const char* k) {
    auto it = env.with.find(k);
    return it == env.with.end() ? std::string() : it->second;
  };
  std::string repository = get("repository");
  if (repository.empty()) {
    if (run.source_url.empty())
      return fail(action +
                      ": no repository to check out: lockstep was not started inside a git "
                      "repository; give 'repository:' or run with --repo URL",
                  ErrorKind::kWorkflow);
    req.url = run.source_url;
    req.ref = get("ref").empty() ? run.source_commit : get("ref");
  } else {
    req.url = repository;
    req.ref = get("ref");
  }
  LS_TRY_ASSIGN(req.path, inside(env.workspace_host, get("path"), action + ": path"));
  std::string depth = get("fetch-depth");
  if (!depth.empty()) {
    char* end = nullptr;
    long d = std::strtol(depth.c_str(), &end, 10);
    if (*end || d < 0)
      return fail(action + ": fetch-depth must be a number >= 0, got '" + depth + "'",
                  ErrorKind::kWorkflow);
    req.fetch_depth = static_cast<int>(d);
  }
  std::string subs = get("submodules");
  if (subs.empty() || subs == "false")
    req.submodules = cache::SubmoduleMode::kNone;
  else if (subs == "true")
    req.submodules = cache::SubmoduleMode::kTopLevel;
  else if (subs == "recursive")
    req.submodules = cache::SubmoduleMode::kRecursive;
  else
    return fail(action + ": submodules must be true, false or recursive, got '" + subs + "'",
                ErrorKind::kWorkflow);
  LS_TRY_ASSIGN(req.clean, bool_input(action, env.with, "clean", true));
  if (get("lfs") == "true") return fail(action + ": lfs is not supported", ErrorKind::kUnsupported);

  std::optional<std::string> locked =
      pin_checkout(run.lock, repository, get("ref"), run.source_url);
  if (locked) req.ref = *locked;
  if (env.checkouts && !(repository.empty() && get("ref").empty())) {
    std::string key = (repository.empty() ? run.source_url : repository) + "@" +
                      (get("ref").empty() ? "HEAD" : get("ref"));
    if (auto it = env.checkouts->find(key); it != env.checkouts->end()) req.commit = it->second;
  }
  cache::GitMirrors mirrors(run.state_dir);
  LS_TRY_ASSIGN(cache::CheckoutResult r, cache::checkout(mirrors, req));
  if (locked && r.commit != *locked)
    return fail(action + ": " + req.url + " gave " + r.commit + ", lockstep.lock pins " + *locked,
                ErrorKind::kIntegrity);
  if (env.inputs)
    env.inputs->push_back({"checkout", req.url + "@" + (get("ref").empty() ? "HEAD" : get("ref")),
                           r.commit, locked.has_value()});
  env.note("checked out " + req.url + " at " + r.commit +
           (r.mirror.fetched && r.mirror.stats.received_objects > 0
                ? " (fetched " + std::to_string(r.mirror.stats.received_objects) + " objects)"
                : " (mirror current)"));
  if (repository.empty() && !run.dirty_patch.empty()) {
    LS_TRY(cache::apply_patch(req.path, run.dirty_patch));
    env.note("applied the working tree's uncommitted changes (--dirty)");
  }
  ActionResult out;
  out.outputs["ref"] = r.ref.name;
  out.outputs["commit"] = r.commit;
  return out;
}

}  // namespace

std::string builtin_action_name(const std::string& uses) {
  std::string name = uses.substr(0, uses.find('@'));
  for (const char* b : kBuiltins)
    if (name == b) return name;
  return "";
}

Result<ActionResult> run_builtin_action(const std::string& uses, ActionEnv& env) {
  std::string name = builtin_action_name(uses);
  if (name == "actions/checkout") return checkout(env);
  if (name.empty())
    return fail("uses: " + uses + " is not a built-in action; lockstep runs only " +
                    builtin_list() + " (no JavaScript or Docker actions)",
                ErrorKind::kUnsupported);
  return run_storage_action(name, env);
}

}  // namespace lockstep::runner
