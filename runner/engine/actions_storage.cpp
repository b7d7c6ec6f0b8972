// actions/cache, actions/upload-artifact and actions/download-artifact, on the
// host side of the job's workspace and home.
#include <sstream>

#include "cache/artifacts.hpp"
#include "cache/depcache.hpp"
#include "runner/engine/actions.hpp"
#include "runner/engine/job.hpp"
#include "runner/engine/remote_cache.hpp"

namespace lockstep::runner {
namespace fs = std::filesystem;

namespace {

std::string input(const ActionEnv& env, const char* key) {
  auto it = env.with.find(key);
  return it == env.with.end() ? std::string() : it->second;
}

// Multi-line inputs (path:, restore-keys:): one entry per non-empty line.
std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    size_t b = l.find_first_not_of(" \t\r"), e = l.find_last_not_of(" \t\r");
    if (b != std::string::npos) out.push_back(l.substr(b, e - b + 1));
  }
  return out;
}

// Workflows name paths as the container sees them; the stores work on the
// host. $GITHUB_WORKSPACE and $HOME map to the job's directories; `~` and
// relative paths are left to the stores.
std::vector<std::string> host_paths(const ActionEnv& env, const std::vector<std::string>& paths) {
  const std::string ws = env.workspace_container, home = "/github/home";
  std::vector<std::string> out;
  for (std::string p : paths) {
    bool neg = !p.empty() && p[0] == '!';
    std::string body = neg ? p.substr(1) : p;
    auto under = [&](const std::string& root) {
      return body == root || body.rfind(root + "/", 0) == 0;
    };
    if (!ws.empty() && under(ws))
      body = (env.workspace_host / body.substr(std::min(body.size(), ws.size() + 1))).string();
    else if (under(home))
      body = (env.home_host / body.substr(std::min(body.size(), home.size() + 1))).string();
    out.push_back(neg ? "!" + body : body);
  }
  return out;
}

Status known_inputs(const std::string& action, const ActionEnv& env,
                    std::initializer_list<const char*> known) {
  for (const auto& [k, v] : env.with) {
    bool ok = false;
    for (const char* n : known) ok = ok || k == n;
    if (!ok) {
      std::string list;
      for (const char* n : known) list += (list.empty() ? "" : ", ") + std::string(n);
      return fail(action + ": unknown input '" + k + "' (supported: " + list + ")",
                  ErrorKind::kWorkflow);
    }
  }
  return {};
}

Result<bool> flag(const std::string& action, const ActionEnv& env, const char* key) {
  std::string v = input(env, key);
  if (v.empty() || v == "false") return false;
  if (v == "true") return true;
  return fail(action + ": input '" + key + "' must be true or false, got '" + v + "'",
              ErrorKind::kWorkflow);
}

// actions/cache (restore now, save after the job when there was no exact
// hit) and actions/cache/restore (restore only).
// Where a job's caches are saved and which it may restore (docs/actions.md,
// "Cache scopes"): its repository's; a pull request's job saves to the pull
// request's own scope and restores from it first, then from the
// repository's, so what a pull request (a fork's code) saves never reaches
// the repository's other runs.
struct CacheScopes {
  std::string save;
  std::vector<std::string> read;
};
CacheScopes cache_scopes(const RunContext& run) {
  auto gs = [&](const char* k) {
    const auto& g = run.github;
    return g.is_object() && g.contains(k) && g[k].is_string() ? g[k].get<std::string>()
                                                              : std::string();
  };
  const std::string repo = "repo " + gs("repository");
  if (gs("event_name") == "pull_request") {
    std::string pr = repo + " " + gs("ref");
    return {pr, {pr, repo}};
  }
  return {repo, {repo}};
}

// The lookup: on the lockstep server's shared caches when the run has one
// (the server picks the scopes), else, or when the server cannot answer,
// in this host's (as GitHub's cache action, a cache service that fails is
// a warning, not a failed step).
Result<cache::CacheLookup> find_cache(ActionEnv& env, const cache::DepCache& store,
                                      const std::string& key,
                                      const std::vector<std::string>& restore_keys,
                                      const std::string& version) {
  if (const auto& remote = env.run->remote_cache) {
    auto found = remote->lookup(key, restore_keys, version);
    if (found) return found;
    env.note("warning: the shared cache could not be asked (" + found.error().message() +
             "); looking in this host's cache");
  }
  return store.lookup(key, restore_keys, version, cache_scopes(*env.run).read);
}

