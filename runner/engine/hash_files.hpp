#pragma once
// hashFiles() of expressions, as GitHub's runner computes it: the files of
// the workspace that the patterns match (globs, `**`, `!` exclusions; a
// matched directory stands for every file below it), each hashed with
// SHA-256, and one SHA-256 over those digests in the order the runner's
// glob finds them (pattern order, then path order). Files outside the
// workspace are left out. Nothing matched: the empty string.
#include <filesystem>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace lockstep::runner {

Result<std::string> hash_workspace_files(const std::filesystem::path& workspace,
                                         const std::vector<std::string>& patterns);

}  // namespace lockstep::runner
