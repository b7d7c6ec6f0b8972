#pragma once
// An interactive process in a live container through a pseudo terminal
// (`lockstep shell`): the process gets a pty as its controlling terminal;
// bytes from `in_fd` go to it and its output goes to `out_fd`. When `in_fd`
// is a terminal it is put in raw mode for the duration and its window size
// is passed on, at the start and after every SIGWINCH the process receives
// (a resized terminal), so that programs inside see the new size.
#include "executor/executor.hpp"

namespace lockstep::executor {

// Returns the exit code (128 + signal number when killed by a signal).
Result<int> run_interactive(Container& container, ProcessSpec spec, int in_fd = 0, int out_fd = 1);

}  // namespace lockstep::executor
