#pragma once
// What a container gets from its image config and from docker-style options,
// shared by job containers, service containers and `lockstep shell`.
#include <string>
#include <vector>

#include "common/json.hpp"
#include "executor/spec.hpp"
#include "pipeline/options.hpp"

namespace lockstep::runner {

// The image config's Env, with a default PATH when it sets none.
std::vector<std::string> env_from_config(const Json& config);
// The image config's User ("" when unset).
std::string user_from_config(const Json& config);
// --cpus, --memory and --pids-limit as cgroup limits.
void apply_resource_options(const pipeline::ContainerOptions& o, executor::Limits& limits);

}  // namespace lockstep::runner
