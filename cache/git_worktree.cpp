#include "cache/git_worktree.hpp"

#include <algorithm>
#include <vector>

#include "cache/git_util.hpp"

namespace lockstep::cache {
namespace fs = std::filesystem;

namespace {

Result<git::Repo> discover(const fs::path& path) {
  git::ensure_init();
  git_repository* r = nullptr;
  int rc = git_repository_open_ext(&r, path.c_str(), 0, nullptr);
  if (rc == GIT_ENOTFOUND)
    return fail("'" + path.string() + "' is not inside a git working tree", ErrorKind::kNotFound);
  if (rc != 0) return git::fail_git("open repository at " + path.string(), rc);
  git::Repo repo(r);
  if (git_repository_is_bare(r))
    return fail("'" + path.string() + "' is a bare repository, not a working tree",
                ErrorKind::kUsage);
  return repo;
}

// HEAD's tree, or null when HEAD is unborn.
Result<git::Tree> head_tree(git_repository* repo) {
  git_object* obj = nullptr;
  int rc = git_revparse_single(&obj, repo, "HEAD^{tree}");
  if (rc == GIT_ENOTFOUND || rc == GIT_EUNBORNBRANCH) {
    git_error_clear();
    return git::Tree(nullptr);
  }
  if (rc != 0) return git::fail_git("read HEAD", rc);
  return git::Tree(reinterpret_cast<git_tree*>(obj));
}

}  // namespace

Result<CommitFacts> commit_facts(const fs::path& path, const std::string& commit) {
  git::ensure_init();
  git_repository* r = nullptr;
  int rc = git_repository_open_ext(&r, path.c_str(), 0, nullptr);
  if (rc != 0) return git::fail_git("open repository at " + path.string(), rc);
  git::Repo repo(r);
  git_oid oid;
  if (git_oid_fromstr(&oid, commit.c_str()) != 0)
    return fail("'" + commit + "' is not a commit id", ErrorKind::kUsage);
  git_commit* c = nullptr;
  rc = git_commit_lookup(&c, repo.get(), &oid);
  if (rc != 0) return git::fail_git("look up commit " + commit + " in " + path.string(), rc);
  git::Commit owned(c);
  CommitFacts f;
  f.tree = git::oid_hex(*git_commit_tree_id(c));
  f.time = static_cast<int64_t>(git_commit_time(c));
  return f;
}

Result<std::string> remote_url(const fs::path& path) {
  git::ensure_init();
  git_repository* r = nullptr;
  int rc = git_repository_open_ext(&r, path.c_str(), 0, nullptr);
  if (rc != 0) return git::fail_git("open repository at " + path.string(), rc);
  git::Repo repo(r);
  git_strarray names{};
  rc = git_remote_list(&names, repo.get());
  if (rc != 0) return git::fail_git("list the remotes of " + path.string(), rc);
  std::vector<std::string> list(names.strings, names.strings + names.count);
  git_strarray_dispose(&names);
  std::string name;
  if (std::find(list.begin(), list.end(), "origin") != list.end())
    name = "origin";
  else if (list.size() == 1)
    name = list[0];
  else
    return std::string();
  git_remote* remote = nullptr;
  rc = git_remote_lookup(&remote, repo.get(), name.c_str());
  if (rc != 0) return git::fail_git("read remote '" + name + "' of " + path.string(), rc);
  git::Remote owned(remote);
  const char* url = git_remote_url(remote);
  return std::string(url ? url : "");
}

Result<LocalRepoState> inspect_worktree(const fs::path& path) {
  LS_TRY_ASSIGN(git::Repo repo, discover(path));
  LocalRepoState st;
  st.root = fs::path(git_repository_workdir(repo.get())).lexically_normal();
  if (st.root.has_filename() == false) st.root = st.root.parent_path();

  git_reference* head = nullptr;
  int rc = git_repository_head(&head, repo.get());
  if (rc == 0) {
    git::Reference owned(head);
    git_object* c = nullptr;
    if (git_reference_peel(&c, head, GIT_OBJECT_COMMIT) == 0) {
      git::Object oc(c);
      st.head_commit = git::oid_hex(*git_object_id(c));
      st.head_tree = git::oid_hex(*git_commit_tree_id(reinterpret_cast<git_commit*>(c)));
    }
    if (git_reference_is_branch(head)) st.branch = git_reference_shorthand(head);
  } else if (rc != GIT_EUNBORNBRANCH && rc != GIT_ENOTFOUND) {
    return git::fail_git("read HEAD of " + st.root.string(), rc);
  } else {
    git_error_clear();
  }

  git_status_options so = GIT_STATUS_OPTIONS_INIT;
  so.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR;
  so.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED | GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS |
             GIT_STATUS_OPT_EXCLUDE_SUBMODULES;
  git_status_list* list = nullptr;
  rc = git_status_list_new(&list, repo.get(), &so);
  if (rc != 0) return git::fail_git("status of " + st.root.string(), rc);
  git::StatusList owned(list);
  for (size_t i = 0, n = git_status_list_entrycount(list); i < n; ++i) {
    const git_status_entry* e = git_status_byindex(list, i);
    if (e->status == GIT_STATUS_CURRENT || (e->status & GIT_STATUS_IGNORED)) continue;
    const git_diff_delta* d = e->index_to_workdir ? e->index_to_workdir : e->head_to_index;
    if (d) st.changed.emplace_back(d->new_file.path ? d->new_file.path : d->old_file.path);
  }
  std::sort(st.changed.begin(), st.changed.end());
  st.changed.erase(std::unique(st.changed.begin(), st.changed.end()), st.changed.end());
  st.dirty = !st.changed.empty();
  return st;
}

Result<std::string> dirty_patch(const fs::path& path) {
  LS_TRY_ASSIGN(git::Repo repo, discover(path));
  LS_TRY_ASSIGN(git::Tree tree, head_tree(repo.get()));
  git_diff_options opts = GIT_DIFF_OPTIONS_INIT;
  opts.flags = GIT_DIFF_INCLUDE_UNTRACKED | GIT_DIFF_RECURSE_UNTRACKED_DIRS |
               GIT_DIFF_SHOW_UNTRACKED_CONTENT | GIT_DIFF_SHOW_BINARY | GIT_DIFF_IGNORE_SUBMODULES;
  git_diff* d = nullptr;
  int rc = git_diff_tree_to_workdir_with_index(&d, repo.get(), tree.get(), &opts);
  if (rc != 0) return git::fail_git("diff working tree of " + path.string(), rc);
  git::Diff diff(d);
  git::Buf buf;
  rc = git_diff_to_buf(&buf.b, d, GIT_DIFF_FORMAT_PATCH);
  if (rc != 0) return git::fail_git("format patch of " + path.string(), rc);
  return buf.str();
}

Result<std::string> read_committed_file(const fs::path& path, const std::string& commit,
                                        const std::string& file, const std::string& patch) {
  git::ensure_init();
  git_repository* r = nullptr;
  int rc = git_repository_open_ext(&r, path.c_str(), 0, nullptr);
  if (rc != 0) return git::fail_git("open repository at " + path.string(), rc);
  git::Repo repo(r);
  git_oid oid;
  if (git_oid_fromstr(&oid, commit.c_str()) != 0)
    return fail("'" + commit + "' is not a commit id", ErrorKind::kUsage);
  git_commit* c = nullptr;
  rc = git_commit_lookup(&c, repo.get(), &oid);
  if (rc != 0) return git::fail_git("look up commit " + commit + " in " + path.string(), rc);
  git::Commit owned(c);
  git_tree* t = nullptr;
  rc = git_commit_tree(&t, c);
  if (rc != 0) return git::fail_git("read the tree of commit " + commit, rc);
  git::Tree tree(t);
  auto missing = [&] {
    return fail(file + ": no such file at commit " + commit.substr(0, 12), ErrorKind::kNotFound);
  };
  git_oid blob_id;
  if (patch.empty()) {
    git_tree_entry* e = nullptr;
    rc = git_tree_entry_bypath(&e, tree.get(), file.c_str());
    if (rc == GIT_ENOTFOUND) {
      git_error_clear();
      return missing();
    }
    if (rc != 0) return git::fail_git("look up " + file + " at commit " + commit, rc);
    bool is_blob = git_tree_entry_type(e) == GIT_OBJECT_BLOB;
    git_oid_cpy(&blob_id, git_tree_entry_id(e));
    git_tree_entry_free(e);
    if (!is_blob) return missing();
  } else {
    // The patch applied to the commit's tree, in memory (an index).
    git_diff* d = nullptr;
    rc = git_diff_from_buffer(&d, patch.data(), patch.size());
    if (rc != 0) return git::fail_git("parse the patch of commit " + commit, rc);
    git::Diff diff(d);
    git_index* idx = nullptr;
    git_apply_options opts = GIT_APPLY_OPTIONS_INIT;
    rc = git_apply_to_tree(&idx, repo.get(), tree.get(), d, &opts);
    if (rc != 0) return git::fail_git("apply the patch to commit " + commit, rc);
    std::unique_ptr<git_index, git::Deleter<git_index, git_index_free>> index(idx);
    const git_index_entry* e = git_index_get_bypath(idx, file.c_str(), 0);
    if (!e) return missing();
    git_oid_cpy(&blob_id, &e->id);
  }
  git_blob* b = nullptr;
  rc = git_blob_lookup(&b, repo.get(), &blob_id);
  if (rc != 0) return git::fail_git("read " + file + " at commit " + commit, rc);
  std::string out(static_cast<const char*>(git_blob_rawcontent(b)),
                  static_cast<size_t>(git_blob_rawsize(b)));
  git_blob_free(b);
  return out;
}

Status apply_patch(const fs::path& workdir, const std::string& patch) {
  if (patch.empty()) return {};
  LS_TRY_ASSIGN(git::Repo repo, git::open_repo(workdir.string()));
  git_diff* d = nullptr;
  int rc = git_diff_from_buffer(&d, patch.data(), patch.size());
  if (rc != 0) return git::fail_git("parse patch for " + workdir.string(), rc);
  git::Diff diff(d);
  git_apply_options opts = GIT_APPLY_OPTIONS_INIT;
  rc = git_apply(repo.get(), d, GIT_APPLY_LOCATION_WORKDIR, &opts);
  if (rc != 0) return git::fail_git("apply patch to " + workdir.string(), rc);
  return {};
}

}  // namespace lockstep::cache
