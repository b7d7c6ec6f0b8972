// Repacking a mirror: every fetch adds a pack, and object lookups (and the
// number of files a checkout links) grow with the number of packs. When a
// mirror holds more than max_packs, everything reachable from its refs is
// written into one new pack and the old packs are removed. Objects no ref
// reaches any more (pruned branches) go with them.
#include <unistd.h>

#include <system_error>

#include "cache/git_mirror.hpp"
#include "cache/git_util.hpp"
#include "common/lock_file.hpp"

namespace lockstep::cache {
namespace fs = std::filesystem;

namespace {

using PackBuilder =
    std::unique_ptr<git_packbuilder, git::Deleter<git_packbuilder, git_packbuilder_free>>;
using RevWalk = std::unique_ptr<git_revwalk, git::Deleter<git_revwalk, git_revwalk_free>>;

std::vector<fs::path> packs(const fs::path& mirror) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(mirror / "objects/pack", ec))
    if (e.path().extension() == ".pack") out.push_back(e.path());
  return out;
}

}  // namespace

size_t GitMirrors::pack_count(const std::string& url) const {
  return packs(mirror_path(url)).size();
}

Result<bool> GitMirrors::compact_locked(const fs::path& mirror, size_t max_packs) const {
  const auto old = packs(mirror);
  if (old.size() <= max_packs) return false;
  LS_TRY_ASSIGN(git::Repo repo, git::open_repo(mirror.string()));
  const std::string where = "repack mirror " + mirror.string();
  git_packbuilder* p = nullptr;
  int rc = git_packbuilder_new(&p, repo.get());
  if (rc != 0) return git::fail_git(where, rc);
  PackBuilder pb(p);
  git_packbuilder_set_threads(p, 0);  // one per core

  git_revwalk* w = nullptr;
  rc = git_revwalk_new(&w, repo.get());
  if (rc != 0) return git::fail_git(where, rc);
  RevWalk walk(w);
  rc = git_revwalk_push_glob(w, "refs/*");
  if (rc == 0) rc = git_packbuilder_insert_walk(p, w);
  if (rc != 0) return git::fail_git(where, rc);
  // Annotated tags are objects of their own that the commit walk does not see.
  git_reference_iterator* it = nullptr;
  rc = git_reference_iterator_glob_new(&it, repo.get(), "refs/tags/*");
  if (rc != 0) return git::fail_git(where, rc);
  git::RefIter iter(it);
  git_reference* ref = nullptr;
  while (git_reference_next(&ref, it) == 0) {
    git::Reference owned(ref);
    const git_oid* id = git_reference_target(ref);
    git_object_t type = GIT_OBJECT_INVALID;
    git_odb* odb = nullptr;
    if (id && git_repository_odb(&odb, repo.get()) == 0) {
      size_t len = 0;
      if (git_odb_read_header(&len, &type, odb, id) != 0) git_error_clear();
      git_odb_free(odb);
    }
    if (type == GIT_OBJECT_TAG) {
      rc = git_packbuilder_insert_recur(p, id, nullptr);
      if (rc != 0) return git::fail_git(where, rc);
    }
  }
  rc = git_packbuilder_write(p, (mirror / "objects/pack").c_str(), 0, nullptr, nullptr);
  if (rc != 0) return git::fail_git(where, rc);
  const std::string keep = std::string("pack-") + git_packbuilder_name(p);
  for (const auto& pack : old) {
    if (pack.stem() == keep) continue;
    for (const char* ext : {".idx", ".rev", ".keep", ".pack"}) {
      fs::path f = pack;
      f.replace_extension(ext);
      if (::unlink(f.c_str()) != 0 && errno != ENOENT) return fail_errno("remove " + f.string());
    }
  }
  return true;
}

Result<bool> GitMirrors::compact(const std::string& url, size_t max_packs) const {
  const fs::path mirror = mirror_path(url);
  LS_TRY_ASSIGN(LockFile lock, LockFile::acquire(fs::path(mirror.string() + ".lock")));
  (void)lock;
  return compact_locked(mirror, max_packs);
}

}  // namespace lockstep::cache
