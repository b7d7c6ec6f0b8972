#include "cache/git_checkout.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <system_error>

#include "cache/git_tree_writer.hpp"
#include "cache/git_util.hpp"
#include "common/fs.hpp"
#include "common/lock_file.hpp"

namespace lockstep::cache {
namespace fs = std::filesystem;

namespace {

bool is_full_sha(const std::string& s) {
  return s.size() == GIT_OID_HEXSZ && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// Hard-links (or, across filesystems, copies) every file of `from` that
// `to` lacks. Object files are immutable once written, so sharing inodes
// with the mirror is safe: git only ever adds or unlinks them.
Status link_missing_files(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::create_directories(to, ec);
  if (ec) return fail(Error("create " + to.string() + ": " + ec.message(), ec.value()));
  for (const auto& e : fs::directory_iterator(from, ec)) {
    if (!e.is_regular_file(ec)) continue;
    // Only published objects: a fetch's temp files are never linked.
    const std::string n = e.path().filename().string();
    if (n.rfind("tmp", 0) == 0 || n.rfind("pack_git2", 0) == 0 || n[0] == '.') continue;
    fs::path dst = to / e.path().filename();
    if (::link(e.path().c_str(), dst.c_str()) == 0 || errno == EEXIST) continue;
    if (errno != EXDEV && errno != EPERM) return fail_errno("link " + e.path().string());
    fs::copy_file(e.path(), dst, fs::copy_options::skip_existing, ec);
    if (ec) return fail(Error("copy " + e.path().string() + ": " + ec.message(), ec.value()));
  }
  if (ec) return fail(Error("list " + from.string() + ": " + ec.message(), ec.value()));
  return {};
}

// The mirror's object store into the checkout's: packs, then any loose objects.
Status link_objects(const fs::path& mirror, const fs::path& git_dir) {
  const fs::path src = mirror / "objects", dst = git_dir / "objects";
  std::error_code ec;
  if (fs::exists(src / "pack", ec)) LS_TRY(link_missing_files(src / "pack", dst / "pack"));
  for (const auto& e : fs::directory_iterator(src, ec)) {
    const std::string n = e.path().filename().string();
    if (n.size() == 2 && e.is_directory(ec)) LS_TRY(link_missing_files(e.path(), dst / n));
  }
  return {};
}

// Removes everything inside `dir`, keeping `dir` itself (it may be a mount).
Status empty_dir(const fs::path& dir) {
  std::error_code ec;
  std::vector<fs::path> children;
  for (const auto& e : fs::directory_iterator(dir, ec)) children.push_back(e.path());
  if (ec) return fail(Error("list " + dir.string() + ": " + ec.message(), ec.value()));
  for (const auto& c : children) LS_TRY(remove_tree(c));
  return {};
}

// "../lib.git" against "https://host/org/app.git" -> "https://host/org/lib.git".
std::string resolve_submodule_url(const std::string& parent, const std::string& url) {
  if (url.rfind("./", 0) != 0 && url.rfind("../", 0) != 0) return url;
  std::string base = parent;
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  std::string rest = url;
  for (;;) {
    if (rest.rfind("./", 0) == 0) {
      rest = rest.substr(2);
    } else if (rest.rfind("../", 0) == 0) {
      rest = rest.substr(3);
      auto cut = base.find_last_of("/:");
      if (cut != std::string::npos) base.resize(cut);
    } else {
      break;
    }
  }
  return base + "/" + rest;
}

struct SubInfo {
  std::string name, path, url, commit;
};

int collect_submodule(git_submodule* sm, const char* name, void* payload) {
  auto* out = static_cast<std::vector<SubInfo>*>(payload);
  SubInfo s;
  s.name = name;
  s.path = git_submodule_path(sm);
  s.url = git_submodule_url(sm) ? git_submodule_url(sm) : "";
  if (const git_oid* id = git_submodule_head_id(sm)) s.commit = git::oid_hex(*id);
  out->push_back(std::move(s));
  return 0;
}

// Opens `dest` when it is a checkout of `url`; null otherwise.
git::Repo open_existing(const fs::path& dest, const std::string& url) {
  std::error_code ec;
  if (!fs::exists(dest / ".git", ec)) return nullptr;
  auto repo = git::open_repo(dest.string());
  if (!repo) return nullptr;
  git_remote* r = nullptr;
  if (git_remote_lookup(&r, repo->get(), "origin") != 0) {
    git_error_clear();
    return nullptr;
  }
  git::Remote remote(r);
  if (url != (git_remote_url(r) ? git_remote_url(r) : "")) return nullptr;
  return std::move(*repo);
}

Status set_ref(git_repository* repo, const std::string& name, const git_oid& oid) {
  git_reference* ref = nullptr;
  int rc = git_reference_create(&ref, repo, name.c_str(), &oid, /*force=*/1, "lockstep checkout");
  if (rc != 0) return git::fail_git("create " + name, rc);
  git_reference_free(ref);
  return {};
}

// fetch-depth 0: every branch of the mirror as refs/remotes/origin/* and
// every tag, written as one packed-refs file (thousands of tags cost one
// write, not thousands of files).
Status write_all_refs(const fs::path& git_dir, const MirrorInfo& mirror) {
  LS_TRY_ASSIGN(git::Repo m, git::open_repo(mirror.path.string()));
  std::vector<std::pair<std::string, std::string>> refs;  // name, oid
  git_reference_iterator* it = nullptr;
  int rc = git_reference_iterator_new(&it, m.get());
  if (rc != 0) return git::fail_git("list refs of " + mirror.url, rc);
  git::RefIter iter(it);
  git_reference* ref = nullptr;
  while (git_reference_next(&ref, it) == 0) {
    git::Reference owned(ref);
    const git_oid* id = git_reference_target(ref);
    if (!id) continue;
    const std::string name = git_reference_name(ref);
    if (name.rfind("refs/heads/", 0) == 0)
      refs.emplace_back("refs/remotes/origin/" + name.substr(11), git::oid_hex(*id));
    else if (name.rfind("refs/tags/", 0) == 0)
      refs.emplace_back(name, git::oid_hex(*id));
  }
  std::sort(refs.begin(), refs.end());
  std::string text = "# pack-refs with: sorted \n";
  for (const auto& [name, oid] : refs) text += oid + " " + name + "\n";
  return write_file_atomic(git_dir / "packed-refs", text);
}

// Writes the refs a checkout of `rr` has (see the header), HEAD last.
Status write_refs(git_repository* repo, const MirrorInfo& mirror, const ResolvedRef& rr) {
  git_oid commit;
  git_oid_fromstr(&commit, rr.commit.c_str());
  using K = ResolvedRef::Kind;
  if (rr.kind == K::kBranch || rr.kind == K::kHead) {
    LS_TRY(set_ref(repo, "refs/heads/" + rr.name, commit));
    LS_TRY(set_ref(repo, "refs/remotes/origin/" + rr.name, commit));
    int rc = git_repository_set_head(repo, ("refs/heads/" + rr.name).c_str());
    if (rc != 0) return git::fail_git("set HEAD", rc);
    return {};
  }
  if (rr.kind == K::kTag) {
    // The tag ref keeps the mirror's target (an annotated tag object stays one).
    LS_TRY_ASSIGN(git::Repo m, git::open_repo(mirror.path.string()));
    git_oid tag;
    const std::string name = "refs/tags/" + rr.name;
    if (git_reference_name_to_id(&tag, m.get(), name.c_str()) == 0)
      LS_TRY(set_ref(repo, name, tag));
    else
      git_error_clear();
  }
  int rc = git_repository_set_head_detached(repo, &commit);
  if (rc != 0) return git::fail_git("detach HEAD at " + rr.commit, rc);
  return {};
}

}  // namespace

Result<CheckoutResult> checkout(const GitMirrors& mirrors, const CheckoutRequest& req) {
  git::ensure_init();
  CheckoutResult res;
  const std::string url = GitMirrors::normalize_url(req.url);
  if (!req.commit.empty() && mirrors.has_commit(url, req.commit)) {
    LS_TRY_ASSIGN(res.mirror, mirrors.open(url));
    auto named = mirrors.resolve_ref(res.mirror, req.ref);
    if (named && named->commit == req.commit)
      res.ref = *named;
    else
      res.ref = ResolvedRef{ResolvedRef::Kind::kCommit, req.commit, req.commit};
  } else {
    if (is_full_sha(req.ref) && mirrors.has_commit(url, req.ref)) {
      LS_TRY_ASSIGN(res.mirror, mirrors.open(url));
    } else {
      std::vector<std::string> extra;
      if (req.ref.rfind("refs/", 0) == 0) extra.push_back(req.ref);
      LS_TRY_ASSIGN(res.mirror, mirrors.update(url, extra));
    }
    LS_TRY_ASSIGN(res.ref, mirrors.resolve_ref(res.mirror, req.ref));
  }
  res.commit = res.ref.commit;

  const fs::path dest = fs::absolute(req.path).lexically_normal();
  const std::string where = "checkout of " + url + " into " + dest.string();
  std::error_code ec;
  fs::create_directories(dest, ec);
  if (ec) return fail(Error("create " + dest.string() + ": " + ec.message(), ec.value()));

  git::Repo repo = open_existing(dest, url);
  const bool reused = static_cast<bool>(repo);
  if (!reused) {
    LS_TRY(empty_dir(dest));
    git_repository* r = nullptr;
    int rc = git_repository_init(&r, dest.c_str(), /*is_bare=*/0);
    if (rc != 0) return git::fail_git(where, rc);
    repo.reset(r);
    // origin written to the config directly: the same keys git_remote_create
    // writes, without its (in libgit2 1.5, leaking) remote-name validation.
    git_config* cfg = nullptr;
    rc = git_repository_config(&cfg, r);
    if (rc != 0) return git::fail_git(where + ": open config", rc);
    git::Config config(cfg);
    rc = git_config_set_string(cfg, "remote.origin.url", url.c_str());
    if (rc == 0)
      rc = git_config_set_string(cfg, "remote.origin.fetch", "+refs/heads/*:refs/remotes/origin/*");
    if (rc != 0) return git::fail_git(where + ": add origin", rc);
  }
  {
    // Shared lock: no update of the mirror runs while its objects are linked.
    LS_TRY_ASSIGN(LockFile lock,
                  LockFile::acquire(fs::path(res.mirror.path.string() + ".lock"), /*shared=*/true));
    LS_TRY(link_objects(res.mirror.path, dest / ".git"));
  }
  git_odb* odb = nullptr;
  if (git_repository_odb(&odb, repo.get()) == 0) {
    git_odb_refresh(odb);  // see the packs linked in after the repository was opened
    git_odb_free(odb);
  }

  git_oid oid;
  git_oid_fromstr(&oid, res.commit.c_str());
  git_commit* c = nullptr;
  int rc = git_commit_lookup(&c, repo.get(), &oid);
  if (rc != 0) return git::fail_git(where + ": look up commit " + res.commit, rc);
  git::Commit commit(c);
  res.tree = git::oid_hex(*git_commit_tree_id(c));
  git_tree* t = nullptr;
  rc = git_commit_tree(&t, c);
  if (rc != 0) return git::fail_git(where + ": read tree", rc);
  git::Tree tree(t);

  // A fresh destination without content filters takes the fast path (see
  // git_tree_writer.hpp); everything else goes through libgit2's checkout.
  bool fast = !reused;
  if (fast) {
    LS_TRY_ASSIGN(const bool filters, git::tree_needs_filters(repo.get(), t));
    fast = !filters;
  }
  if (fast) {
    LS_TRY(git::write_tree_fresh(repo.get(), t, dest));
  } else {
    git_checkout_options opts = GIT_CHECKOUT_OPTIONS_INIT;
    opts.checkout_strategy = GIT_CHECKOUT_FORCE;
    if (req.clean)
      opts.checkout_strategy |= GIT_CHECKOUT_REMOVE_UNTRACKED | GIT_CHECKOUT_REMOVE_IGNORED;
    rc = git_checkout_tree(repo.get(), reinterpret_cast<git_object*>(t), &opts);
    if (rc != 0) return git::fail_git(where, rc);
  }
  if (req.fetch_depth == 0) {
    LS_TRY(write_all_refs(dest / ".git", res.mirror).map_error([&](Error e) {
      return std::move(e).context(where);
    }));
  }
  LS_TRY(write_refs(repo.get(), res.mirror, res.ref).map_error([&](Error e) {
    return std::move(e).context(where);
  }));

  if (req.submodules == SubmoduleMode::kNone) return res;
  std::vector<SubInfo> subs;
  rc = git_submodule_foreach(repo.get(), collect_submodule, &subs);
  if (rc != 0) return git::fail_git(where + ": read .gitmodules", rc);
  std::sort(subs.begin(), subs.end(),
            [](const SubInfo& a, const SubInfo& b) { return a.path < b.path; });
  for (const auto& s : subs) {
    if (s.commit.empty()) continue;  // declared in .gitmodules but not in the tree
    git_submodule* sm = nullptr;
    if (git_submodule_lookup(&sm, repo.get(), s.name.c_str()) == 0) {
      git::Submodule owned(sm);
      if (git_submodule_init(sm, /*overwrite=*/1) != 0) git_error_clear();
    } else {
      git_error_clear();
    }
    CheckoutRequest sub;
    sub.url = resolve_submodule_url(url, s.url);
    sub.ref = s.commit;
    sub.path = dest / s.path;
    sub.fetch_depth = req.fetch_depth;
    sub.submodules = req.submodules == SubmoduleMode::kRecursive ? SubmoduleMode::kRecursive
                                                                 : SubmoduleMode::kNone;
    sub.clean = req.clean;
    auto r = checkout(mirrors, sub);
    if (!r) return fail(std::move(r.error()).context("submodule '" + s.path + "' of " + url));
    res.submodules.push_back({s.path, sub.url, r->commit});
    for (const auto& nested : r->submodules)
      res.submodules.push_back({s.path + "/" + nested.path, nested.url, nested.commit});
  }
  return res;
}

}  // namespace lockstep::cache
