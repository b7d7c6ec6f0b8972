#pragma once
// `lockstep agent`: claims jobs from a server, one per slot, runs each in a
// job supervisor process, spools and sends its log, renews its lease and
// reports its result (docs/server.md, "Agent protocol" and "The job
// supervisor").
#include <atomic>
#include <filesystem>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace lockstep::server {

struct AgentConfig {
  std::string server;  // "http://127.0.0.1:8080"
  std::string token;
  int slots = 1;
  std::string name;  // shown in the UI; default: the host name
  std::filesystem::path state_dir;
  // How a job's body runs. "lockstep" (the default): the job's cell of
  // `lockstep run` at the planned commit, with this agent's state dir.
  // "fake" interprets a few step commands itself (`echo TEXT`, `sleep
  // SECONDS`, `exit CODE`) without containers: for tests and the dispatch
  // benchmark.
  std::string executor = "lockstep";
  // lockstep executor: `--platform LABEL=IMAGE` for every run.
  std::vector<std::string> platforms;
  // Fake executor only: appends "<event> <job> <attempt> <monotonic ns>" lines
  // (start, alive every 20 ms, end) so tests can check that attempts of a job
  // never overlap.
  std::filesystem::path trace;
};

// Runs until `stop` becomes true (or SIGTERM/SIGINT when handle_signals);
// then gives its running attempts back to the server (they are re-queued).
Status run_agent(const AgentConfig& cfg, std::atomic<bool>& stop, bool handle_signals);

// The job supervisor (`lockstep agent --supervise DIR`): runs the job
// described by DIR/job.json, kills it when the deadline the agent writes to
// fd 3 passes or fd 3 closes, writes DIR/result.json. Returns the exit code.
int run_supervisor(const std::filesystem::path& dir);

}  // namespace lockstep::server
