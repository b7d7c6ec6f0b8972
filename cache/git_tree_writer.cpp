#include "cache/git_tree_writer.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "cache/git_util.hpp"
#include "common/fd.hpp"

namespace lockstep::cache::git {
namespace fs = std::filesystem;

namespace {

using Blob = std::unique_ptr<git_blob, Deleter<git_blob, git_blob_free>>;
using Index = std::unique_ptr<git_index, Deleter<git_index, git_index_free>>;

bool has_attributes(git_repository* repo, git_tree* tree) {
  for (size_t i = 0, n = git_tree_entrycount(tree); i < n; ++i) {
    const git_tree_entry* e = git_tree_entry_byindex(tree, i);
    if (git_tree_entry_type(e) == GIT_OBJECT_BLOB &&
        std::string_view(git_tree_entry_name(e)) == ".gitattributes")
      return true;
    if (git_tree_entry_type(e) == GIT_OBJECT_TREE) {
      git_tree* sub = nullptr;
      if (git_tree_lookup(&sub, repo, git_tree_entry_id(e)) != 0)
        return true;  // let libgit2 report
      Tree owned(sub);
      if (has_attributes(repo, sub)) return true;
    }
  }
  return false;
}

// One blob or symlink to write, found by the tree walk.
struct FileJob {
  std::string path;  // relative to the workdir
  git_oid id;
  git_filemode_t mode;
  struct stat st {};
};

struct IndexItem {
  size_t job = SIZE_MAX;  // into jobs, or SIZE_MAX for a gitlink
  std::string path;
  git_oid id;
};

// Phase 1, one thread: creates the directories, lists the files.
struct Walker {
  git_repository* repo;
  int root;
  std::vector<FileJob>& jobs;
  std::vector<IndexItem>& items;
  std::string prefix;

