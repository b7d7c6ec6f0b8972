#pragma once
// Runs a command on a new pseudo terminal, as a person at a terminal would:
// `typed` is written to it at once (the line discipline keeps it until the
// program reads), and everything the program writes is collected until it
// closes the terminal or `timeout` passes.
#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "tests/support/lockstep_process.hpp"

namespace lockstep::testing {

inline ProcessOutput run_in_pty(const std::vector<std::string>& argv,
                                const std::vector<std::string>& env, const std::string& typed,
                                std::chrono::seconds timeout = std::chrono::seconds(60)) {
  ProcessOutput out;
  int master = -1;
  pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
  if (pid < 0) return out;
  if (pid == 0) {
    for (const auto& e : env) ::putenv(const_cast<char*>(e.c_str()));
    ::setenv("TERM", "dumb", 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  if (::write(master, typed.data(), typed.size()) != static_cast<ssize_t>(typed.size()))
    out.err = "write to the pty failed";
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{master, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    ssize_t n = ::read(master, buf, sizeof buf);
    if (n <= 0) break;  // EIO once the child side is closed
    out.out.append(buf, static_cast<size_t>(n));
  }
  if (std::chrono::steady_clock::now() >= deadline) ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(master);
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return out;
}

}  // namespace lockstep::testing
