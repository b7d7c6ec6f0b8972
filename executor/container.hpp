#pragma once
// LinuxContainer: one live container owned by this process: its init (pid 1,
// held by a pidfd), its cgroup, its state directory and the pipes to talk to
// its init. Created by LinuxExecutor::start() (container_start.cpp); exec
// and output capture in container_exec.cpp; teardown in container_stop.cpp.
#include <sys/types.h>

#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/fd.hpp"
#include "executor/cgroup.hpp"
#include "executor/confinement.hpp"
#include "executor/executor.hpp"
#include "executor/init.hpp"
#include "executor/spawn.hpp"
#include "executor/state.hpp"

namespace lockstep::executor::detail {

class LinuxContainer final : public Container {
 public:
  static Result<std::unique_ptr<LinuxContainer>> start(const std::filesystem::path& state_dir,
                                                       const ContainerSpec& spec);
  ~LinuxContainer() override;

  const std::string& id() const override { return spec_.id; }
  Result<ProcessResult> exec(const ProcessSpec& spec, const LineSink& sink) override;
  void cancel(std::chrono::milliseconds grace) override;
  Status stop(std::chrono::milliseconds grace) override;
  ResourceUsage usage() const override;

  // The first half of Executor::retire(): every process but the init is
  // killed and reaped (cancel() when an exec runs). stop() does the rest.
  void kill_processes(std::chrono::milliseconds grace);

  pid_t init_pid() const { return init_pid_; }
  // Its network namespace, for a container that joins it (network
  // container:ID). Without root, the runner may not open /proc/<init>/ns/net
  // of the non-dumpable init: it uses the descriptor the init sent.
  Result<UniqueFd> open_network_namespace() const;
  // An O_PATH descriptor of the container's "/" (/proc/<init>/root as root;
  // rootless, a copy of the one its init sent).
  Result<UniqueFd> open_root() const;

  // Where the time of start() went (for bench/executor).
  struct StartTimings {
    std::chrono::nanoseconds state{0};        // state dir and file
    std::chrono::nanoseconds confinement{0};  // seccomp compile, capability set
    std::chrono::nanoseconds cgroup{0};       // create + limits
    std::chrono::nanoseconds namespaces{0};   // clone3 until the init starts mounting
    std::chrono::nanoseconds mounts{0};       // overlay, /dev, /proc, /sys, pivot_root
    std::chrono::nanoseconds ready{0};        // from mounts done to start() returning
  };
  const StartTimings& start_timings() const { return timings_; }

  // A process started in the container with the given stdio; the caller
  // waits for it through `pidfd` (it is the caller's child).
  struct Spawned {
    pid_t pid = 0;
    UniqueFd pidfd;
  };
  Result<Spawned> spawn(const ProcessSpec& spec, int stdin_fd, int stdout_fd, int stderr_fd);

  // Sends SIGKILL to every process but init and waits until init has reaped
  // its children. Safe from any thread.
  void kill_all_processes();

  // Bookkeeping for cancel(): every running exec registers an eventfd.
  struct ExecTicket {
    UniqueFd wake;
    uint64_t cancel_generation = 0;
  };
  Result<std::shared_ptr<ExecTicket>> begin_exec();
  void end_exec(const std::shared_ptr<ExecTicket>& t);
  bool cancelled_since(const ExecTicket& t) const;

 private:
  LinuxContainer() = default;
  // The init: cloned by this thread (as root), or through an intermediate
  // that joins the process's user namespace first (rootless).
  Status start_init(InitPlan& plan, uint64_t flags, UniqueFd netns,
                    std::pair<UniqueFd, UniqueFd> ctl, std::pair<UniqueFd, UniqueFd> report);
  Status start_rootless(InitPlan& plan, uint64_t flags, int userns_fd, UniqueFd netns,
                        std::pair<UniqueFd, UniqueFd> ctl, std::pair<UniqueFd, UniqueFd> report);
  // Waits for the init's report and registers the container.
  static Result<std::unique_ptr<LinuxContainer>> finish_start(std::unique_ptr<LinuxContainer> c,
                                                              const InitPlan& plan,
                                                              const std::filesystem::path& file,
                                                              detail::ContainerState st,
                                                              std::chrono::nanoseconds t_clone);
  Status send_ctl(char cmd);
  Status teardown();

  ContainerSpec spec_;
  StartTimings timings_;
  std::filesystem::path state_file_;  // <containers>/<id>.json
  std::filesystem::path dir_;         // <containers>/<id>/ (upper dir on disk only)
  Cgroup cgroup_;
  // Cgroup::join_files(), open for children to join with "0".
  std::vector<UniqueFd> cgroup_procs_;
  std::vector<int> cgroup_procs_raw_;
  std::shared_ptr<const Confinement> confinement_;
  pid_t init_pid_ = 0;
  UniqueFd init_pidfd_;
  UniqueFd ctl_;     // write end: commands to init; closing it stops the container
  UniqueFd report_;  // read end: acks from init
  // Rootless: the container's "/" (O_PATH), sent by its init; the runner
  // may not open /proc/<init>/root of a non-dumpable process it does not
  // have CAP_SYS_PTRACE over.
  UniqueFd root_;
  std::vector<UniqueFd> ns_;  // and its namespaces (init.hpp's kRootlessNs)

  std::mutex ctl_mu_;  // one command + ack at a time
  mutable std::mutex mu_;
  std::condition_variable idle_cv_;
  std::set<std::shared_ptr<ExecTicket>> execs_;
  uint64_t cancel_generation_ = 0;
  bool stopped_ = false;
};

// The second half of Executor::retire(): stop() of retired containers on a
// thread of its own, started on first use. The destructor waits for every
// one handed over.
class BackgroundStops {
 public:
  BackgroundStops() = default;
  ~BackgroundStops();
  BackgroundStops(const BackgroundStops&) = delete;
  BackgroundStops& operator=(const BackgroundStops&) = delete;
  void add(std::unique_ptr<LinuxContainer> c);
  // Waits until every container added so far is torn down; how many could
  // not be (each was warned about on stderr as it happened).
  size_t drain();

 private:
  void loop();
  size_t busy_ = 0;      // containers being torn down now
  size_t failures_ = 0;  // teardowns that failed, since the last drain()
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<LinuxContainer>> queue_;
  bool done_ = false;
  std::thread thread_;
};

// Live containers of this process by id, for NetworkMode::kContainer.
// Returns an fd of the container's network namespace.
Result<UniqueFd> open_container_netns(const std::string& id);

// How a timeout is named in a reason: whole seconds as "10s", else "300ms".
std::string describe_duration(std::chrono::milliseconds d);

}  // namespace lockstep::executor::detail
