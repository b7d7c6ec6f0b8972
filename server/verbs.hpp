#pragma once
// The server's verbs of the `lockstep` program: `server` (and its admin
// subcommands) and `agent`.
#include <vector>

#include "runner/cli/commands.hpp"

namespace lockstep::server {

const std::vector<runner::Verb>& verbs();

}  // namespace lockstep::server
