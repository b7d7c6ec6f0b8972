#include "runner/engine/container_config.hpp"

#include <algorithm>

namespace lockstep::runner {

std::string user_from_config(const Json& config) {
  if (config.contains("config") && config["config"].is_object() &&
      config["config"].contains("User") && config["config"]["User"].is_string())
    return config["config"]["User"].get<std::string>();
  return "";
}

std::vector<std::string> env_from_config(const Json& config) {
  std::vector<std::string> env;
  if (config.contains("config") && config["config"].is_object() &&
      config["config"].contains("Env") && config["config"]["Env"].is_array())
    for (const auto& e : config["config"]["Env"])
      if (e.is_string()) env.push_back(e.get<std::string>());
  bool has_path = std::any_of(env.begin(), env.end(),
                              [](const std::string& e) { return e.rfind("PATH=", 0) == 0; });
  if (!has_path) env.push_back("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  return env;
}

void apply_resource_options(const pipeline::ContainerOptions& o, executor::Limits& limits) {
  if (o.cpus_milli) limits.cpus = static_cast<double>(*o.cpus_milli) / 1000.0;
  if (o.memory_bytes) limits.memory_bytes = static_cast<uint64_t>(*o.memory_bytes);
  if (o.pids_limit && *o.pids_limit > 0) limits.pids = *o.pids_limit;
}

}  // namespace lockstep::runner
