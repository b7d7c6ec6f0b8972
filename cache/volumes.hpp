#pragma once
// Named volumes of `container.volumes` (`NAME:/path`), kept under
// <state>/volumes/:
//   <name>/data      what the job sees at /path
//   <name>/lock      held shared by every job using the volume (flock)
//   <name>/last-use  its mtime is the volume's last use
//
// As with docker, a named volume outlives the job and the run: the next job
// that names it sees what the last one left (a cache of downloads, a
// database directory). Unlike docker it does not live until removed by hand:
// `lockstep cache gc` removes volumes unused for longer than a maximum age
// (30 days unless told otherwise), never one a job is using.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace lockstep::cache {

// Docker's rule for volume names: [a-zA-Z0-9][a-zA-Z0-9_.-]+.
bool valid_volume_name(std::string_view name);

struct VolumeInfo {
  std::string name;
  uint64_t bytes = 0;
  std::chrono::system_clock::time_point last_use{};
};

// A volume held by a job: its data directory, and the shared lock that
// keeps `cache gc` from removing it while the job runs.
struct VolumeUse {
  std::filesystem::path data;
  UniqueFd lock;  // flock(LOCK_SH) on <name>/lock; closing releases it
};

class VolumeStore {
 public:
  explicit VolumeStore(std::filesystem::path state_dir);

  // Creates the volume when it is new (its data directory owned by
  // `owner` uid/gid when given: root of a user namespace), marks it used
  // now, and holds it until the VolumeUse is destroyed.
  Result<VolumeUse> use(const std::string& name,
                        std::optional<std::pair<uint32_t, uint32_t>> owner = std::nullopt);

  // Every volume, by name.
  Result<std::vector<VolumeInfo>> list() const;

  // Removes the volumes not used for longer than `max_age` that no job
  // holds; returns what it removed.
  Result<std::vector<VolumeInfo>> remove_unused(std::chrono::seconds max_age);

 private:
  std::filesystem::path root_;
};

}  // namespace lockstep::cache
