#pragma once
// The workflow's own repository: what `lockstep run` records when it starts
// inside a git working tree, and the explicit patch `--dirty` carries.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace lockstep::cache {

struct LocalRepoState {
  std::filesystem::path root;        // the working tree's top directory
  std::string head_commit;           // 40 hex; empty when HEAD is unborn
  std::string head_tree;             // 40 hex; empty when HEAD is unborn
  std::string branch;                // short name, empty when detached
  bool dirty = false;                // tracked changes or untracked (not ignored) files
  std::vector<std::string> changed;  // paths that make it dirty, sorted
};

// A commit's tree and committer time, read from any repository (working
// tree or bare mirror) that has it.
struct CommitFacts {
  std::string tree;  // 40 hex
  int64_t time = 0;  // committer time, unix seconds
};
Result<CommitFacts> commit_facts(const std::filesystem::path& repo, const std::string& commit);

// The URL of the remote of the repository at `path` (a working tree, found
// upwards like git does, or a bare repository): `origin`, else the only
// remote. Empty when there is no remote, or several and none is `origin`.
Result<std::string> remote_url(const std::filesystem::path& path);

// Finds the repository containing `path` (searching upwards like git does).
// kNotFound when `path` is not inside a git working tree.
Result<LocalRepoState> inspect_worktree(const std::filesystem::path& path);

// The uncommitted changes of the working tree containing `path`, against
// HEAD, as a git patch ("diff --git" format, binary content included):
// staged and unstaged changes, deletions and untracked files (ignored files
// are not). Empty when the tree is clean. Applying it to a checkout of HEAD
// reproduces the working tree's content.
Result<std::string> dirty_patch(const std::filesystem::path& path);

// The bytes of `path` (relative to the repository root, '/'-separated) in
// `commit`, read from any repository that has it (working tree or bare
// mirror); with `patch` (a dirty_patch()), as the patch leaves it. kNotFound
// when the commit has no such file (or the patch deletes it).
Result<std::string> read_committed_file(const std::filesystem::path& repo,
                                        const std::string& commit, const std::string& path,
                                        const std::string& patch = "");

// Applies a patch made by dirty_patch() to the working tree of the
// repository at `workdir` (the index is left alone). Fails, changing
// nothing, when a hunk does not apply.
Status apply_patch(const std::filesystem::path& workdir, const std::string& patch);

}  // namespace lockstep::cache
