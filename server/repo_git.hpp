#pragma once
// What the planner reads from a repository's bare mirror (cache/git_mirror):
// the workflow files of a commit, the files a push changed, the merge commit
// of a pull request, and the branch heads the poller compares.
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace lockstep::server {

struct WorkflowFile {
  std::string path;  // ".github/workflows/ci.yml"
  std::string text;
};
// Every .yml/.yaml directly under .github/workflows/ at `commit`, by path.
Result<std::vector<WorkflowFile>> workflow_files(const std::filesystem::path& mirror,
                                                 const std::string& commit);

// Paths that differ between two commits (added, removed, modified, both
// names of a rename); nullopt when `from` is empty, all zeros or unknown.
Result<std::optional<std::vector<std::string>>> changed_paths(const std::filesystem::path& mirror,
                                                              const std::string& from,
                                                              const std::string& to);

// The merge of `head` into `base`, as GitHub builds a pull request's merge
// commit; kept under refs/lockstep/merge/ so that it is never collected.
// Author and committer "lockstep", time of the later parent: the same pull
// request state gives the same commit. A conflict is an error saying so.
Result<std::string> merge_commit(const std::filesystem::path& mirror, const std::string& base,
                                 const std::string& head);

// The file at `path` in `commit`; nullopt when there is none.
Result<std::optional<std::string>> file_at(const std::filesystem::path& mirror,
                                           const std::string& commit, const std::string& path);

// refs/heads/* -> commit.
Result<std::map<std::string, std::string>> branch_heads(const std::filesystem::path& mirror);

// The merge base of two commits (the diff of a pull request starts there).
Result<std::string> merge_base(const std::filesystem::path& mirror, const std::string& a,
                               const std::string& b);

}  // namespace lockstep::server