  Status walk(git_tree* tree) {
    for (size_t i = 0, n = git_tree_entrycount(tree); i < n; ++i) {
      const git_tree_entry* e = git_tree_entry_byindex(tree, i);
      const std::string path = prefix + git_tree_entry_name(e);
      const git_filemode_t mode = git_tree_entry_filemode(e);
      const git_oid* id = git_tree_entry_id(e);
      switch (mode) {
        case GIT_FILEMODE_TREE: {
          if (::mkdirat(root, path.c_str(), 0777) != 0) return fail_errno("mkdir " + path);
          git_tree* t = nullptr;
          int rc = git_tree_lookup(&t, repo, id);
          if (rc != 0) return fail_git("read tree " + path, rc);
          Tree owned(t);
          const size_t len = prefix.size();
          prefix = path + "/";
          LS_TRY(walk(t));
          prefix.resize(len);
          break;
        }
        case GIT_FILEMODE_BLOB:
        case GIT_FILEMODE_BLOB_EXECUTABLE:
        case GIT_FILEMODE_LINK:
          items.push_back({jobs.size(), path, *id});
          jobs.push_back({path, *id, mode});
          break;
        case GIT_FILEMODE_COMMIT:
          // A submodule: an empty directory; the index records the gitlink.
          if (::mkdirat(root, path.c_str(), 0777) != 0) return fail_errno("mkdir " + path);
          items.push_back({SIZE_MAX, path, *id});
          break;
        default:
          return fail("unsupported file mode " + std::to_string(mode) + " for " + path);
      }
    }
    return {};
  }
};

Status write_one(git_repository* repo, int root, FileJob& job) {
  git_blob* b = nullptr;
  int rc = git_blob_lookup(&b, repo, &job.id);
  if (rc != 0) return fail_git("read blob " + job.path, rc);
  Blob blob(b);
  const char* data = static_cast<const char*>(git_blob_rawcontent(b));
  const size_t size = static_cast<size_t>(git_blob_rawsize(b));
  if (job.mode == GIT_FILEMODE_LINK) {
    std::string target(data, size);
    if (::symlinkat(target.c_str(), root, job.path.c_str()) != 0)
      return fail_errno("symlink " + job.path);
    if (::fstatat(root, job.path.c_str(), &job.st, AT_SYMLINK_NOFOLLOW) != 0)
      return fail_errno("stat " + job.path);
    return {};
  }
  const mode_t perm = job.mode == GIT_FILEMODE_BLOB_EXECUTABLE ? 0777 : 0666;
  UniqueFd fd(
      ::openat(root, job.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, perm));
  if (!fd) return fail_errno("create " + job.path);
  size_t off = 0;
  while (off < size) {
    ssize_t w = ::write(fd.get(), data + off, size - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return fail_errno("write " + job.path);
    }
    off += static_cast<size_t>(w);
  }
  if (::fstat(fd.get(), &job.st) != 0) return fail_errno("stat " + job.path);
  return {};
}

// Phase 2: writes jobs [next..] until none are left or one fails. Each
// thread has its own repository handle: libgit2 objects are not shared
// across threads.
void write_worker(const std::string& gitdir, int root, std::vector<FileJob>& jobs,
                  std::atomic<size_t>& next, std::atomic<bool>& failed, Status& status) {
  git_repository* r = nullptr;
  int rc = git_repository_open_bare(&r, gitdir.c_str());
  if (rc != 0) {
    status = fail_git("open " + gitdir, rc);
    failed = true;
    return;
  }
  Repo repo(r);
  for (;;) {
    if (failed) return;
    const size_t i = next.fetch_add(64);
    if (i >= jobs.size()) return;
    for (size_t j = i; j < std::min(i + 64, jobs.size()); ++j) {
      status = write_one(r, root, jobs[j]);
      if (!status) {
        failed = true;
        return;
      }
    }
  }
}

Status add_entry(git_index* index, const std::string& path, const struct stat& st, uint32_t mode,
                 const git_oid& id) {
  git_index_entry e{};
  e.ctime.seconds = static_cast<int32_t>(st.st_ctim.tv_sec);
  e.ctime.nanoseconds = static_cast<uint32_t>(st.st_ctim.tv_nsec);
  e.mtime.seconds = static_cast<int32_t>(st.st_mtim.tv_sec);
  e.mtime.nanoseconds = static_cast<uint32_t>(st.st_mtim.tv_nsec);
  e.dev = static_cast<uint32_t>(st.st_dev);
  e.ino = static_cast<uint32_t>(st.st_ino);
  e.mode = mode;
  e.uid = st.st_uid;
  e.gid = st.st_gid;
  e.file_size = static_cast<uint32_t>(st.st_size);
  e.id = id;
  e.path = path.c_str();
  int rc = git_index_add(index, &e);
  if (rc != 0) return fail_git("add " + path + " to the index", rc);
  return {};
}

}  // namespace

Result<bool> tree_needs_filters(git_repository* repo, git_tree* tree) {
  git_config* cfg = nullptr;
  int rc = git_repository_config_snapshot(&cfg, repo);
  if (rc != 0) return fail_git("read repository config", rc);
  Config owned(cfg);
  int autocrlf = 0;
  if (git_config_get_bool(&autocrlf, cfg, "core.autocrlf") == 0 && autocrlf) return true;
  git_error_clear();
  for (const char* key : {"core.autocrlf", "core.eol", "core.attributesfile"}) {
    git_config_entry* e = nullptr;
    if (git_config_get_entry(&e, cfg, key) == 0) {
      const bool off = std::string_view(key) == "core.autocrlf" &&
                       (std::string_view(e->value) == "false" || std::string_view(e->value) == "0");
      git_config_entry_free(e);
      if (!off) return true;
    }
    git_error_clear();
  }
  std::error_code ec;
  const char* xdg = std::getenv("XDG_CONFIG_HOME");
  const char* home = std::getenv("HOME");
  if (xdg && *xdg && fs::exists(fs::path(xdg) / "git/attributes", ec)) return true;
  if (home && *home && fs::exists(fs::path(home) / ".config/git/attributes", ec)) return true;
  return has_attributes(repo, tree);
}

Status write_tree_fresh(git_repository* repo, git_tree* tree, const fs::path& workdir) {
  git_index* idx = nullptr;
  int rc = git_repository_index(&idx, repo);
  if (rc != 0) return fail_git("open index of " + workdir.string(), rc);
  Index index(idx);
  UniqueFd root(::open(workdir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root) return fail_errno("open " + workdir.string());
  auto ctx = [&](Error e) { return std::move(e).context("write " + workdir.string()); };

  std::vector<FileJob> jobs;
  std::vector<IndexItem> items;
  Walker walker{repo, root.get(), jobs, items, ""};
  LS_TRY(walker.walk(tree).map_error(ctx));

  // File creation is kernel-bound; a second writer thread on a second core
  // roughly halves it. Small trees are not worth a thread.
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  const size_t nthreads = jobs.size() < 1000 ? 1 : std::min<size_t>(hw, 4);
  const std::string gitdir = git_repository_path(repo);
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::vector<Status> statuses(nthreads);
  std::vector<std::thread> threads;
  for (size_t t = 1; t < nthreads; ++t)
    threads.emplace_back(write_worker, std::cref(gitdir), root.get(), std::ref(jobs),
                         std::ref(next), std::ref(failed), std::ref(statuses[t]));
  write_worker(gitdir, root.get(), jobs, next, failed, statuses[0]);
  for (auto& t : threads) t.join();
  for (auto& st : statuses) LS_TRY(st.map_error(ctx));

  rc = git_index_clear(idx);
  if (rc != 0) return fail_git("clear index of " + workdir.string(), rc);
  static const struct stat kNoStat {};
  for (const auto& it : items) {
    if (it.job == SIZE_MAX)
      LS_TRY(add_entry(idx, it.path, kNoStat, GIT_FILEMODE_COMMIT, it.id));
    else
      LS_TRY(add_entry(idx, it.path, jobs[it.job].st, jobs[it.job].mode, it.id));
  }
  rc = git_index_write(idx);
  if (rc != 0) return fail_git("write index of " + workdir.string(), rc);
  return {};
}

}  // namespace lockstep::cache::git
