#pragma once
// `lockstep artifacts <run> [--download DIR] [--name NAME]`: the artifacts a
// run uploaded (name, size, file count, sha256 digest), and downloading them:
// all into DIR/<name>/, or with --name one artifact into DIR itself. Digests
// are verified on the way out. Exit codes: 0 ok, 1 failure (a missing
// artifact, a corrupt file), 2 usage error.
#include <string>
#include <vector>

namespace lockstep::runner {

// `args` are those after "artifacts". State comes from common/paths.hpp
// state_dir() ($LOCKSTEP_HOME).
int cmd_artifacts(const std::vector<std::string>& args);

}  // namespace lockstep::runner
