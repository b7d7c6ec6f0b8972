#pragma once
// Verbs over run records: `runs ls|show`, `logs`, `replay`, `verify`.
#include "runner/cli/commands.hpp"

namespace lockstep::runner {

int cmd_runs(const Args& args);
int cmd_logs(const Args& args);
int cmd_replay(const Args& args);
int cmd_verify(const Args& args);

}  // namespace lockstep::runner
