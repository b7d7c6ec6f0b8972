#pragma once
// A job's `services:`: sibling containers that join the job container's
// network namespace, so the job reaches each at localhost:<port> and by its
// name (an /etc/hosts entry). Each runs its image's entrypoint and command
// (or --entrypoint), is health-checked (--health-* options or the image's
// HEALTHCHECK) before the job's steps start, and is stopped with the job; its
// log is kept beside the job's.
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/error.hpp"
#include "executor/executor.hpp"
#include "pipeline/expr.hpp"
#include "pipeline/model.hpp"
#include "pipeline/options.hpp"
#include "runner/engine/images.hpp"

namespace lockstep::runner {

struct HealthPolicy {
  std::vector<std::string> argv;  // empty: no health check
  std::chrono::milliseconds interval{1000};
  std::chrono::milliseconds timeout{30000};
  std::chrono::milliseconds start_period{0};
  int retries = 3;
};

class Service {
 public:
  Service() = default;
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;
  ~Service();

  std::string name;
  std::string image;
  std::string image_digest;
  std::filesystem::path log_file;

  // Starts the container and its main process in the background.
  Status start(executor::Executor& exec, const executor::ContainerSpec& spec,
               std::vector<std::string> argv, std::vector<std::string> env);
  // Polls the health check until healthy, failed or out of retries.
  Status wait_healthy(const HealthPolicy& policy);
  void stop();

 private:
  std::string log_tail(size_t lines) const;
  std::unique_ptr<executor::Container> container_;
  std::thread main_;
  std::string exit_reason_;
  std::atomic<bool> exited_{false};
};

// The /etc/hosts a job and its services share: localhost and every service name.
std::string hosts_file(const std::vector<std::string>& service_names);

// From the image config's Healthcheck and the --health-* options (options win).
HealthPolicy health_policy(const Json& image_config, const pipeline::ContainerOptions& options);

// The image config's Entrypoint and Cmd.
std::pair<std::vector<std::string>, std::vector<std::string>> image_entrypoint_and_cmd(
    const Json& image_config);

// Entrypoint + Cmd of the image config, with --entrypoint replacing the first.
std::vector<std::string> service_argv(const Json& image_config,
                                      const pipeline::ContainerOptions& options);

}  // namespace lockstep::runner