// Saves `key` here and, with a lockstep server, sends it there; a server
// that cannot take it is a warning.
Status save_cache(const std::shared_ptr<const RemoteCache>& remote, const cache::DepCache& store,
                  const std::string& key, const std::vector<std::string>& hpaths,
                  const cache::JobDirs& dirs, const std::string& scope,
                  const std::function<void(const std::string&)>& note, const char* exists_text) {
  auto saved = store.save(key, hpaths, dirs, scope);
  if (!saved) {
    if (saved.error().kind() == ErrorKind::kNotFound) {
      note("cache '" + key + "' not saved: " + saved.error().message());
      return {};
    }
    return fail(std::move(saved.error()).context("save cache '" + key + "'"));
  }
  const std::string size = std::to_string(saved->entry.size) + " bytes";
  if (!remote) {
    note(saved->created ? "saved cache '" + key + "' (" + size + ")"
                        : "cache '" + key + "' " + exists_text);
    return {};
  }
  auto sent = remote->save(store, saved->entry);
  if (!sent)
    note("warning: cache '" + key + "' was saved on this host only: " + sent.error().message());
  else if (*sent)
    note("saved cache '" + key + "' (" + size + ") to " + remote->url());
  else
    note("cache '" + key + "' " + exists_text);
  return {};
}

Result<ActionResult> cache_action(ActionEnv& env, bool save_after) {
  const std::string action = save_after ? "actions/cache" : "actions/cache/restore";
  if (save_after) {
    LS_TRY(known_inputs(action, env,
                        {"key", "path", "restore-keys", "lookup-only", "fail-on-cache-miss",
                         "enableCrossOsArchive", "upload-chunk-size", "save-always"}));
  } else {
    LS_TRY(known_inputs(action, env,
                        {"key", "path", "restore-keys", "lookup-only", "fail-on-cache-miss",
                         "enableCrossOsArchive"}));
  }
  std::string key = input(env, "key");
  if (key.empty()) return fail(action + ": input 'key' is required", ErrorKind::kWorkflow);
  std::vector<std::string> paths = lines_of(input(env, "path"));
  if (paths.empty()) return fail(action + ": input 'path' is required", ErrorKind::kWorkflow);
  LS_TRY_ASSIGN(bool lookup_only, flag(action, env, "lookup-only"));
  LS_TRY_ASSIGN(bool fail_on_miss, flag(action, env, "fail-on-cache-miss"));
  cache::JobDirs dirs{env.workspace_host, env.home_host};
  std::vector<std::string> hpaths = host_paths(env, paths);

  auto store = std::make_shared<cache::DepCache>(env.run->state_dir);
  std::string version = cache::DepCache::version_of(paths);
  const CacheScopes scopes = cache_scopes(*env.run);
  LS_TRY_ASSIGN(cache::CacheLookup found,
                find_cache(env, *store, key, lines_of(input(env, "restore-keys")), version));
  const auto& remote = env.run->remote_cache;
  if (remote && found.entry && !lookup_only) {
    if (auto got = remote->fetch(*store, *found.entry); !got) {
      env.note("warning: cache '" + found.entry->key + "' could not be fetched (" +
               got.error().message() + "); going on without it");
      found = cache::CacheLookup{};
    }
  }
  ActionResult out;
  out.outputs["cache-hit"] = found.hit() ? "true" : "false";
  out.outputs["cache-primary-key"] = key;
  out.outputs["cache-matched-key"] = found.entry ? found.entry->key : "";
  if (found.kind == cache::CacheLookup::Kind::kMiss) {
    if (fail_on_miss) return fail("cache miss for key '" + key + "' (fail-on-cache-miss is set)");
    env.note("cache miss for key '" + key + "'");
  } else if (lookup_only) {
    env.note("cache " + std::string(found.hit() ? "hit" : "restore-key match") + " for '" +
             found.entry->key + "' (lookup-only: not restored)");
  } else {
    LS_TRY(store->restore(*found.entry, hpaths, dirs));
    env.note("restored cache '" + found.entry->key + "' (" + std::to_string(found.entry->size) +
             " bytes)");
  }
  if (!found.hit() && !lookup_only && save_after) {
    auto note = env.note;
    out.post = [store, remote, key, hpaths, dirs, note,
                scope = scopes.save](bool job_succeeded) -> Status {
      if (!job_succeeded) {
        note("cache '" + key + "' not saved: the job did not succeed");
        return {};
      }
      return save_cache(remote, *store, key, hpaths, dirs, scope, note,
                        "was saved meanwhile by another job");
    };
  }
  return out;
}

// actions/cache/save: saves now, under `key`.
Result<ActionResult> cache_save_action(ActionEnv& env) {
  const std::string action = "actions/cache/save";
  LS_TRY(known_inputs(action, env, {"key", "path", "upload-chunk-size", "enableCrossOsArchive"}));
  std::string key = input(env, "key");
  if (key.empty()) return fail(action + ": input 'key' is required", ErrorKind::kWorkflow);
  std::vector<std::string> paths = lines_of(input(env, "path"));
  if (paths.empty()) return fail(action + ": input 'path' is required", ErrorKind::kWorkflow);
  cache::JobDirs dirs{env.workspace_host, env.home_host};
  cache::DepCache store(env.run->state_dir);
  LS_TRY(save_cache(env.run->remote_cache, store, key, host_paths(env, paths), dirs,
                    cache_scopes(*env.run).save, env.note, "exists already; not saved again"));
  return ActionResult{};
}

