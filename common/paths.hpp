#pragma once
// Where lockstep keeps its state: $LOCKSTEP_HOME, else /var/lib/lockstep for
// root, else $XDG_DATA_HOME/lockstep (~/.local/share/lockstep).
#include <filesystem>

namespace lockstep {

std::filesystem::path state_dir();

}  // namespace lockstep
