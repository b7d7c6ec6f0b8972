#pragma once
// `lockstep mirror serve|prefetch`: the pull-through registry mirror.
#include <string>
#include <vector>

namespace lockstep::runner {

// `args` are those after "mirror". Exit codes: 0 ok, 1 failed, 2 usage error.
//   serve [--config FILE] [--listen ADDR:PORT] [--upstream NAME=URL]...
//         [--default-upstream NAME] [--tag-ttl DUR] [--max-size SIZE]
//         [--state DIR] [--insecure-upstream HOST] [--access-log FILE]
//   prefetch LIST [--mirror URL] [--platform OS/ARCH]
int cmd_mirror(const std::vector<std::string>& args);

}  // namespace lockstep::runner
