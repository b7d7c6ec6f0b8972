#include "runner/engine/action_source.hpp"

#include <cstdio>

#include "cache/git_mirror.hpp"
#include "cache/git_trees.hpp"
#include "common/digest.hpp"
#include "common/fs.hpp"

namespace lockstep::runner {
namespace fs = std::filesystem;

namespace {

bool is_full_commit(const std::string& s) {
  return s.size() == 40 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

}  // namespace

std::string ActionsConfig::url_for(const std::string& owner, const std::string& repo) const {
  auto it = owners.find(owner);
  std::string base = it != owners.end() ? it->second : base_url;
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  std::string url = base + "/" + owner + "/" + repo;
  if (base.find("://") == std::string::npos) {
    std::error_code ec;
    if (!fs::exists(url, ec) && fs::exists(url + ".git", ec)) url += ".git";
  }
  return url;
}

Result<std::shared_ptr<const pipeline::ActionManifest>> load_action_manifest(
    const fs::path& dir, const std::string& display, std::string* digest) {
  for (const char* name : {"action.yml", "action.yaml"}) {
    fs::path file = dir / name;
    std::error_code ec;
    if (!fs::is_regular_file(file, ec)) continue;
    LS_TRY_ASSIGN(std::string text, read_file(file));
    LS_TRY_ASSIGN(pipeline::ActionManifest m, pipeline::parse_action(text, display + "/" + name));
    if (digest) *digest = sha256_of(text).str();
    return std::make_shared<const pipeline::ActionManifest>(std::move(m));
  }
  std::error_code ec;
  if (fs::is_regular_file(dir / "Dockerfile", ec))
    return fail("action '" + display + "' has a Dockerfile but no action.yml or action.yaml",
                ErrorKind::kWorkflow);
  return fail("action '" + display + "' has no action.yml or action.yaml", ErrorKind::kWorkflow);
}

ActionSources::ActionSources(fs::path state_dir, ActionsConfig config,
                             const pipeline::Lockfile* lock,
                             std::map<std::string, std::string> replay_pins, bool frozen)
    : state_dir_(std::move(state_dir)),
      config_(std::move(config)),
      lock_(lock),
      replay_pins_(std::move(replay_pins)),
      frozen_(frozen) {}

Result<ResolvedRepository> ActionSources::resolve(const pipeline::ActionRef& ref,
                                                  const std::string& what) {
  std::lock_guard lk(mu_);
  return resolve_locked(ref, what);
}

Result<ResolvedRepository> ActionSources::resolve_locked(const pipeline::ActionRef& ref,
                                                         const std::string& what) {
  std::string key = ref.repository() + "@" + ref.ref;
  if (auto it = by_key_.find(key); it != by_key_.end()) return it->second;

  ResolvedRepository out;
  out.key = key;
  out.url = config_.url_for(ref.owner, ref.repo);
  std::string pinned;
  if (auto it = replay_pins_.find(key); it != replay_pins_.end()) {
    pinned = it->second;
  } else if (const pipeline::LockedAction* a =
                 lock_ ? lock_->find_action(ref.repository(), ref.ref) : nullptr) {
    pinned = a->commit;
  } else if (frozen_) {
    return fail(
        "--frozen: action '" + key + "' is not pinned by lockstep.lock (run 'lockstep lock')",
        ErrorKind::kUsage);
  }
  cache::GitTrees trees(state_dir_);
  cache::GitMirrors mirrors(state_dir_);
  // A commit already at hand needs no repository at all: a replay on a host
  // that received the trees with an export runs without the network.
  std::string wanted = !pinned.empty() ? pinned : is_full_commit(ref.ref) ? ref.ref : "";
  if (!wanted.empty() && trees.has(wanted)) {
    out.commit = wanted;
    out.pinned = !pinned.empty();
    out.tree = trees.path(wanted);
    by_key_[key] = out;
    return out;
  }
  cache::MirrorInfo mirror;
  bool have_commit = !wanted.empty() && mirrors.has_commit(out.url, wanted);
  if (have_commit || fetched_.count(out.url)) {
    LS_TRY_ASSIGN(mirror, mirrors.open(out.url));
  } else {
    auto updated = mirrors.update(out.url);
    if (!updated) {
      // Offline with a mirror from an earlier run: use it, and say so.
      auto existing = mirrors.open(out.url);
      if (!existing) return fail(std::move(updated.error()).context(what + " '" + key + "'"));
      std::fprintf(stderr, "lockstep: warning: %s '%s': %s; using the mirror as it is\n",
                   what.c_str(), key.c_str(), std::string(updated.error().message()).c_str());
      mirror = std::move(*existing);
    } else {
      mirror = std::move(*updated);
    }
    fetched_.insert(out.url);
  }
  if (!wanted.empty()) {
    if (!mirrors.has_commit(out.url, wanted))
      return fail(what + " '" + key + "': " + out.url + " has no commit " + wanted +
                      (pinned.empty() ? ""
                                      : " (pinned by " +
                                            std::string(replay_pins_.count(key) ? "the recorded run"
                                                                                : "lockstep.lock") +
                                            ")"),
                  ErrorKind::kNotFound);
    out.commit = wanted;
  } else {
    auto r = mirrors.resolve(mirror, ref.ref);
    if (!r) return fail(std::move(r.error()).context(what + " '" + key + "'"));
    out.commit = *r;
  }
  out.pinned = !pinned.empty();
  LS_TRY_ASSIGN(out.tree, trees.materialize(mirror.path, out.commit));
  by_key_[key] = out;
  return out;
}

Result<ResolvedAction> ActionSources::resolve_action(const pipeline::ActionRef& ref) {
  std::lock_guard lk(mu_);
  LS_TRY_ASSIGN(ResolvedRepository repo, resolve_locked(ref));
  ResolvedAction a;
  a.repo = repo;
  a.subpath = ref.path;
  a.dir = ref.path.empty() ? repo.tree : repo.tree / ref.path;
  std::string display = ref.name() + "@" + ref.ref;
  auto it = manifests_.find(a.dir.string());
  if (it == manifests_.end()) {
    std::error_code ec;
    if (!ref.path.empty() && !fs::is_directory(a.dir, ec))
      return fail("action '" + display + "': no directory '" + ref.path + "' in " +
                      ref.repository() + " at " + repo.commit.substr(0, 12),
                  ErrorKind::kWorkflow);
    std::string digest;
    auto m = load_action_manifest(a.dir, display, &digest);
    if (!m) return fail(std::move(m.error()));
    it = manifests_.emplace(a.dir.string(), std::make_pair(*m, digest)).first;
  }
  a.manifest = it->second.first;
  a.manifest_digest = it->second.second;
  return a;
}

Result<std::string> ActionSources::resolve_checkout(const std::string& url_in,
                                                    const std::string& ref) {
  std::lock_guard lk(mu_);
  std::string url = cache::GitMirrors::normalize_url(url_in);
  std::string key = url + "@" + (ref.empty() ? "HEAD" : ref);
  if (auto it = checkouts_.find(key); it != checkouts_.end()) return it->second;
  cache::GitMirrors mirrors(state_dir_);
  if (is_full_commit(ref) && mirrors.has_commit(url, ref)) return checkouts_[key] = ref;
  cache::MirrorInfo mirror;
  if (fetched_.count(url)) {
    LS_TRY_ASSIGN(mirror, mirrors.open(url));
  } else {
    LS_TRY_ASSIGN(mirror, mirrors.update(url));
    fetched_.insert(url);
  }
  LS_TRY_ASSIGN(std::string commit, mirrors.resolve(mirror, ref.empty() ? "HEAD" : ref));
  return checkouts_[key] = commit;
}

bool ActionSources::pinned(const pipeline::ActionRef& ref) const {
  return replay_pins_.count(ref.repository() + "@" + ref.ref) ||
         (lock_ && lock_->find_action(ref.repository(), ref.ref));
}

std::vector<ResolvedRepository> ActionSources::resolved() const {
  std::lock_guard lk(mu_);
  std::vector<ResolvedRepository> out;
  for (const auto& [k, v] : by_key_) out.push_back(v);
  return out;
}

}  // namespace lockstep::runner
