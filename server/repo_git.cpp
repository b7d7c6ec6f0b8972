#include "server/repo_git.hpp"

#include <git2.h>

#include <memory>

#include "cache/git_util.hpp"

namespace lockstep::server {

namespace {

using cache::git::Blob;
using cache::git::Commit;
using cache::git::Diff;
using cache::git::Index;
using cache::git::RefIter;
using cache::git::Repo;
using cache::git::Tree;
using cache::git::TreeEntry;
using Ref = cache::git::Reference;
using Sig = cache::git::Signature;

// "what: <libgit2's last error>" on one line, as everywhere else.
tl::unexpected<Error> git_fail(std::string_view what) {
  return cache::git::fail_git(what, -1);
}

Result<Repo> open(const std::filesystem::path& p) {
  cache::git::ensure_init();
  git_repository* r = nullptr;
  if (git_repository_open_bare(&r, p.c_str()) != 0) return git_fail("open " + p.string());
  return Repo(r);
}

Result<Commit> commit_of(git_repository* r, const std::string& sha) {
  git_oid oid;
  if (git_oid_fromstr(&oid, sha.c_str()) != 0)
    return fail("'" + sha + "' is not a commit id", ErrorKind::kUsage);
  git_commit* c = nullptr;
  if (git_commit_lookup(&c, r, &oid) != 0) return git_fail("commit " + sha);
  return Commit(c);
}

Result<Tree> tree_of(git_commit* c) {
  git_tree* t = nullptr;
  if (git_commit_tree(&t, c) != 0) return git_fail("tree of commit");
  return Tree(t);
}

std::string hex(const git_oid* oid) {
  char buf[GIT_OID_HEXSZ + 1];
  git_oid_tostr(buf, sizeof buf, oid);
  return buf;
}

bool all_zero(const std::string& s) {
  return s.find_first_not_of('0') == std::string::npos;
}

}  // namespace

Result<std::vector<WorkflowFile>> workflow_files(const std::filesystem::path& mirror,
                                                 const std::string& commit) {
  LS_TRY_ASSIGN(Repo r, open(mirror));
  LS_TRY_ASSIGN(Commit c, commit_of(r.get(), commit));
  LS_TRY_ASSIGN(Tree root, tree_of(c.get()));
  std::vector<WorkflowFile> out;
  git_tree_entry* e = nullptr;
  if (git_tree_entry_bypath(&e, root.get(), ".github/workflows") != 0) return out;
  TreeEntry dir_entry(e);
  if (git_tree_entry_type(e) != GIT_OBJECT_TREE) return out;
  git_tree* dir = nullptr;
  if (git_tree_lookup(&dir, r.get(), git_tree_entry_id(e)) != 0) return git_fail("workflows dir");
  Tree d(dir);
  for (size_t i = 0; i < git_tree_entrycount(dir); ++i) {
    const git_tree_entry* f = git_tree_entry_byindex(dir, i);
    std::string name = git_tree_entry_name(f);
    bool yaml = name.size() > 4 && (name.ends_with(".yml") || name.ends_with(".yaml"));
    if (!yaml || git_tree_entry_type(f) != GIT_OBJECT_BLOB) continue;
    git_blob* b = nullptr;
    if (git_blob_lookup(&b, r.get(), git_tree_entry_id(f)) != 0) return git_fail("blob " + name);
    Blob blob(b);
    out.push_back(
        {".github/workflows/" + name, std::string(static_cast<const char*>(git_blob_rawcontent(b)),
                                                  static_cast<size_t>(git_blob_rawsize(b)))});
  }
  return out;
}

Result<std::optional<std::string>> file_at(const std::filesystem::path& mirror,
                                           const std::string& commit, const std::string& path) {
  LS_TRY_ASSIGN(Repo r, open(mirror));
  LS_TRY_ASSIGN(Commit c, commit_of(r.get(), commit));
  LS_TRY_ASSIGN(Tree root, tree_of(c.get()));
  git_tree_entry* e = nullptr;
  if (git_tree_entry_bypath(&e, root.get(), path.c_str()) != 0) return std::optional<std::string>();
  TreeEntry entry(e);
  if (git_tree_entry_type(e) != GIT_OBJECT_BLOB) return std::optional<std::string>();
  git_blob* b = nullptr;
  if (git_blob_lookup(&b, r.get(), git_tree_entry_id(e)) != 0) return git_fail("blob " + path);
  Blob blob(b);
  return std::optional<std::string>(std::string(static_cast<const char*>(git_blob_rawcontent(b)),
                                                static_cast<size_t>(git_blob_rawsize(b))));
}

Result<std::optional<std::vector<std::string>>> changed_paths(const std::filesystem::path& mirror,
                                                              const std::string& from,
                                                              const std::string& to) {
  using Out = std::optional<std::vector<std::string>>;
  if (from.empty() || all_zero(from)) return Out();
  LS_TRY_ASSIGN(Repo r, open(mirror));
  auto a = commit_of(r.get(), from);
  if (!a) return Out();
  LS_TRY_ASSIGN(Commit b, commit_of(r.get(), to));
  LS_TRY_ASSIGN(Tree ta, tree_of(a->get()));
  LS_TRY_ASSIGN(Tree tb, tree_of(b.get()));
  git_diff* d = nullptr;
  if (git_diff_tree_to_tree(&d, r.get(), ta.get(), tb.get(), nullptr) != 0)
    return git_fail("diff " + from + ".." + to);
  Diff diff(d);
  git_diff_find_options fo = GIT_DIFF_FIND_OPTIONS_INIT;
  fo.flags = GIT_DIFF_FIND_RENAMES;
  git_diff_find_similar(d, &fo);
  std::vector<std::string> paths;
  for (size_t i = 0; i < git_diff_num_deltas(d); ++i) {
    const git_diff_delta* delta = git_diff_get_delta(d, i);
    if (delta->old_file.path) paths.push_back(delta->old_file.path);
    if (delta->new_file.path &&
        (!delta->old_file.path || std::string(delta->new_file.path) != delta->old_file.path))
      paths.push_back(delta->new_file.path);
  }
  return Out(std::move(paths));
}

Result<std::string> merge_commit(const std::filesystem::path& mirror, const std::string& base,
                                 const std::string& head) {
  LS_TRY_ASSIGN(Repo r, open(mirror));
  LS_TRY_ASSIGN(Commit cb, commit_of(r.get(), base));
  LS_TRY_ASSIGN(Commit ch, commit_of(r.get(), head));
  git_index* idx = nullptr;
  git_merge_options mo = GIT_MERGE_OPTIONS_INIT;
  if (git_merge_commits(&idx, r.get(), cb.get(), ch.get(), &mo) != 0)
    return git_fail("merge " + head + " into " + base);
  Index index(idx);
  if (git_index_has_conflicts(idx))
    return fail("the pull request's head " + head.substr(0, 12) + " does not merge into " +
                base.substr(0, 12) + " without conflicts");
  git_oid tree_id;
  if (git_index_write_tree_to(&tree_id, idx, r.get()) != 0) return git_fail("write merge tree");
  git_tree* t = nullptr;
  if (git_tree_lookup(&t, r.get(), &tree_id) != 0) return git_fail("merge tree");
  Tree tree(t);
  git_time_t when = std::max(git_commit_time(cb.get()), git_commit_time(ch.get()));
  git_signature* s = nullptr;
  if (git_signature_new(&s, "lockstep", "lockstep@localhost", when, 0) != 0)
    return git_fail("signature");
  Sig sig(s);
  const git_commit* parents[] = {cb.get(), ch.get()};
  std::string msg = "Merge " + head + " into " + base + "\n";
  git_oid id;
  if (git_commit_create(&id, r.get(), nullptr, s, s, nullptr, msg.c_str(), t, 2, parents) != 0)
    return git_fail("create merge commit");
  std::string sha = hex(&id);
  git_reference* ref = nullptr;
  std::string name = "refs/lockstep/merge/" + sha;
  if (git_reference_create(&ref, r.get(), name.c_str(), &id, 1, "lockstep merge") != 0)
    return git_fail("keep merge commit");
  Ref keep(ref);
  return sha;
}

Result<std::map<std::string, std::string>> branch_heads(const std::filesystem::path& mirror) {
  LS_TRY_ASSIGN(Repo r, open(mirror));
  git_reference_iterator* it = nullptr;
  if (git_reference_iterator_glob_new(&it, r.get(), "refs/heads/*") != 0)
    return git_fail("list branches");
  RefIter iter(it);
  std::map<std::string, std::string> out;
  git_reference* ref = nullptr;
  while (git_reference_next(&ref, it) == 0) {
    Ref owned(ref);
    git_reference* resolved = nullptr;
    if (git_reference_resolve(&resolved, ref) != 0) continue;
    Ref res(resolved);
    if (const git_oid* oid = git_reference_target(resolved))
      out[git_reference_name(ref)] = hex(oid);
  }
  return out;
}

Result<std::string> merge_base(const std::filesystem::path& mirror, const std::string& a,
                               const std::string& b) {
  LS_TRY_ASSIGN(Repo r, open(mirror));
  git_oid oa, ob, out;
  if (git_oid_fromstr(&oa, a.c_str()) != 0 || git_oid_fromstr(&ob, b.c_str()) != 0)
    return fail("merge base: not commit ids");
  if (git_merge_base(&out, r.get(), &oa, &ob) != 0) return git_fail("merge base");
  return hex(&out);
}

}  // namespace lockstep::server
