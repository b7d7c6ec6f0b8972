#pragma once
// `lockstep image pull REF [--platform OS/ARCH[/VARIANT]] [--insecure] [--quiet]`
#include <string>
#include <vector>

namespace lockstep::runner {

// `args` are those after "pull". Pulls into the image store under
// state_dir(), shows progress on stderr (redrawn on a terminal, one line per
// event otherwise, none with --quiet) and prints the image manifest digest on
// stdout. Exit codes: 0 pulled, 1 failed, 2 usage error.
int cmd_image_pull(const std::vector<std::string>& args);

}  // namespace lockstep::runner
