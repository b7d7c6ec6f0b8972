// Tearing a container down, and reaping what a dead runner left behind.
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <set>
#include <utility>

#include "common/fs.hpp"
#include "common/userns.hpp"
#include "executor/child_util.hpp"
#include "executor/container.hpp"
#include "executor/network.hpp"
#include "executor/state.hpp"

namespace lockstep::executor {
namespace detail {
namespace fs = std::filesystem;

void unregister_container(const std::string& id, const LinuxContainer* c);

LinuxContainer::~LinuxContainer() {
  (void)stop(std::chrono::milliseconds(0));
}

Status LinuxContainer::stop(std::chrono::milliseconds grace) {
  bool busy;
  {
    std::lock_guard lock(mu_);
    if (stopped_ && !ctl_ && !init_pidfd_ && dir_.empty() && state_file_.empty()) return {};
    busy = !execs_.empty();
  }
  if (busy) cancel(grace);
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
  }
  return teardown();
}

void LinuxContainer::kill_processes(std::chrono::milliseconds grace) {
  bool busy;
  {
    std::lock_guard lock(mu_);
    busy = !execs_.empty();
  }
  if (busy)
    cancel(grace);  // ends with kill_all_processes()
  else
    kill_all_processes();
}

BackgroundStops::~BackgroundStops() {
  {
    std::lock_guard lock(mu_);
    done_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void BackgroundStops::add(std::unique_ptr<LinuxContainer> c) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(c));
    if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
  }
  cv_.notify_all();
}

void BackgroundStops::loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return done_ || !queue_.empty(); });
    if (queue_.empty()) return;  // done_ and nothing left
    std::unique_ptr<LinuxContainer> c = std::move(queue_.front());
    queue_.erase(queue_.begin());
    ++busy_;
    lock.unlock();
    bool failed = false;
    if (auto s = c->stop(std::chrono::milliseconds(0)); !s) {
      std::fprintf(stderr, "lockstep: warning: %s\n", s.error().message().c_str());
      failed = true;
    }
    c.reset();
    lock.lock();
    --busy_;
    if (failed) ++failures_;
    cv_.notify_all();
  }
}

size_t BackgroundStops::drain() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return queue_.empty() && busy_ == 0; });
  return std::exchange(failures_, 0);
}

// Order matters: the init takes every process of its pid namespace with it
// (and with them the mount namespace holding the overlay); only then can the
// cgroup be removed and the upper dir deleted.
Status LinuxContainer::teardown() {
  unregister_container(spec_.id, this);
  Status result;
  auto keep = [&](Status s) {
    if (!s && result) result = std::move(s);
  };
  root_.reset();  // it pins the container's mounts
  ns_.clear();
  {
    std::lock_guard lock(ctl_mu_);
    ctl_.reset();  // EOF: init SIGKILLs everything and exits
  }
  if (init_pidfd_) {
    siginfo_t si;
    std::memset(&si, 0, sizeof si);
    while (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(init_pidfd_.get()), &si,
                    WEXITED) != 0) {
      if (errno == EINTR) continue;
      if (errno != ECHILD) keep(fail_errno("wait for the init of container " + spec_.id));
      break;
    }
    init_pidfd_.reset();
  }
  {
    std::lock_guard lock(ctl_mu_);
    report_.reset();
  }
  if (cgroup_.valid()) {
    keep(cgroup_.kill_all());
    keep(cgroup_.remove());
  }
  if (!dir_.empty()) {
    keep(remove_tree(dir_));
    dir_.clear();
  }
  if (!state_file_.empty()) {  // last: until now a reaper could find the rest
    if (::unlink(state_file_.c_str()) != 0 && errno != ENOENT)
      keep(fail_errno("remove " + state_file_.string()));
    state_file_.clear();
  }
  if (!result) return fail(std::move(result.error()).context("stop container " + spec_.id));
  return {};
}

namespace {

// SIGKILLs a process that is not our child and waits until it is gone.
void kill_and_wait(pid_t pid, uint64_t start) {
  if (pid <= 0) return;
  UniqueFd fd(pidfd_open(pid));
  if (!fd || !process_alive(pid, start)) return;  // checked after open: no pid reuse race
  pidfd_send_signal(fd.get(), SIGKILL);
  struct pollfd p = {fd.get(), POLLIN, 0};
  (void)::poll(&p, 1, 10000);
}

bool older_than(const fs::path& p, int seconds) {
  struct stat sb;
  if (::lstat(p.c_str(), &sb) != 0) return false;
  return ::time(nullptr) - sb.st_mtime > seconds;
}

}  // namespace
}  // namespace detail

Status reap_stale(const std::filesystem::path& state_dir) {
  namespace fs = std::filesystem;
  using namespace detail;
  fs::path parent = containers_dir(state_dir);
  DIR* d = ::opendir(parent.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return {};
    return fail_errno("open " + parent.string());
  }
  std::vector<ContainerState> stale;
  std::vector<fs::path> orphan_dirs;  // an upper dir whose state file is gone
  std::set<std::string> names;
  while (struct dirent* e = ::readdir(d)) names.insert(e->d_name);
  ::closedir(d);
  for (const std::string& name : names) {
    if (name.starts_with(".")) continue;  // ., .., .mnt, temp files
    fs::path p = parent / name;
    if (name.ends_with(kStateSuffix)) {
      auto st = read_state(p);
      if (!st) {
        // Created but not yet written, or torn: judge by age.
        if (older_than(p, 60)) {
          ContainerState none;
          none.id = name.substr(0, name.size() - std::strlen(kStateSuffix));
          stale.push_back(none);
        }
        continue;
      }
      if (!process_alive(st->owner_pid, st->owner_start)) stale.push_back(*st);
    } else if (!names.count(name + kStateSuffix) && older_than(p, 60)) {
      orphan_dirs.push_back(p);
    }
  }
  std::set<std::string> ids;
  for (const auto& st : stale) ids.insert(st.id);
  Status result;
  if (!ids.empty()) {
    // The cgroup kill takes the init and every process with it.
    if (auto s = Cgroup::reap_stale([&](const std::string& id) { return ids.count(id) > 0; }); !s)
      result = std::move(s);
  }
  auto keep = [&](Status s) {
    if (!s && result) result = std::move(s);
  };
  for (const auto& st : stale) {
    kill_and_wait(st.init_pid, st.init_start);
    keep(remove_tree(parent / st.id));
    fs::path file = parent / (st.id + kStateSuffix);
    if (::unlink(file.c_str()) != 0 && errno != ENOENT) keep(fail_errno("remove " + file.string()));
  }
  for (const auto& dir : orphan_dirs) keep(remove_tree(dir));
  // Egress networks of dead runners (their containers are gone by now);
  // without root there are none lockstep could have made or could remove.
  if (!running_rootless()) keep(reap_stale_networks());
  if (!result) return fail(std::move(result.error()).context("reap stale containers"));
  return {};
}

}  // namespace lockstep::executor
