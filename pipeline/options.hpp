#pragma once
// container.options in docker run syntax: the resource limits, network and
// process settings a workflow may ask for. Values are parsed the way docker
// parses them (sizes with b/k/m/g units in powers of 1024, CPUs as a
// decimal), and stored as integers so that they hash stably.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "pipeline/model.hpp"

namespace lockstep::pipeline {

struct HealthCheck {
  std::optional<std::string> cmd;  // run with sh -c (docker's CMD-SHELL)
  std::optional<int64_t> interval_ms;
  std::optional<int64_t> timeout_ms;
  std::optional<int64_t> start_period_ms;
  std::optional<int64_t> retries;
};

struct ContainerOptions {
  std::optional<int64_t> cpus_milli;         // --cpus 1.5 -> 1500
  std::optional<int64_t> memory_bytes;       // --memory / -m
  std::optional<int64_t> memory_swap_bytes;  // --memory-swap; -1 = unlimited
  std::optional<int64_t> pids_limit;         // --pids-limit; <= 0 = unlimited
  std::optional<std::string>
      network;  // --network: "egress" (also docker's "bridge"), "none" or "host"
  std::optional<std::string> user;        // --user / -u: "uid[:gid]" or a name
  std::optional<std::string> workdir;     // --workdir / -w
  std::optional<std::string> hostname;    // --hostname / -h
  std::optional<std::string> entrypoint;  // --entrypoint
  EnvList env;                            // --env / -e K=V, in order
  std::vector<std::string> cap_add;       // --cap-add, upper case, no CAP_ prefix
  std::vector<std::string> cap_drop;      // --cap-drop
  HealthCheck health;                     // --health-*
};

// Parses the options text. Errors (kWorkflow, no location) name the option:
// "unknown option '--privileged'".
Result<ContainerOptions> parse_container_options(std::string_view text);

// Splits text into words as a POSIX shell would (whitespace, '...', "...",
// backslash escapes); no expansion of any kind.
Result<std::vector<std::string>> split_shell_words(std::string_view text);

// docker's RAMInBytes: "512", "512b", "64k", "1.5g", "1gb", "2GiB" (powers of 1024).
Result<int64_t> parse_size(std::string_view text);

// Go durations as docker's --health-* take them: "30s", "1m30s", "500ms", "1h".
Result<int64_t> parse_duration_ms(std::string_view text);

}  // namespace lockstep::pipeline
