#pragma once
// `lockstep lock [WORKFLOW] [--output FILE] [--check]`: resolves every image
// and checkout ref of a workflow and writes lockstep.lock (docs/lockfile.md).
#include <string>
#include <vector>

namespace lockstep::runner {

// Exit codes: 0 written (or current with --check), 1 stale with --check or
// a resolution failed, 2 usage or workflow error.
int cmd_lock(const std::vector<std::string>& args);

}  // namespace lockstep::runner
