#include "common/paths.hpp"

#include <unistd.h>

#include <cstdlib>

namespace lockstep {

std::filesystem::path state_dir() {
  if (const char* h = std::getenv("LOCKSTEP_HOME"); h && *h) return h;
  if (::geteuid() == 0) return "/var/lib/lockstep";
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x)
    return std::filesystem::path(x) / "lockstep";
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home ? home : "/tmp") / ".local/share/lockstep";
}

}  // namespace lockstep
