#include "cache/git_trees.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "cache/git_util.hpp"
#include "common/fd.hpp"
#include "common/fs.hpp"

namespace lockstep::cache {
namespace fs = std::filesystem;

namespace {

using Blob = std::unique_ptr<git_blob, git::Deleter<git_blob, git_blob_free>>;

bool safe_name(std::string_view n) {
  return !n.empty() && n != "." && n != ".." && n != ".git" &&
         n.find('/') == std::string_view::npos;
}

bool is_commit_id(const std::string& s) {
  return s.size() == 40 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// Writes `tree` below the directory `dir` (an open fd), every file through
// openat() against the fd of the directory it is in, never following a
// symlink: what the tree holds cannot reach outside `dest`.
Status write_tree(git_repository* repo, git_tree* tree, int dir, const std::string& where) {
  for (size_t i = 0, n = git_tree_entrycount(tree); i < n; ++i) {
    const git_tree_entry* e = git_tree_entry_byindex(tree, i);
    const std::string name = git_tree_entry_name(e);
    const std::string path = where + name;
    if (!safe_name(name)) return fail("refusing tree entry '" + path + "'", ErrorKind::kIntegrity);
    const git_filemode_t mode = git_tree_entry_filemode(e);
    const git_oid* id = git_tree_entry_id(e);
    switch (mode) {
      case GIT_FILEMODE_TREE: {
        if (::mkdirat(dir, name.c_str(), 0755) != 0) return fail_errno("mkdir " + path);
        UniqueFd sub(::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!sub) return fail_errno("open " + path);
        git_tree* t = nullptr;
        int rc = git_tree_lookup(&t, repo, id);
        if (rc != 0) return git::fail_git("read tree " + path, rc);
        git::Tree owned(t);
        LS_TRY(write_tree(repo, t, sub.get(), path + "/"));
        break;
      }
      case GIT_FILEMODE_BLOB:
      case GIT_FILEMODE_BLOB_EXECUTABLE:
      case GIT_FILEMODE_LINK: {
        git_blob* b = nullptr;
        int rc = git_blob_lookup(&b, repo, id);
        if (rc != 0) return git::fail_git("read " + path, rc);
        Blob blob(b);
        const char* data = static_cast<const char*>(git_blob_rawcontent(b));
        size_t size = static_cast<size_t>(git_blob_rawsize(b));
        if (mode == GIT_FILEMODE_LINK) {
          std::string target(data, size);
          if (::symlinkat(target.c_str(), dir, name.c_str()) != 0)
            return fail_errno("symlink " + path);
          break;
        }
        int perm = mode == GIT_FILEMODE_BLOB_EXECUTABLE ? 0755 : 0644;
        UniqueFd fd(::openat(dir, name.c_str(),
                             O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, perm));
        if (!fd) return fail_errno("create " + path);
        while (size > 0) {
          ssize_t w = ::write(fd.get(), data, size);
          if (w < 0) {
            if (errno == EINTR) continue;
            return fail_errno("write " + path);
          }
          data += w;
          size -= static_cast<size_t>(w);
        }
        if (::fchmod(fd.get(), static_cast<mode_t>(perm)) != 0) return fail_errno("chmod " + path);
        break;
      }
      case GIT_FILEMODE_COMMIT:  // a submodule: an empty directory, as GitHub's archives have
        if (::mkdirat(dir, name.c_str(), 0755) != 0) return fail_errno("mkdir " + path);
        break;
      default:
        return fail("unknown mode of tree entry '" + path + "'", ErrorKind::kIntegrity);
    }
  }
  return {};
}

}  // namespace

Status export_commit_tree(const fs::path& repo_path, const std::string& commit,
                          const fs::path& dest) {
  LS_TRY_ASSIGN(git::Repo repo, git::open_repo(repo_path.string()));
  git_oid oid;
  if (git_oid_fromstr(&oid, commit.c_str()) != 0)
    return fail("invalid commit id '" + commit + "'", ErrorKind::kUsage);
  git_commit* c = nullptr;
  int rc = git_commit_lookup(&c, repo.get(), &oid);
  if (rc != 0) return git::fail_git("read commit " + commit, rc);
  git::Commit owned(c);
  git_tree* t = nullptr;
  rc = git_commit_tree(&t, c);
  if (rc != 0) return git::fail_git("read the tree of " + commit, rc);
  git::Tree tree(t);
  if (::mkdir(dest.c_str(), 0755) != 0) return fail_errno("create " + dest.string());
  UniqueFd dir(::open(dest.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir) return fail_errno("open " + dest.string());
  return write_tree(repo.get(), t, dir.get(), "");
}

GitTrees::GitTrees(fs::path state_dir) : root_(std::move(state_dir) / "trees") {}

fs::path GitTrees::path(const std::string& commit) const {
  return root_ / commit;
}

bool GitTrees::has(const std::string& commit) const {
  struct stat st {};
  return is_commit_id(commit) && ::stat(path(commit).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

Result<fs::path> GitTrees::materialize(const fs::path& mirror, const std::string& commit) const {
  if (!is_commit_id(commit)) return fail("invalid commit id '" + commit + "'", ErrorKind::kUsage);
  fs::path final_path = path(commit);
  if (has(commit)) return final_path;
  std::error_code ec;
  fs::create_directories(root_, ec);
  if (ec) return fail("create " + root_.string() + ": " + ec.message());
  LS_TRY_ASSIGN(TempDir tmp, TempDir::create(root_, ".tmp-" + commit.substr(0, 12) + "-"));
  LS_TRY(export_commit_tree(mirror, commit, tmp.path() / "t"));
  // Another process may have published the same commit meanwhile: theirs is
  // as good as ours.
  if (::rename((tmp.path() / "t").c_str(), final_path.c_str()) != 0 && errno != ENOTEMPTY &&
      errno != EEXIST)
    return fail_errno("publish " + final_path.string());
  return final_path;
}

Status GitTrees::copy_out(const std::string& commit, const fs::path& dest) const {
  if (!has(commit)) return fail("no tree for commit " + commit, ErrorKind::kNotFound);
  std::error_code ec;
  fs::copy(path(commit), dest, fs::copy_options::recursive | fs::copy_options::copy_symlinks, ec);
  if (ec)
    return fail("copy " + path(commit).string() + " to " + dest.string() + ": " + ec.message());
  return {};
}

Status GitTrees::adopt(const std::string& commit, const fs::path& from) const {
  if (!is_commit_id(commit)) return fail("invalid commit id '" + commit + "'", ErrorKind::kUsage);
  if (has(commit)) return {};
  std::error_code ec;
  fs::create_directories(root_, ec);
  if (ec) return fail("create " + root_.string() + ": " + ec.message());
  LS_TRY_ASSIGN(TempDir tmp, TempDir::create(root_, ".tmp-" + commit.substr(0, 12) + "-"));
  fs::copy(from, tmp.path() / "t", fs::copy_options::recursive | fs::copy_options::copy_symlinks,
           ec);
  if (ec) return fail("copy " + from.string() + ": " + ec.message());
  if (::rename((tmp.path() / "t").c_str(), path(commit).c_str()) != 0 && errno != ENOTEMPTY &&
      errno != EEXIST)
    return fail_errno("publish " + path(commit).string());
  return {};
}

}  // namespace lockstep::cache
