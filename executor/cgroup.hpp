#pragma once
// Cgroup: the one owner of a container's control group(s). It creates
// lockstep/<id> in every hierarchy the limits need, applies the limits, takes
// processes in, kills every process in it (daemons that double-forked or
// called setsid included) and removes it.
//
// Works on cgroup v2 (one unified hierarchy) and v1 (one directory per
// controller hierarchy: memory, pids, cpu, cpuacct, freezer, cpuset). The v1/v2
// differences live in cgroup_layout.cpp only.
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "executor/spec.hpp"

namespace lockstep::executor {

// Where the cgroup hierarchies are mounted. detect() reads the running
// system; tests build one over a fake tree of plain files in a temp dir.
struct CgroupRoots {
  // Non-empty: cgroup v2 is used, rooted here (a cgroup2 mount whose
  // cgroup.controllers offers memory and pids). Empty: v1 is used.
  std::filesystem::path unified;
  // v1 only: controller name ("memory", "pids", "cpu", "cpuacct", "cpuset",
  // "freezer") -> mount point of its hierarchy. Co-mounted controllers
  // ("cpu,cpuacct") map to the same path.
  std::map<std::string, std::filesystem::path> v1;
  // The tree is plain files (tests): remove() deletes the files in a cgroup
  // directory before rmdir, which on a real cgroupfs is neither needed nor
  // allowed.
  bool fake_files = false;
  // No cgroup at all (rootless without a delegated subtree): containers get
  // none, their limits are not enforced; none_reason says why, one line.
  bool none = false;
  std::string none_reason;

  bool is_v2() const { return !unified.empty(); }

  // Reads /proc/self/mountinfo once per process and caches the answer.
  // Without root: the delegated subtree, or none (executor/rootless.hpp).
  static Result<CgroupRoots> detect();
  // Picks the roots from mountinfo text: a cgroup2 mount wins if its
  // cgroup.controllers lists memory and pids (pure v2); otherwise the v1
  // hierarchies (hybrid hosts like the development machines, whose cgroup2
  // mount at /sys/fs/cgroup/unified holds no controllers).
  static Result<CgroupRoots> from_mountinfo(std::string_view mountinfo);
};

class Cgroup {
 public:
  // The parent directory lockstep creates under each hierarchy root.
  static constexpr std::string_view kParent = "lockstep";

  // Creates lockstep/<id> in every needed hierarchy and applies `limits`.
  // Fails if it exists already (a live container of that id, or a leftover
  // that reap_stale() should have removed). With roots.none: an empty
  // (invalid) Cgroup, nothing created.
  static Result<Cgroup> create(const std::string& id, const Limits& limits);
  static Result<Cgroup> create(const CgroupRoots& roots, const std::string& id,
                               const Limits& limits);

  Cgroup() = default;
  Cgroup(Cgroup&& o) noexcept;
  Cgroup& operator=(Cgroup&& o) noexcept;
  Cgroup(const Cgroup&) = delete;
  Cgroup& operator=(const Cgroup&) = delete;
  // Best effort: kill_all() then remove(); errors are dropped.
  ~Cgroup();

  const std::string& id() const { return id_; }
  bool valid() const { return !dirs_.empty(); }

  // Moves `pid` (a whole process) into the cgroup in every hierarchy.
  Status attach(pid_t pid);

  // SIGKILLs every process in the cgroup and returns once it is empty (or
  // fails after ~10 s). v2: cgroup.kill. v1: freeze, SIGKILL every pid in
  // cgroup.procs, thaw, repeat until empty (a frozen task dies only when
  // thawed; freezing stops a fork bomb from outrunning the loop). Processes
  // that are children of the caller stay zombies until the caller reaps
  // them; they do not count as members.
  Status kill_all();

  // Peak memory, CPU time, whether the OOM killer fired in this cgroup.
  // Missing files read as zero (an older kernel), never as an error.
  ResourceUsage usage() const;

  // Members (thread-group ids) as listed by cgroup.procs.
  std::vector<pid_t> pids() const;

  // rmdir in every hierarchy, retrying briefly on EBUSY (the kernel frees a
  // cgroup asynchronously after its last task exits). Idempotent.
  Status remove();

  // O_DIRECTORY fd of the v2 cgroup, for clone3(CLONE_INTO_CGROUP); -1 on v1.
  int v2_dir_fd() const { return v2_dir_.get(); }

  // The cgroup's directories (one on v2; one per hierarchy on v1).
  std::vector<std::filesystem::path> dirs() const;

  // The files a single-threaded process writes "0" to, to move itself in:
  // v2 cgroup.procs; v1 `tasks`. Moving the caller's own thread takes no
  // global lock, where a whole process (cgroup.procs) takes the write side
  // of the kernel's threadgroup rwsem, an RCU grace period: 10-16 ms per
  // move measured on a loaded 2-core VM, twice per job (init, exec). For a
  // process of one thread both move the same. (v2 allows thread moves only
  // within threaded subtrees.)
  std::vector<std::filesystem::path> join_files() const;

  // Kills and removes every lockstep/<id> for which is_stale(id) holds.
  static Status reap_stale(const std::function<bool(const std::string& id)>& is_stale);
  static Status reap_stale(const CgroupRoots& roots,
                           const std::function<bool(const std::string& id)>& is_stale);

 private:
  CgroupRoots roots_;
  std::string id_;
  uint64_t memory_limit_ = 0;
  // controller -> directory of this cgroup in that controller's hierarchy
  // (v2: "unified" maps to the one directory).
  std::map<std::string, std::filesystem::path> dirs_;
  UniqueFd v2_dir_;
};

// "256 MiB", "1.5 GiB", "512 KiB", "100 B": binary units, at most one decimal,
// for messages like "killed: out of memory (limit 256 MiB)".
std::string format_bytes(uint64_t bytes);

}  // namespace lockstep::executor
