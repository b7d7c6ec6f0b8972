#pragma once
// Logging: spdlog behind one prefix ("lockstep: "), whole lines to stderr.
// Off below the chosen level costs one branch.
#include <spdlog/spdlog.h>

namespace lockstep {

enum class Verbosity { kQuiet, kNormal, kVerbose, kDebug };
void setup_logging(Verbosity v);

}  // namespace lockstep
