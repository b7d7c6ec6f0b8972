// Cgroup lifecycle. The v1/v2 differences are confined to the "layout"
// section below (which hierarchies, which files); everything else is shared.
#include "executor/cgroup.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <set>
#include <sstream>
#include <thread>

#include "common/fs.hpp"

namespace lockstep::executor {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;
// How long kill_all() and remove() keep trying before they report failure.
constexpr auto kKillDeadline = std::chrono::seconds(10);
constexpr auto kRemoveDeadline = std::chrono::seconds(2);

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

Status make_dir(const fs::path& dir, bool exist_ok) {
  if (::mkdir(dir.c_str(), 0755) == 0) return {};
  if (errno == EEXIST && exist_ok) return {};
  return fail_errno("create cgroup " + dir.string());
}

// Sleeps a little longer each round: the first checks come quickly (most
// cgroups empty within a millisecond of SIGKILL), later ones do not spin.
class Backoff {
 public:
  void wait() {
    std::this_thread::sleep_for(delay_);
    delay_ = std::min(delay_ * 2, std::chrono::microseconds(20000));
  }

 private:
  std::chrono::microseconds delay_{50};
};

// ---- layout: the only place that knows v1 from v2 -------------------------

// v1 controllers a container with these limits needs.
std::vector<std::string> v1_controllers(const Limits& limits) {
  std::vector<std::string> c = {"memory", "pids", "cpu", "cpuacct", "freezer"};
  if (limits.cpuset) c.insert(c.begin(), "cpuset");  // cpuset first: it gates attach
  return c;
}

std::string cpu_max(const Limits& limits) {
  const auto quota = static_cast<int64_t>(std::llround(*limits.cpus * limits.cpu_period_us));
  return std::to_string(std::max<int64_t>(quota, 1000)) + " " +
         std::to_string(limits.cpu_period_us);
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

// ---- end of layout ---------------------------------------------------------

Status validate_id(const std::string& id) {
  if (id.empty() || id == "." || id == ".." || id.find('/') != std::string::npos ||
      id.find('\n') != std::string::npos) {
    return fail("invalid cgroup name '" + id + "'", ErrorKind::kUsage);
  }
  return {};
}

}  // namespace

Result<Cgroup> Cgroup::create(const std::string& id, const Limits& limits) {
  LS_TRY_ASSIGN(CgroupRoots roots, CgroupRoots::detect());
  return create(roots, id, limits);
}

Result<Cgroup> Cgroup::create(const CgroupRoots& roots, const std::string& id,
                              const Limits& limits) {
  LS_TRY(validate_id(id));
  Cgroup cg;
  cg.roots_ = roots;
  cg.id_ = id;
  cg.memory_limit_ = limits.memory_bytes.value_or(0);
  const std::string what = "create cgroup " + id;
  if (roots.is_v2()) {
    const fs::path parent = roots.unified / kParent;
    LS_TRY(make_dir(parent, true).map_error([&](Error e) { return std::move(e).context(what); }));
    LS_TRY_ASSIGN(const std::vector<std::string> controllers,
                  v2_controllers(roots.unified, limits));
    for (const fs::path& p : {roots.unified, parent}) {
      for (const std::string& c : controllers) {
        auto st = write_control(p / "cgroup.subtree_control", "+" + c);
        if (!st) return fail(std::move(st.error()).context(what));
      }
    }
    const fs::path dir = parent / id;
    LS_TRY(make_dir(dir, false));
    cg.dirs_["unified"] = dir;
    cg.v2_dir_.reset(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!cg.v2_dir_) return fail_errno("open cgroup " + dir.string());
    auto st = apply_limits_v2(dir, limits);
    if (!st) return fail(std::move(st.error()).context(what));
    return cg;
  }
  for (const std::string& c : v1_controllers(limits)) {
    auto mount = roots.v1.find(c);
    if (mount == roots.v1.end()) {
      return fail(what + ": cgroup v1 controller " + c + " is not mounted",
                  ErrorKind::kUnsupported);
    }
    const fs::path parent = mount->second / kParent;
    const fs::path dir = parent / id;
    const bool comounted = std::any_of(cg.dirs_.begin(), cg.dirs_.end(),
                                       [&](const auto& kv) { return kv.second == dir; });
    if (!comounted) {
      auto st = make_dir(parent, true);
      if (st && c == "cpuset") st = inherit_cpuset(parent);
      if (!st) return fail(std::move(st.error()).context(what));
      LS_TRY(make_dir(dir, false));
    }
    cg.dirs_[c] = dir;
    if (c == "cpuset" && !comounted) {
      auto st = inherit_cpuset(dir);
      if (!st) return fail(std::move(st.error()).context(what));
    }
  }
  auto st = apply_limits_v1(cg.dirs_, limits);
  if (!st) return fail(std::move(st.error()).context(what));
  return cg;
}

Cgroup::Cgroup(Cgroup&& o) noexcept
    : roots_(std::move(o.roots_)),
      id_(std::move(o.id_)),
      memory_limit_(o.memory_limit_),
      dirs_(std::move(o.dirs_)),
      v2_dir_(std::move(o.v2_dir_)) {
  o.dirs_.clear();
}

Cgroup& Cgroup::operator=(Cgroup&& o) noexcept {
  if (this != &o) {
    if (valid()) {
      (void)kill_all();
      (void)remove();
    }
    roots_ = std::move(o.roots_);
    id_ = std::move(o.id_);
    memory_limit_ = o.memory_limit_;
    dirs_ = std::move(o.dirs_);
    o.dirs_.clear();
    v2_dir_ = std::move(o.v2_dir_);
  }
  return *this;
}

Cgroup::~Cgroup() {
  if (!valid()) return;
  (void)kill_all();
  (void)remove();
}

std::vector<fs::path> Cgroup::dirs() const {
  std::vector<fs::path> out;
  for (const auto& [c, d] : dirs_) {
    if (std::find(out.begin(), out.end(), d) == out.end()) out.push_back(d);
  }
  return out;
}

Status Cgroup::attach(pid_t pid) {
  if (!valid()) return fail("attach to a removed cgroup");
  const std::string p = std::to_string(pid);
  // cpuset goes first on v1: it is the one that can refuse a task.
  std::vector<fs::path> order;
  if (!roots_.is_v2() && dirs_.count("cpuset")) order.push_back(dirs_.at("cpuset"));
  for (const fs::path& d : dirs()) {
    if (std::find(order.begin(), order.end(), d) == order.end()) order.push_back(d);
  }
  for (const fs::path& d : order) {
    auto st = write_control(d / "cgroup.procs", p);
    if (!st) return fail(std::move(st.error()).context("attach pid " + p + " to cgroup " + id_));
  }
  return {};
}

std::vector<pid_t> Cgroup::pids() const {
  if (!valid()) return {};
  return read_pids(procs_dir(dirs_, roots_.is_v2()));
}

Status Cgroup::kill_all() {
  if (!valid()) return {};
  const bool v2 = roots_.is_v2();
  const fs::path& members = procs_dir(dirs_, v2);
  const auto deadline = Clock::now() + kKillDeadline;
  Backoff backoff;
  std::set<pid_t> signalled;
  for (int round = 0;;) {
    const std::vector<pid_t> pids = read_pids(members);
    if (pids.empty()) return {};
    if (Clock::now() > deadline) {
      return fail("kill processes of cgroup " + id_ + ": still not empty after 10s");
    }
    // Killed tasks take a moment to leave cgroup.procs; only members that
    // were not signalled yet (forked since) need another round.
    const bool fresh =
        std::any_of(pids.begin(), pids.end(), [&](pid_t p) { return !signalled.count(p); });
    if (fresh) {
      Status st;
      if (v2) {
        st = kill_round_v2(members);
      } else if (round == 0) {
        kill_pids(pids);  // the common case: nothing forks while we kill
      } else {
        st = kill_round_v1(dirs_.at("freezer"));
      }
      if (!st) return fail(std::move(st.error()).context("kill processes of cgroup " + id_));
      signalled.insert(pids.begin(), pids.end());
      ++round;
    }
    backoff.wait();
  }
}

ResourceUsage Cgroup::usage() const {
  if (!valid()) return {};
  return roots_.is_v2() ? usage_v2(dirs_.begin()->second) : usage_v1(dirs_);
}

Status Cgroup::remove() {
  v2_dir_.reset();
  Status result;
  for (const fs::path& d : dirs()) {
    if (roots_.fake_files) {
      std::error_code ec;
      for (const auto& entry : fs::directory_iterator(d, ec)) {
        if (entry.is_regular_file(ec)) fs::remove(entry.path(), ec);
      }
    }
    const auto deadline = Clock::now() + kRemoveDeadline;
    Backoff backoff;
    while (::rmdir(d.c_str()) != 0) {
      const int err = errno;
      if (err == ENOENT) break;
      if (err != EBUSY || Clock::now() > deadline) {
        if (result) result = fail(Error::from_errno("remove cgroup " + d.string(), err));
        break;
      }
      backoff.wait();
    }
  }
  if (result) dirs_.clear();
  return result;
}

Status Cgroup::reap_stale(const std::function<bool(const std::string&)>& is_stale) {
  LS_TRY_ASSIGN(CgroupRoots roots, CgroupRoots::detect());
  return reap_stale(roots, is_stale);
}

Status Cgroup::reap_stale(const CgroupRoots& roots,
                          const std::function<bool(const std::string&)>& is_stale) {
  // controller -> hierarchy root, over every controller lockstep ever uses.
  std::map<std::string, fs::path> hierarchies;
  if (roots.is_v2()) {
    hierarchies["unified"] = roots.unified;
  } else {
    hierarchies = roots.v1;
  }
  std::set<std::string> ids;
  for (const auto& [c, root] : hierarchies) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(root / kParent, ec)) {
      if (entry.is_directory(ec)) ids.insert(entry.path().filename().string());
    }
  }
  Status result;
  for (const std::string& id : ids) {
    if (!is_stale(id)) continue;
    Cgroup cg;
    cg.roots_ = roots;
    cg.id_ = id;
    for (const auto& [c, root] : hierarchies) {
      std::error_code ec;
      if (fs::is_directory(root / kParent / id, ec)) cg.dirs_[c] = root / kParent / id;
    }
    if (!cg.valid()) continue;
    // v1 kill needs the freezer; without it (a half-created leftover) the
    // members are killed directly.
    Status st = (roots.is_v2() || cg.dirs_.count("freezer")) ? cg.kill_all() : Status{};
    if (!roots.is_v2() && !cg.dirs_.count("freezer")) {
      for (const fs::path& d : cg.dirs()) kill_pids(read_pids(d));
    }
    if (st) st = cg.remove();
    if (!st && result) result = fail(std::move(st.error()).context("reap stale cgroup " + id));
    cg.dirs_.clear();
  }
  return result;
}

}  // namespace lockstep::executor
