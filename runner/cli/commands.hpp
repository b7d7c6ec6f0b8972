#pragma once
// One function per CLI verb; each takes the arguments after its verb and
// returns the process exit code. main.cpp only dispatches.
#include <string>
#include <vector>

namespace lockstep::runner {

using Args = std::vector<std::string>;

int cmd_run(const Args& args);
int cmd_image(const Args& args);
int cmd_shell(const Args& args);

struct Verb {
  const char* name;
  int (*fn)(const Args&);
  const char* summary;
};
const std::vector<Verb>& verbs();

}  // namespace lockstep::runner
