// The v1/v2 differences of cgroups: which hierarchies and controllers a
// container needs, which files hold limits, usage and membership, and how a
// whole cgroup is killed. Everything else (cgroup.cpp) is shared.
#include "executor/cgroup_layout.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <set>
#include <sstream>

#include "common/fd.hpp"
#include "common/fs.hpp"

namespace lockstep::executor::cgroup_layout {
namespace fs = std::filesystem;
namespace {

std::string cpu_max(const Limits& limits) {
  const auto quota = static_cast<int64_t>(std::llround(*limits.cpus * limits.cpu_period_us));
  return std::to_string(std::max<int64_t>(quota, 1000)) + " " +
         std::to_string(limits.cpu_period_us);
}

}  // namespace

// Writes `value` to a cgroup control file. O_CREAT|O_TRUNC is what a shell's
// `echo >` does: harmless on cgroupfs (the file exists, truncation is
// ignored) and it lets the fake trees of the unit tests be plain files.
Status write_control(const fs::path& file, std::string_view value) {
  UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return fail_errno("open " + file.string());
  const ssize_t n = ::write(fd.get(), value.data(), value.size());
  if (n < 0) return fail_errno("write '" + std::string(value) + "' to " + file.string());
  if (static_cast<size_t>(n) != value.size()) {
    return fail("write '" + std::string(value) + "' to " + file.string() + ": short write");
  }
  return {};
}

// Like write_control, but a missing file (a feature this kernel lacks) is fine.
Status write_optional(const fs::path& file, std::string_view value) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return {};
  return write_control(file, value);
}

// Value of "key N" in a flat-keyed file (memory.events, cpu.stat,
// memory.oom_control); 0 when the file or the key is missing.
uint64_t read_keyed(const fs::path& file, std::string_view key) {
  auto text = read_file(file);
  if (!text) return 0;
  std::istringstream in(*text);
  std::string k;
  uint64_t v = 0;
  while (in >> k >> v) {
    if (k == key) return v;
  }
  return 0;
}

// A file holding one number; 0 when missing or not a number.
uint64_t read_number(const fs::path& file) {
  auto text = read_file(file);
  if (!text) return 0;
  return std::strtoull(text->c_str(), nullptr, 10);
}

// v1 controllers a container with these limits needs.
std::vector<std::string> v1_controllers(const Limits& limits) {
  std::vector<std::string> c;
  if (limits.cpuset) c.emplace_back("cpuset");  // first: it gates attach
  for (const char* name : {"memory", "pids", "cpu", "cpuacct", "freezer"}) c.emplace_back(name);
  return c;
}

// v2 controllers to enable for a container: every one lockstep uses that the
// root offers (memory also serves usage(), even without a limit); a limit
// whose controller is missing is an error.
Result<std::vector<std::string>> v2_controllers(const fs::path& root, const Limits& limits) {
  LS_TRY_ASSIGN(const std::string offered, read_file(root / "cgroup.controllers"));
  std::set<std::string> available;
  std::istringstream in(offered);
  for (std::string c; in >> c;) available.insert(c);
  const std::pair<const char*, bool> wanted[] = {{"memory", limits.memory_bytes.has_value()},
                                                 {"pids", limits.pids.has_value()},
                                                 {"cpu", limits.cpus.has_value()},
                                                 {"cpuset", limits.cpuset.has_value()}};
  std::vector<std::string> out;
  for (const auto& [c, needed] : wanted) {
    if (available.count(c)) {
      if (std::string_view(c) != "cpuset" || needed) out.emplace_back(c);
    } else if (needed) {
      return fail("cgroup v2 controller " + std::string(c) + " is not available in " +
                      (root / "cgroup.controllers").string(),
                  ErrorKind::kUnsupported);
    }
  }
  return out;
}

Status apply_limits_v2(const fs::path& dir, const Limits& limits) {
  if (limits.memory_bytes) {
    LS_TRY(write_control(dir / "memory.max", std::to_string(*limits.memory_bytes)));
  }
  LS_TRY(write_optional(dir / "memory.swap.max", "0"));  // swap is always off
  if (limits.pids) LS_TRY(write_control(dir / "pids.max", std::to_string(*limits.pids)));
  if (limits.cpus) LS_TRY(write_control(dir / "cpu.max", cpu_max(limits)));
  if (limits.cpuset) LS_TRY(write_control(dir / "cpuset.cpus", *limits.cpuset));
  return {};
}

