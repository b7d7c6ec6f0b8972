#pragma once
// Read-only file trees of git commits, kept under the state dir by commit:
// <state>/trees/<commit>/. Actions and reusable workflows run from these:
// a commit never changes, so its tree is written once (from the repository's
// bare mirror, see git_mirror.hpp) and shared by every job and run that uses
// it; jobs see it through read-only bind mounts.
//
// A tree is written into a temp dir beside its final place and renamed there
// when complete, so a crash never leaves a partial tree under a commit's name.
// Like GitHub's action downloads it holds the files of the commit only: no
// .git, no submodules (a gitlink becomes an empty directory). Entry names
// that could escape the tree ("..", names with '/', ".git") are refused.
#include <filesystem>
#include <string>

#include "cache/git_mirror.hpp"
#include "common/error.hpp"

namespace lockstep::cache {

class GitTrees {
 public:
  explicit GitTrees(std::filesystem::path state_dir);

  // Where the tree of `commit` (40 hex) lives, whether or not it exists yet.
  std::filesystem::path path(const std::string& commit) const;
  bool has(const std::string& commit) const;

  // The tree of `commit`, written from `mirror` (a bare repository holding
  // it) unless it is already there.
  Result<std::filesystem::path> materialize(const std::filesystem::path& mirror,
                                            const std::string& commit) const;

  // Copies an existing tree into `dest` (a directory that does not exist),
  // for exports; and adopts one from such a copy (verified by nothing but
  // its name: callers compare what they read against recorded digests).
  Status copy_out(const std::string& commit, const std::filesystem::path& dest) const;
  Status adopt(const std::string& commit, const std::filesystem::path& from) const;

  const std::filesystem::path& root() const { return root_; }

 private:
  std::filesystem::path root_;  // <state>/trees
};

// Writes the files of `commit`'s tree in the bare repository `repo` into
// `dest` (created; must not exist). Modes: 0755 for executables, 0644
// otherwise; symlinks as symlinks.
Status export_commit_tree(const std::filesystem::path& repo, const std::string& commit,
                          const std::filesystem::path& dest);

}  // namespace lockstep::cache
