#pragma once
// The seam between the runner and the operating system. The runner only talks
// to Executor/Container; tests of scheduling use a fake implementation.
#include <chrono>
#include <memory>

#include "common/error.hpp"
#include "executor/spec.hpp"

namespace lockstep::executor {

class Container {
 public:
  virtual ~Container() = default;  // stops and removes the container
  virtual const std::string& id() const = 0;

  // Runs one process in the live container (docker exec semantics: joins its
  // namespaces and cgroup) and waits for it. Output lines go to `sink`.
  virtual Result<ProcessResult> exec(const ProcessSpec& spec, const LineSink& sink) = 0;

  // Asks every process to stop: SIGTERM, then SIGKILL to the whole cgroup
  // after `grace`. Safe to call from another thread while exec() runs; the
  // exec returns with ExitKind::kCancelled.
  virtual void cancel(std::chrono::milliseconds grace) = 0;

  // Stops, waits until the cgroup is empty, unmounts and removes everything.
  virtual Status stop(std::chrono::milliseconds grace) = 0;

  virtual ResourceUsage usage() const = 0;
};

class Executor {
 public:
  virtual ~Executor() = default;
  virtual Result<std::unique_ptr<Container>> start(const ContainerSpec& spec) = 0;

  // Stops `c` as Container::stop() does, but returns once every process of
  // the container but its init is dead (SIGTERM first, SIGKILL after `grace`
  // when an exec still runs). The init's exit, in which the kernel tears the
  // container's namespaces down (an RCU grace period: 10-30 ms measured on
  // a loaded host, longer than the rest of a job), and the removal of its
  // cgroup and state then happen on a thread of the executor, which prints
  // their failures on stderr; the executor's destructor waits for them. A
  // failure returned here is the container's stop() failure. By default
  // stop() itself, in the caller.
  virtual Status retire(std::unique_ptr<Container> c, std::chrono::milliseconds grace) {
    return c->stop(grace);
  }
  // Waits for the teardown of every container retired so far; an error
  // when one of them could not be torn down completely (what was left is
  // reaped by the next lockstep command, as after a killed runner).
  virtual Status settle() { return {}; }
};

// The Linux implementation. state_dir holds per-container state so that a
// later process can reap what a killed runner left behind.
std::unique_ptr<Executor> make_linux_executor(const std::filesystem::path& state_dir);

// Removes containers whose owning runner process is gone (processes, mounts,
// cgroups, directories). Called at the start of every lockstep command.
Status reap_stale(const std::filesystem::path& state_dir);

}  // namespace lockstep::executor