Status apply_limits_v1(const std::map<std::string, fs::path>& dirs, const Limits& limits) {
  if (limits.memory_bytes) {
    const fs::path& m = dirs.at("memory");
    const std::string bytes = std::to_string(*limits.memory_bytes);
    // memsw must stay >= the memory limit: set memory first. memsw exists only
    // with swap accounting; without it there is nothing to turn off.
    LS_TRY(write_control(m / "memory.limit_in_bytes", bytes));
    LS_TRY(write_optional(m / "memory.memsw.limit_in_bytes", bytes));
  }
  if (limits.pids)
    LS_TRY(write_control(dirs.at("pids") / "pids.max", std::to_string(*limits.pids)));
  if (limits.cpus) {
    const fs::path& c = dirs.at("cpu");
    std::istringstream in(cpu_max(limits));
    std::string quota, period;
    in >> quota >> period;
    LS_TRY(write_control(c / "cpu.cfs_period_us", period));
    LS_TRY(write_control(c / "cpu.cfs_quota_us", quota));
  }
  if (limits.cpuset) LS_TRY(write_control(dirs.at("cpuset") / "cpuset.cpus", *limits.cpuset));
  return {};
}

// A v1 cpuset cgroup takes no task until cpus and mems are set; a new one
// starts empty, so the lockstep parent (and each container without its own
// cpuset) copies the parent's.
Status inherit_cpuset(const fs::path& dir) {
  for (const char* file : {"cpuset.cpus", "cpuset.mems"}) {
    auto mine = read_file(dir / file);
    if (mine && mine->find_first_not_of(" \n") != std::string::npos) continue;
    LS_TRY_ASSIGN(std::string parent, read_file(dir.parent_path() / file));
    while (!parent.empty() && parent.back() == '\n') parent.pop_back();
    LS_TRY(write_control(dir / file, parent));
  }
  return {};
}

ResourceUsage usage_v2(const fs::path& dir) {
  ResourceUsage u;
  u.peak_memory_bytes = read_number(dir / "memory.peak");  // kernel >= 5.19
  if (u.peak_memory_bytes == 0) u.peak_memory_bytes = read_number(dir / "memory.current");
  u.oom_killed = read_keyed(dir / "memory.events", "oom_kill") > 0;
  u.cpu_time = std::chrono::microseconds(read_keyed(dir / "cpu.stat", "usage_usec"));
  return u;
}

ResourceUsage usage_v1(const std::map<std::string, fs::path>& dirs) {
  ResourceUsage u;
  const fs::path& m = dirs.at("memory");
  u.peak_memory_bytes = read_number(m / "memory.max_usage_in_bytes");
  // oom_kill (kernel >= 4.13) counts kills; under_oom only says the group is
  // at its limit right now.
  u.oom_killed = read_keyed(m / "memory.oom_control", "oom_kill") > 0 ||
                 read_keyed(m / "memory.oom_control", "under_oom") > 0;
  u.cpu_time = std::chrono::nanoseconds(read_number(dirs.at("cpuacct") / "cpuacct.usage"));
  return u;
}

// The directory whose cgroup.procs lists the members.
const fs::path& procs_dir(const std::map<std::string, fs::path>& dirs, bool v2) {
  if (v2 || !dirs.count("freezer")) return dirs.begin()->second;
  return dirs.at("freezer");
}

std::vector<pid_t> read_pids(const fs::path& dir) {
  std::vector<pid_t> out;
  auto text = read_file(dir / "cgroup.procs");
  if (!text) return out;  // gone: nothing left in it
  std::istringstream in(*text);
  for (pid_t p; in >> p;) out.push_back(p);
  return out;
}

void kill_pids(const std::vector<pid_t>& pids) {
  for (pid_t p : pids) ::kill(p, SIGKILL);
}

// v1: a frozen task cannot fork, so freeze-kill-thaw converges even against a
// fork bomb. Tasks still FREEZING when the kill goes out are caught by the
// next round; a frozen task dies once thawed.
Status kill_round_v1(const fs::path& freezer) {
  LS_TRY(write_control(freezer / "freezer.state", "FROZEN"));
  kill_pids(read_pids(freezer));
  return write_control(freezer / "freezer.state", "THAWED");
}

// v2: cgroup.kill (kernel >= 5.14) kills the whole subtree atomically; older
// kernels get the plain kill loop.
Status kill_round_v2(const fs::path& dir) {
  if (::access((dir / "cgroup.kill").c_str(), F_OK) == 0) {
    return write_control(dir / "cgroup.kill", "1");
  }
  kill_pids(read_pids(dir));
  return {};
}

}  // namespace lockstep::executor::cgroup_layout
