#pragma once
// Where actions and reusable workflows come from, and what their references
// resolve to in one run.
//
// `owner/repo@ref` is fetched with libgit2 into the same bare mirrors as
// checkouts ($LOCKSTEP_HOME/git/), at most once per run per repository (a
// commit the mirror already holds - a pinned or full-commit reference - is
// not fetched at all), resolved to a commit, and its files are written once
// per commit to $LOCKSTEP_HOME/trees/<commit>/ (cache/git_trees.hpp).
//
// The repository URL is <base>/<owner>/<repo>: <base> is the per-owner
// override (`actions: {OWNER: URL}` in .lockstep.yml), else `actions-url`
// (--actions-url, .lockstep.yml), else https://github.com. A base that is a
// local directory (an air-gapped forge's export, a test's repositories) is
// tried as <dir>/<owner>/<repo> and then <dir>/<owner>/<repo>.git.
//
// Pins: a replay pins every reference to the commit it recorded;
// lockstep.lock pins what `lockstep lock` resolved; `--frozen` refuses a
// reference neither pins. See docs/actions.md.
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "pipeline/action.hpp"
#include "pipeline/lockfile.hpp"

namespace lockstep::runner {

struct ActionsConfig {
  std::string base_url = "https://github.com";
  std::map<std::string, std::string> owners;  // owner -> base URL or directory

  // The repository's URL (or local path) for owner/repo.
  std::string url_for(const std::string& owner, const std::string& repo) const;
};

// One `owner/repo@ref` as it resolved.
struct ResolvedRepository {
  std::string key;             // "owner/repo@ref"
  std::string url;             // what was fetched
  std::string commit;          // 40 hex
  bool pinned = false;         // by the lock or a replay
  std::filesystem::path tree;  // host: the commit's files
};

// An action ready to run: its directory and metadata.
struct ResolvedAction {
  ResolvedRepository repo;    // empty for local actions
  std::filesystem::path dir;  // host directory holding action.yml
  std::string subpath;        // the path inside the repository ("" = root)
  std::shared_ptr<const pipeline::ActionManifest> manifest;
  std::string manifest_digest;  // sha256 of the metadata file's bytes
};

// Reads action.yml (else action.yaml) in `dir`; `display` names it in
// messages ("actions/setup-node@v4"). No metadata file: one line naming the
// action and where it looked.
Result<std::shared_ptr<const pipeline::ActionManifest>> load_action_manifest(
    const std::filesystem::path& dir, const std::string& display, std::string* digest = nullptr);

class ActionSources {
 public:
  ActionSources(std::filesystem::path state_dir, ActionsConfig config,
                const pipeline::Lockfile* lock, std::map<std::string, std::string> replay_pins,
                bool frozen);

  // A repository reference (kind kRepository) to its commit and files.
  // Thread-safe; each repository is fetched at most once per run. `what`
  // names the reference in messages ("action 'owner/repo@v1': ...").
  Result<ResolvedRepository> resolve(const pipeline::ActionRef& ref,
                                     const std::string& what = "action");

  // resolve() plus the action's metadata (at ref.path), cached per run.
  Result<ResolvedAction> resolve_action(const pipeline::ActionRef& ref);

  // A checkout's repository (URL or path) at `ref` ("" = its default branch)
  // to a commit, fetching the repository at most once per run (shared with
  // actions from the same repository).
  Result<std::string> resolve_checkout(const std::string& url, const std::string& ref);

  // Whether a replay or lockstep.lock pins `ref` (a repository reference).
  bool pinned(const pipeline::ActionRef& ref) const;

  // Every reference resolved so far, by key, for the record and the lock.
  std::vector<ResolvedRepository> resolved() const;

  const ActionsConfig& config() const { return config_; }

 private:
  Result<ResolvedRepository> resolve_locked(const pipeline::ActionRef& ref,
                                            const std::string& what = "action");

  std::filesystem::path state_dir_;
  ActionsConfig config_;
  const pipeline::Lockfile* lock_;
  std::map<std::string, std::string> replay_pins_;  // "owner/repo@ref" -> commit
  bool frozen_;
  mutable std::mutex mu_;
  std::map<std::string, ResolvedRepository> by_key_;
  std::map<std::string, std::string> checkouts_;  // "url@ref" -> commit
  std::set<std::string> fetched_;                 // URLs fetched in this run
  std::map<std::string, std::pair<std::shared_ptr<const pipeline::ActionManifest>, std::string>>
      manifests_;  // dir -> manifest, digest
};

}  // namespace lockstep::runner
