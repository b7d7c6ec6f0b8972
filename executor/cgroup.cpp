// Cgroup lifecycle, shared by v1 and v2. The differences between the two
// (hierarchies, files, the kill method) live in cgroup_layout.cpp.
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
#include "executor/cgroup_layout.hpp"

namespace lockstep::executor {
namespace fs = std::filesystem;
using namespace cgroup_layout;
namespace {

using Clock = std::chrono::steady_clock;
// How long kill_all() and remove() keep trying before they report failure.
constexpr auto kKillDeadline = std::chrono::seconds(10);
constexpr auto kRemoveDeadline = std::chrono::seconds(2);

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
  if (roots.none) return Cgroup();
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

std::vector<fs::path> Cgroup::join_files() const {
  std::vector<fs::path> out;
  for (const fs::path& d : dirs()) out.push_back(d / (roots_.is_v2() ? "cgroup.procs" : "tasks"));
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
  if (roots.none) return {};
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
