#pragma once
// Per-container state on disk, so that a later lockstep process can reap what
// a killed runner left. Layout under <state_dir>/containers/:
//   <id>.json   the state file (created first, removed last)
//   <id>/       upper/ and work/ of a container whose upper dir is on disk
//   .mnt/       the overlay mount point every container uses, each inside
//               its own mount namespace (the host never sees a mount on it)
// Plain files and one shared directory, because creating and removing
// directories is what costs on a busy ext4 disk (~5 ms per rmdir measured).
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
inline constexpr const char* kMountPointName = ".mnt";
inline constexpr const char* kStateSuffix = ".json";

// exclusive: create the file, failing with EEXIST when it exists (a live or
// stale container of that id). Otherwise rewrite the existing file in
// place: a temp file and rename would create and delete an inode per
// container, and on ext4 without a journal every inode created scans past
// the ones deleted in the last minutes (perf: inode allocation took a third
// of the runner's CPU in a 64-job run). A reader that sees it half-written
// takes it for one being created (reap_stale() judges such a file by its
// age). No fsync: after a host crash nothing is alive to reap.
Status write_state(const std::filesystem::path& file, const ContainerState& s, bool exclusive);
Result<ContainerState> read_state(const std::filesystem::path& file);

// Field 22 of /proc/<pid>/stat; nullopt when the process does not exist.
std::optional<uint64_t> process_start_time(pid_t pid);

// True when `pid` exists and started at `start` (not a recycled pid).
bool process_alive(pid_t pid, uint64_t start);

}  // namespace lockstep::executor::detail
