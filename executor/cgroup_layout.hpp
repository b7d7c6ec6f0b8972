#pragma once
// Internal to the executor: everything that differs between cgroup v1 and v2
// (file names, hierarchies, the kill method), behind one small interface that
// cgroup.cpp uses. `dirs` maps a v1 controller ("memory", "pids", "cpu",
// "cpuacct", "freezer", "cpuset") to the cgroup's directory in that
// hierarchy; on v2 it holds the single entry "unified".
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "executor/spec.hpp"

namespace lockstep::executor::cgroup_layout {

using Dirs = std::map<std::string, std::filesystem::path>;

// Control-file access. write_control creates plain files in fake trees;
// write_optional skips a file this kernel does not have; the readers return 0
// for a missing file or key.
Status write_control(const std::filesystem::path& file, std::string_view value);
Status write_optional(const std::filesystem::path& file, std::string_view value);
uint64_t read_keyed(const std::filesystem::path& file, std::string_view key);
uint64_t read_number(const std::filesystem::path& file);

// v1 controllers a container with these limits needs (cpuset first: it is
// the one that can refuse a task).
std::vector<std::string> v1_controllers(const Limits& limits);
// v2 controllers to enable: those lockstep uses that `root` offers; a limit
// whose controller is missing is an error.
Result<std::vector<std::string>> v2_controllers(const std::filesystem::path& root,
                                                const Limits& limits);

Status apply_limits_v1(const Dirs& dirs, const Limits& limits);
Status apply_limits_v2(const std::filesystem::path& dir, const Limits& limits);
// v1 cpuset: copies cpus/mems from the parent where empty.
Status inherit_cpuset(const std::filesystem::path& dir);

ResourceUsage usage_v1(const Dirs& dirs);
ResourceUsage usage_v2(const std::filesystem::path& dir);

// The directory whose cgroup.procs lists the members.
const std::filesystem::path& procs_dir(const Dirs& dirs, bool v2);
std::vector<pid_t> read_pids(const std::filesystem::path& dir);
void kill_pids(const std::vector<pid_t>& pids);
// One kill round: v1 freeze-kill-thaw through the freezer directory; v2
// cgroup.kill (or a plain kill loop on kernels before 5.14).
Status kill_round_v1(const std::filesystem::path& freezer);
Status kill_round_v2(const std::filesystem::path& dir);

}  // namespace lockstep::executor::cgroup_layout
