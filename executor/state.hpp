#pragma once
// Per-container state on disk, so that a later lockstep process can reap what
// a killed runner left: <state_dir>/containers/<id>/state.json next to the
// container's upper/, work/ and rootfs/ directories.
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "common/error.hpp"

namespace lockstep::executor::detail {

struct ContainerState {
  std::string id;
  pid_t owner_pid = 0;
  uint64_t owner_start = 0;  // start time of the owner, in clock ticks since boot
  pid_t init_pid = 0;        // 0 until the init reported ready
  uint64_t init_start = 0;
};

std::filesystem::path containers_dir(const std::filesystem::path& state_dir);

// Writes the file through a temp file and rename, without fsync: after a
// host crash there is nothing alive to reap, only directories.
Status write_state(const std::filesystem::path& container_dir, const ContainerState& s);
Result<ContainerState> read_state(const std::filesystem::path& container_dir);

// Field 22 of /proc/<pid>/stat; nullopt when the process does not exist.
std::optional<uint64_t> process_start_time(pid_t pid);

// True when `pid` exists and started at `start` (not a recycled pid).
bool process_alive(pid_t pid, uint64_t start);

}  // namespace lockstep::executor::detail
