#pragma once
// `lockstep cache ls | du | gc [--max-size SIZE]`: what the local store holds,
// how much disk it takes, and garbage collection (unreferenced blobs and
// layers; with --max-size, least recently used images until it fits; never
// what a running job uses). Exit codes: 0 ok, 1 failure, 2 usage error.
#include <string>
#include <vector>

namespace lockstep::runner {

// `args` are those after "cache".
int cmd_cache(const std::vector<std::string>& args);

}  // namespace lockstep::runner