Result<ActionResult> upload_artifact(ActionEnv& env) {
  const std::string action = "actions/upload-artifact";
  LS_TRY(known_inputs(action, env,
                      {"name", "path", "if-no-files-found", "retention-days", "compression-level",
                       "overwrite", "include-hidden-files"}));
  cache::UploadRequest req;
  req.run_id = env.run->run_id;
  req.job = env.job_display;
  if (!input(env, "name").empty()) req.name = input(env, "name");
  req.paths = host_paths(env, lines_of(input(env, "path")));
  if (req.paths.empty()) return fail(action + ": input 'path' is required", ErrorKind::kWorkflow);
  req.dirs = {env.workspace_host, env.home_host};
  std::string nf = input(env, "if-no-files-found");
  if (nf.empty() || nf == "warn")
    req.if_no_files_found = cache::IfNoFilesFound::kWarn;
  else if (nf == "error")
    req.if_no_files_found = cache::IfNoFilesFound::kError;
  else if (nf == "ignore")
    req.if_no_files_found = cache::IfNoFilesFound::kIgnore;
  else
    return fail(action + ": if-no-files-found must be warn, error or ignore, got '" + nf + "'",
                ErrorKind::kWorkflow);
  if (std::string rd = input(env, "retention-days"); !rd.empty()) {
    char* end = nullptr;
    long d = std::strtol(rd.c_str(), &end, 10);
    if (*end || d < 0 || d > 3650)
      return fail(action + ": retention-days must be a number of days, got '" + rd + "'",
                  ErrorKind::kWorkflow);
    req.retention_days = static_cast<int>(d);
  }
  cache::ArtifactStore store(env.run->state_dir);
  LS_TRY_ASSIGN(cache::UploadResult r, store.upload(req));
  ActionResult out;
  if (!r.warning.empty()) env.note("warning: " + r.warning);
  if (r.artifact) {
    env.note("uploaded artifact '" + r.artifact->name + "': " +
             std::to_string(r.artifact->files.size()) + " files, " + r.artifact->digest.str());
    out.outputs["artifact-id"] = r.artifact->name;
    out.outputs["artifact-digest"] = r.artifact->digest.str();
  }
  return out;
}

Result<ActionResult> download_artifact(ActionEnv& env) {
  const std::string action = "actions/download-artifact";
  LS_TRY(known_inputs(
      action, env,
      {"name", "path", "pattern", "merge-multiple", "run-id", "github-token", "repository"}));
  cache::ArtifactStore store(env.run->state_dir);
  std::string name = input(env, "name");
  fs::path dest = env.workspace_host;
  if (std::string p = input(env, "path"); !p.empty()) {
    auto hp = host_paths(env, {p})[0];
    fs::path rel = fs::path(hp).lexically_normal();
    if (rel.is_absolute()) {
      auto ws = env.workspace_host.lexically_normal().string();
      if (rel.string().rfind(ws, 0) != 0)
        return fail(action + ": path '" + p + "' must be inside the workspace",
                    ErrorKind::kWorkflow);
      dest = rel;
    } else {
      if (!rel.empty() && *rel.begin() == "..")
        return fail(action + ": path '" + p + "' must be inside the workspace",
                    ErrorKind::kWorkflow);
      dest = env.workspace_host / rel;
    }
  }
  ActionResult out;
  if (name.empty()) {
    LS_TRY_ASSIGN(auto all, store.download_all(env.run->run_id, dest));
    env.note("downloaded " + std::to_string(all.size()) + " artifacts");
  } else {
    LS_TRY_ASSIGN(cache::ArtifactInfo a, store.download(env.run->run_id, name, dest));
    env.note("downloaded artifact '" + a.name + "' (" + a.digest.str() + ")");
  }
  out.outputs["download-path"] = dest.string();
  return out;
}

}  // namespace

Result<ActionResult> run_storage_action(const std::string& name, ActionEnv& env) {
  if (name == "actions/cache") return cache_action(env, true);
  if (name == "actions/cache/restore") return cache_action(env, false);
  if (name == "actions/cache/save") return cache_save_action(env);
  if (name == "actions/upload-artifact") return upload_artifact(env);
  if (name == "actions/download-artifact") return download_artifact(env);
  return fail("uses: " + name + " is not a built-in action", ErrorKind::kUnsupported);
}

}  // namespace lockstep::runner
