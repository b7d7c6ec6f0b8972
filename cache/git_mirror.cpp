#include "cache/git_mirror.hpp"

#include <algorithm>
#include <system_error>

#include "cache/git_util.hpp"
#include "common/digest.hpp"
#include "common/fs.hpp"
#include "common/lock_file.hpp"

namespace lockstep::cache {
namespace fs = std::filesystem;

namespace {

bool is_hex(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

bool looks_like_url(const std::string& s) {
  if (s.find("://") != std::string::npos) return true;
  // scp-like ssh: "user@host:path" or "host:path" (a ':' before any '/').
  auto colon = s.find(':');
  auto slash = s.find('/');
  return colon != std::string::npos && (slash == std::string::npos || colon < slash);
}

// Credentials: ssh keys from the agent; nothing else is attempted, and each
// kind is tried once so that a refused key ends the fetch instead of looping.
struct CredState {
  int attempts = 0;
};

int credentials_cb(git_credential** out, const char* /*url*/, const char* username,
                   unsigned int allowed, void* payload) {
  auto* st = static_cast<CredState*>(payload);
  if (++st->attempts > 1) return GIT_PASSTHROUGH;
  if (allowed & GIT_CREDENTIAL_SSH_KEY)
    return git_credential_ssh_key_from_agent(out, username ? username : "git");
  if (allowed & GIT_CREDENTIAL_USERNAME) return git_credential_username_new(out, "git");
  return GIT_PASSTHROUGH;
}

std::vector<std::string> list_refs(git_repository* repo, const char* glob, size_t strip) {
  std::vector<std::string> names;
  git_reference_iterator* it = nullptr;
  if (git_reference_iterator_glob_new(&it, repo, glob) != 0) return names;
  git::RefIter owned(it);
  const char* name = nullptr;
  while (git_reference_next_name(&name, it) == 0) names.emplace_back(name + strip);
  std::sort(names.begin(), names.end());
  return names;
}

std::string join_limited(const std::vector<std::string>& v, size_t limit) {
  std::string out;
  for (size_t i = 0; i < v.size() && i < limit; ++i) {
    if (i) out += ", ";
    out += v[i];
  }
  if (v.size() > limit) out += ", ... (" + std::to_string(v.size() - limit) + " more)";
  if (v.empty()) out = "none";
  return out;
}

// Peels a reference to the commit it names.
Result<std::string> peel_commit(git_reference* ref, const std::string& what) {
  git_object* obj = nullptr;
  int rc = git_reference_peel(&obj, ref, GIT_OBJECT_COMMIT);
  if (rc != 0) return git::fail_git("peel " + what + " to a commit", rc);
  git::Object owned(obj);
  return git::oid_hex(*git_object_id(obj));
}

Result<std::string> lookup_ref_commit(git_repository* repo, const std::string& full, bool* found) {
  git_reference* ref = nullptr;
  int rc = git_reference_lookup(&ref, repo, full.c_str());
  if (rc == GIT_ENOTFOUND || rc == GIT_EINVALIDSPEC) {
    *found = false;
    return std::string();
  }
  if (rc != 0) return git::fail_git("look up " + full, rc);
  git::Reference owned(ref);
  *found = true;
  return peel_commit(ref, full);
}

}  // namespace

GitMirrors::GitMirrors(fs::path state_dir) : root_(std::move(state_dir) / "git") {}

std::string GitMirrors::normalize_url(const std::string& url) {
  if (looks_like_url(url)) return url;
  std::error_code ec;
  fs::path abs = fs::absolute(url, ec);
  if (ec) return url;
  std::string s = abs.lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

fs::path GitMirrors::mirror_path(const std::string& url) const {
  return root_ / (sha256_of(normalize_url(url)).hex().substr(0, 24) + ".git");
}

Result<MirrorInfo> GitMirrors::open(const std::string& url) const {
  MirrorInfo info;
  info.url = normalize_url(url);
  info.path = mirror_path(url);
  std::error_code ec;
  if (!fs::exists(info.path / "HEAD", ec))
    return fail("no mirror of '" + info.url + "' in " + root_.string(), ErrorKind::kNotFound);
  LS_TRY_ASSIGN(git::Repo repo, git::open_repo(info.path.string()));
  git_reference* head = nullptr;
  if (git_reference_lookup(&head, repo.get(), "HEAD") == 0) {
    git::Reference owned(head);
    if (git_reference_type(head) == GIT_REFERENCE_SYMBOLIC)
      info.head_ref = git_reference_symbolic_target(head);
  }
  return info;
}

Result<MirrorInfo> GitMirrors::update(const std::string& url,
                                      const std::vector<std::string>& extra) const {
  git::ensure_init();
  MirrorInfo info;
  info.url = normalize_url(url);
  info.path = mirror_path(url);
  const std::string where = "cannot fetch repository '" + info.url + "'";

  // libgit2 says "unsupported URL protocol" for a local path that does not
  // exist; say what is wrong instead.
  if (!looks_like_url(info.url) || info.url.rfind("file://", 0) == 0) {
    const std::string local = looks_like_url(info.url) ? info.url.substr(7) : info.url;
    std::error_code ec;
    if (!fs::is_directory(local, ec))
      return fail(where + ": no such directory", ErrorKind::kUnavailable);
  }

  LS_TRY_ASSIGN(LockFile lock, LockFile::acquire(fs::path(info.path.string() + ".lock")));
  (void)lock;

  std::error_code ec;
  TempDir fresh;
  fs::path repo_dir = info.path;
  if (!fs::exists(info.path / "HEAD", ec)) {
    LS_TRY_ASSIGN(fresh, TempDir::create(root_, "." + info.path.stem().string() + ".new-"));
    repo_dir = fresh.path();
    git_repository* r = nullptr;
    int rc = git_repository_init(&r, repo_dir.c_str(), /*is_bare=*/1);
    if (rc != 0) return git::fail_git("init mirror " + repo_dir.string(), rc);
    git_repository_free(r);
    info.created = true;
  }
  LS_TRY_ASSIGN(git::Repo repo, git::open_repo(repo_dir.string()));

  git_remote* rem = nullptr;
  int rc = git_remote_create_anonymous(&rem, repo.get(), info.url.c_str());
  if (rc != 0) return git::fail_git(where, rc);
  git::Remote remote(rem);

  std::vector<std::string> specs = {"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"};
  for (const auto& e : extra) {
    if (e.find(':') != std::string::npos)
      specs.push_back(e);
    else if (e.rfind("refs/", 0) == 0 && e.rfind("refs/heads/", 0) != 0 &&
             e.rfind("refs/tags/", 0) != 0)
      specs.push_back("+" + e + ":" + e);
    // Branch and tag names and commit ids are covered by the default refspecs.
  }
  std::vector<char*> spec_ptrs;
  for (auto& s : specs) spec_ptrs.push_back(s.data());
  git_strarray refspecs{spec_ptrs.data(), spec_ptrs.size()};

  CredState cred;
  git_fetch_options opts = GIT_FETCH_OPTIONS_INIT;
  opts.prune = GIT_FETCH_PRUNE;
  opts.update_fetchhead = 0;
  opts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
  opts.callbacks.credentials = credentials_cb;
  opts.callbacks.payload = &cred;
  rc = git_remote_fetch(remote.get(), &refspecs, &opts, nullptr);
  if (rc != 0) return fail(git::error(where, rc).set_kind(ErrorKind::kUnavailable));

  const git_indexer_progress* st = git_remote_stats(remote.get());
  info.stats.received_objects = st->received_objects;
  info.stats.received_bytes = st->received_bytes;
  info.stats.indexed_objects = st->indexed_objects;
  info.stats.total_objects = st->total_objects;
  info.fetched = true;

  // Point the mirror's HEAD at the source's default branch so "HEAD" resolves
  // like it would in a clone.
  git::Buf def;
  if (git_remote_default_branch(&def.b, remote.get()) == 0) {
    info.head_ref = def.str();
    rc = git_repository_set_head(repo.get(), info.head_ref.c_str());
    if (rc != 0) return git::fail_git("set HEAD of mirror " + repo_dir.string(), rc);
  } else {
    git_error_clear();
  }
  remote.reset();
  repo.reset();

  if (info.created) {
    if (::rename(repo_dir.c_str(), info.path.c_str()) != 0)
      return fail_errno("rename mirror into " + info.path.string());
    fresh.release();
  } else if (info.stats.received_objects > 0) {
    LS_TRY(compact_locked(info.path, kMaxPacks));
  }
  return info;
}

bool GitMirrors::has_commit(const std::string& url, const std::string& commit) const {
  if (commit.size() != GIT_OID_HEXSZ || !is_hex(commit)) return false;
  fs::path p = mirror_path(url);
  std::error_code ec;
  if (!fs::exists(p / "HEAD", ec)) return false;
  auto repo = git::open_repo(p.string());
  if (!repo) return false;
  git_oid oid;
  if (git_oid_fromstr(&oid, commit.c_str()) != 0) return false;
  git_commit* c = nullptr;
  if (git_commit_lookup(&c, repo->get(), &oid) != 0) {
    git_error_clear();
    return false;
  }
  git_commit_free(c);
  return true;
}

Result<ResolvedRef> GitMirrors::resolve_ref(const MirrorInfo& mirror,
                                            const std::string& ref_in) const {
  LS_TRY_ASSIGN(git::Repo repo, git::open_repo(mirror.path.string()));
  git_repository* r = repo.get();
  ResolvedRef out;
  const std::string ref = ref_in.empty() ? "HEAD" : ref_in;
  out.name = ref;
  bool found = false;

  if (ref == "HEAD") {
    git_reference* head = nullptr;
    int rc = git_repository_head(&head, r);
    if (rc != 0)
      return fail("repository '" + mirror.url + "' has no default branch (HEAD is unborn)",
                  ErrorKind::kNotFound);
    git::Reference owned(head);
    out.kind = ResolvedRef::Kind::kHead;
    out.name = git_reference_shorthand(head);
    LS_TRY_ASSIGN(out.commit, peel_commit(head, "HEAD"));
    return out;
  }
  if (ref.rfind("refs/", 0) == 0) {
    LS_TRY_ASSIGN(out.commit, lookup_ref_commit(r, ref, &found));
    if (found) {
      out.kind =
          ref.rfind("refs/tags/", 0) == 0 ? ResolvedRef::Kind::kTag : ResolvedRef::Kind::kBranch;
      out.name = ref.rfind("refs/heads/", 0) == 0  ? ref.substr(11)
                 : ref.rfind("refs/tags/", 0) == 0 ? ref.substr(10)
                                                   : ref;
      return out;
    }
  } else {
    LS_TRY_ASSIGN(out.commit, lookup_ref_commit(r, "refs/heads/" + ref, &found));
    if (found) {
      out.kind = ResolvedRef::Kind::kBranch;
      return out;
    }
    LS_TRY_ASSIGN(out.commit, lookup_ref_commit(r, "refs/tags/" + ref, &found));
    if (found) {
      out.kind = ResolvedRef::Kind::kTag;
      return out;
    }
  }
  if (ref.size() >= 4 && ref.size() <= GIT_OID_HEXSZ && is_hex(ref)) {
    git_oid oid;
    git_object* obj = nullptr;
    int rc = git_oid_fromstrn(&oid, ref.c_str(), ref.size());
    if (rc == 0) rc = git_object_lookup_prefix(&obj, r, &oid, ref.size(), GIT_OBJECT_ANY);
    if (rc == GIT_EAMBIGUOUS)
      return fail("ambiguous commit '" + ref + "' in " + mirror.url, ErrorKind::kUsage);
    if (rc == 0) {
      git::Object owned(obj);
      git_object* peeled = nullptr;
      if (git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT) != 0)
        return fail("'" + ref + "' in " + mirror.url + " is not a commit", ErrorKind::kUsage);
      git::Object owned_peeled(peeled);
      out.kind = ResolvedRef::Kind::kCommit;
      out.commit = git::oid_hex(*git_object_id(peeled));
      return out;
    }
    git_error_clear();
    if (ref.size() == GIT_OID_HEXSZ)
      return fail("commit '" + ref + "' not found in " + mirror.url +
                      " (not reachable from any branch or tag)",
                  ErrorKind::kNotFound);
  }

  auto branches = list_refs(r, "refs/heads/*", 11);
  const std::string def =
      mirror.head_ref.rfind("refs/heads/", 0) == 0 ? mirror.head_ref.substr(11) : std::string();
  if (auto it = std::find(branches.begin(), branches.end(), def); it != branches.end())
    std::rotate(branches.begin(), it, it + 1);
  auto tags = list_refs(r, "refs/tags/*", 10);
  return fail("unknown ref '" + ref + "' in " + mirror.url + " (branches: " +
                  join_limited(branches, 20) + "; tags: " + join_limited(tags, 20) + ")",
              ErrorKind::kNotFound);
}

}  // namespace lockstep::cache
