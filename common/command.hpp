#pragma once
// Running a host program to completion and capturing what it printed: for
// the few tools lockstep drives on the host (patchelf, ldd, diffoscope, ...).
// Not for anything that runs in a container (executor/ does that).
#include <string>
#include <vector>

#include "common/error.hpp"

namespace lockstep {

struct CommandOutput {
  int exit_code = -1;  // 128 + signal when killed by one
  std::string out;
  std::string err;
};

// Runs argv[0] (looked up in PATH when it has no '/') with stdin from
// /dev/null and the caller's environment plus `extra_env` ("K=V", later
// entries win). Fails only when the program could not be started; its exit
// code is data.
// `netns_fd` (>= 0): the program runs in that network namespace (setns
// before exec). `userns_fd` (>= 0): it runs as root (uid and gid 0) of that
// user namespace, joined first, so that a network namespace the user
// namespace owns can then be joined without root (rootless_userns_fd()).
Result<CommandOutput> run_command(const std::vector<std::string>& argv,
                                  const std::vector<std::string>& extra_env = {}, int netns_fd = -1,
                                  int userns_fd = -1);

}  // namespace lockstep
