// Rootless runs with limits: on a cgroup v2 host, lockstep runs as an
// ordinary user inside `systemd-run --user --scope -p Delegate=yes`, a
// delegated subtree of that user's systemd manager, and its jobs get the
// limits root's jobs get. Each test (as root) makes its user, starts the
// user's manager (lingering, as logind does for a user who logs in) and
// removes both again.
//
// Needs systemd as init, a pure cgroup v2 hierarchy with the memory and pids
// controllers, logind on the system bus and newuidmap: the guest of
// scripts/test-cgroup2-vm.sh, which runs this binary. Not a ctest test: the
// development and CI hosts are cgroup v1 (docs/cgroup-v2.md), and every test
// here fails, not skips, where the guest's prerequisites are missing.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "tests/integration/rootless/test_user.hpp"
#include "tests/support/lockstep_process.hpp"

namespace lockstep::testing {
namespace {
namespace fs = std::filesystem;
using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kImage = "localhost/busybox:1.35";

int count(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (size_t p = haystack.find(needle); p != std::string::npos; p = haystack.find(needle, p + 1))
    ++n;
  return n;
}

std::string trimmed(const fs::path& file) {
  auto text = read_file(file);
  if (!text) return "(" + text.error().message() + ")";
  std::string s = *text;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

template <class Pred>
bool eventually(Pred pred, std::chrono::seconds limit) {
  const auto deadline = Clock::now() + limit;
  while (!pred()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return true;
}

class Delegated : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(is_root()) << "needs root to create the test's user and start its manager";
    ASSERT_TRUE(fs::is_directory("/run/systemd/system"))
        << "needs systemd as init (runs in the guest of scripts/test-cgroup2-vm.sh)";
    std::string controllers = trimmed("/sys/fs/cgroup/cgroup.controllers");
    ASSERT_TRUE(controllers.find("memory") != std::string::npos &&
                controllers.find("pids") != std::string::npos)
        << "needs a pure cgroup v2 hierarchy with memory and pids at /sys/fs/cgroup (runs in the "
           "guest of scripts/test-cgroup2-vm.sh); cgroup.controllers: "
        << controllers;
    for (const char* tool : {"/usr/bin/newuidmap", "/usr/bin/systemd-run", "/usr/bin/loginctl",
                             "/usr/sbin/runuser", "/usr/bin/setpriv"})
      ASSERT_TRUE(fs::exists(tool)) << "no " << tool;
    ASSERT_EQ(::chmod(tmp_.root().c_str(), 0755), 0);
    user_ = std::make_unique<TestUser>(home(), true);
    ASSERT_TRUE(user_->error().empty()) << user_->error();
    fs::create_directories(home());
    fs::create_directories(gate());
    chown_tree(tmp_.root());
    // The system bus and logind, which a host booted to multi-user.target
    // runs anyway (the guest boots straight into its test unit).
    auto r = run_process({"/usr/bin/systemctl", "start", "dbus.service", "systemd-logind.service"});
    ASSERT_EQ(r.exit_code, 0) << "systemctl start dbus.service systemd-logind.service: " << r.out
                              << r.err;
    // The user's manager, started as logind starts it for a lingering user;
    // `systemctl start` waits until it is up.
    r = run_process({"/usr/bin/loginctl", "enable-linger", user_->name()});
    ASSERT_EQ(r.exit_code, 0) << "loginctl enable-linger: " << r.out << r.err;
    manager_started_ = true;
    r = run_process({"/usr/bin/systemctl", "start", unit()});
    ASSERT_EQ(r.exit_code, 0) << "systemctl start " << unit() << ": " << r.out << r.err
                              << run_process({"/usr/bin/systemctl", "status", unit()}).out;
    ASSERT_TRUE(fs::is_directory(user_slice())) << user_slice();
  }

  void TearDown() override {
    if (manager_started_) {
      run_process({"/usr/bin/loginctl", "disable-linger", user_->name()});
      run_process({"/usr/bin/systemctl", "stop", unit()});
      run_process({"/usr/bin/loginctl", "terminate-user", user_->name()});
    }
    user_.reset();  // the user first: its state dir is removed with tmp_
  }

  std::string uid() const { return std::to_string(user_->uid()); }
  std::string unit() const { return "user@" + uid() + ".service"; }
  fs::path user_slice() const {
    return fs::path("/sys/fs/cgroup/user.slice") / ("user-" + uid() + ".slice");
  }
  fs::path home() const { return tmp_.root() / "user"; }
  fs::path state() const { return home() / ".local/share/lockstep"; }
  // Bound into the quota job: it says when it runs and waits to be told to end.
  fs::path gate() const { return tmp_.root() / "gate"; }

  void chown_tree(const fs::path& p) const { user_->give_tree(p); }

  std::vector<std::string> env() const {
    return {"HOME=" + home().string(),  "XDG_RUNTIME_DIR=/run/user/" + uid(),
            "LOCKSTEP_HOME=",           "XDG_DATA_HOME=",
            "USER=" + user_->name(),    "LOGNAME=" + user_->name(),
            "DBUS_SESSION_BUS_ADDRESS="};
  }

  // argv of lockstep as the test's user: in a delegated scope of the user's
  // manager, or (`scope` false) through runuser(1) in the cgroup of this
  // test, which is not the user's.
  std::vector<std::string> argv(const std::vector<std::string>& args, bool scope) const {
    std::vector<std::string> a;
    if (scope) {
      a = {"/usr/bin/setpriv",
           "--reuid=" + uid(),
           "--regid=" + std::to_string(user_->gid()),
           "--clear-groups",
           "--",
           "/usr/bin/systemd-run",
           "--user",
           "--scope",
           "--quiet",
           "-p",
           "Delegate=yes",
           "--"};
    } else {
      a = {"/usr/sbin/runuser", "-u", user_->name(), "--"};
    }
    a.push_back(LOCKSTEP_BINARY);
    a.insert(a.end(), args.begin(), args.end());
    return a;
  }

  ProcessOutput as_user(const std::vector<std::string>& args, bool scope = true) const {
    return run_process(argv(args, scope), env(), home());
  }

  void import_image() {
    fs::path rootfs = tmp_.root() / "rootfs";
    auto r =
        run_process({"/bin/bash", std::string(LOCKSTEP_SOURCE_DIR) + "/scripts/busybox-rootfs.sh",
                     rootfs.string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ::chmod(rootfs.c_str(), 0755);
    r = as_user({"image", "import", rootfs.string(), "--tag", kImage}, false);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }

  fs::path write(const std::string& name, const std::string& text) {
    return user_->write_file(home() / name, text);
  }

  // Every `lockstep` cgroup directory under the user's slice: the parents
  // of the runner and container cgroups in the user's delegated scopes.
  std::vector<fs::path> lockstep_parents() const {
    std::vector<fs::path> out;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(user_slice(), ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      if (!it->is_directory(ec) || it->is_symlink(ec)) continue;
      if (it->path().filename() == "lockstep") out.push_back(it->path());
    }
    return out;
  }

  // The cgroups of lockstep's runners and containers left under the
  // user's slice, as one line ("" when none).
  std::string cgroups_left() const {
    std::string out;
    for (const auto& parent : lockstep_parents()) {
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(parent, ec))
        if (e.is_directory(ec)) out += e.path().string() + " ";
    }
    return out;
  }

  // The user's `sleep` processes.
  std::string sleepers() const {
    return run_process({"/usr/bin/pgrep", "-u", uid(), "-x", "sleep"}).out;
  }

  Json record(const std::string& id) const {
    auto text = read_file(state() / "runs" / id / "record.json");
    if (!text) return Json();
    return Json::parse(*text, nullptr, false);
  }
  std::vector<std::string> runs() const {
    std::vector<std::string> ids;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(state() / "runs", ec))
      if (e.path().filename().string()[0] != '.') ids.push_back(e.path().filename().string());
    std::sort(ids.begin(), ids.end());
    return ids;
  }
  static Json job(const Json& record, const std::string& name) {
    for (const auto& j : record["jobs"])
      if (j["name"] == name) return j;
    return Json();
  }

  LockstepHome tmp_;
  std::unique_ptr<TestUser> user_;
  bool manager_started_ = false;
};

// lockstep as the user in the background, its output in a file.
class Background {
 public:
  Background(const std::vector<std::string>& argv, const std::vector<std::string>& env,
             const fs::path& cwd, const fs::path& log)
      : log_(log) {
    std::vector<std::string> envs;
    for (char** e = environ; *e; ++e) envs.emplace_back(*e);
    for (const auto& e : env) {
      std::string key = e.substr(0, e.find('=') + 1);
      std::erase_if(envs, [&](const std::string& x) { return x.rfind(key, 0) == 0; });
      envs.push_back(e);
    }
    std::vector<char*> a, ev;
    std::vector<std::string> store = argv;
    for (auto& s : store) a.push_back(s.data());
    a.push_back(nullptr);
    for (auto& s : envs) ev.push_back(s.data());
    ev.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      int in = ::open("/dev/null", O_RDONLY);
      ::dup2(in, 0);
      if (::chdir(cwd.c_str()) != 0) ::_exit(126);
      ::execve(a[0], a.data(), ev.data());
      ::_exit(127);
    }
  }
  ~Background() { kill(SIGKILL); }
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;

  std::string output() const {
    auto t = read_file(log_);
    return t ? *t : "";
  }
  // False once it has exited (reaped here).
  bool running() {
    if (pid_ <= 0) return false;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) != pid_) return true;
    pid_ = 0;
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return false;
  }
  // Kills with `sig` and reaps; the exit status as run_process reports it.
  int kill(int sig) {
    if (pid_ <= 0) return status_;
    ::kill(pid_, sig);
    return wait();
  }
  int wait() {
    if (pid_ <= 0) return status_;
    int st = 0;
    ::waitpid(pid_, &st, 0);
    pid_ = 0;
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return status_;
  }

 private:
  fs::path log_;
  pid_t pid_ = 0;
  int status_ = -1;
};

constexpr const char* kLimits = R"(name: limits
on: push
jobs:
  oom:
    runs-on: ubuntu-latest
    container:
      image: localhost/busybox:1.35
      options: --memory 32m
    steps:
      - run: dd if=/dev/zero of=/dev/null bs=200M count=1
  forkbomb:
    runs-on: ubuntu-latest
    timeout-minutes: 5
    container:
      image: localhost/busybox:1.35
      options: --pids-limit 32
    steps:
      - run: |
          ( while :; do sleep 600 & done ) 2> /tmp/err || true
          cat /tmp/err
          grep -q "can't fork" /tmp/err && echo "the fork bomb stopped"
  quota:
    runs-on: ubuntu-latest
    container:
      image: localhost/busybox:1.35
      options: --cpus 0.5 --memory 64m --pids-limit 50
      volumes:
        - GATE:/gate
    steps:
      - run: |
          touch /gate/started
          i=0
          while [ ! -e /gate/stop ] && [ $i -lt 6000 ]; do sleep 0.1; i=$((i+1)); done
          test -e /gate/stop && echo "the quota job ends"
)";

TEST_F(Delegated, JobsGetTheLimitsRootGets) {
  import_image();
  if (HasFatalFailure()) return;
  std::string text = kLimits;
  text.replace(text.find("GATE"), 4, gate().string());
  write("ci.yml", text);
  Background run(argv({"run", "ci.yml", "--network", "none"}, true), env(), home(),
                 tmp_.root() / "run.log");

  // The quota job's cgroup, found by its limits while the job waits.
  ASSERT_TRUE(eventually([&] { return fs::exists(gate() / "started") || !run.running(); },
                         std::chrono::seconds(600)));
  ASSERT_TRUE(fs::exists(gate() / "started")) << run.output();
  fs::path quota;
  for (const auto& parent : lockstep_parents()) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(parent, ec))
      if (trimmed(e.path() / "cpu.max") == "50000 100000") quota = e.path();
  }
  std::ofstream(gate() / "stop") << "";
  ASSERT_FALSE(quota.empty()) << "no cgroup with cpu.max '50000 100000' under " << user_slice()
                              << ": " << cgroups_left() << "\n"
                              << run.output();
  EXPECT_EQ(trimmed(quota / "memory.max"), std::to_string(64 << 20));
  EXPECT_EQ(trimmed(quota / "memory.swap.max"), "0");
  EXPECT_EQ(trimmed(quota / "pids.max"), "50");
  // Under the user's manager, not the system's cgroups.
  EXPECT_NE(quota.string().find("/user@" + uid() + ".service/"), std::string::npos) << quota;

  int status = run.wait();
  std::string out = run.output();
  EXPECT_EQ(status, 1) << out;
  EXPECT_EQ(count(out, "limits are not enforced"), 0) << out;
  EXPECT_NE(out.find("[oom] step 'dd if=/dev/zero of=/dev/null bs=200M count=1' failed: killed: "
                     "out of memory (limit 32 MiB)"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("[forkbomb] the fork bomb stopped"), std::string::npos) << out;
  EXPECT_NE(out.find("[quota] the quota job ends"), std::string::npos) << out;
  EXPECT_NE(out.find("2 of 3 jobs passed"), std::string::npos) << out;

  auto ids = runs();
  ASSERT_EQ(ids.size(), 1u);
  Json rec = record(ids[0]);
  ASSERT_TRUE(rec.is_object()) << "no record of run " << ids[0];
  // Limits that held are recorded as root's are: no "enforced": false.
  for (const char* name : {"oom", "forkbomb", "quota"}) {
    Json limits = job(rec, name)["env_doc"]["container"]["limits"];
    EXPECT_FALSE(limits.contains("enforced")) << name << ": " << limits.dump();
  }
  EXPECT_EQ(job(rec, "oom")["env_doc"]["container"]["limits"]["memory_bytes"], 32 << 20);
  EXPECT_EQ(job(rec, "oom")["usage"]["oom_killed"], true) << job(rec, "oom")["usage"].dump();
  EXPECT_EQ(job(rec, "quota")["env_doc"]["container"]["limits"]["cpus_milli"], 500);

  // The scope ends with the run; nothing of lockstep stays in the user's tree.
  EXPECT_TRUE(eventually([&] { return cgroups_left().empty(); }, std::chrono::seconds(30)))
      << cgroups_left();
  EXPECT_EQ(sleepers(), "");
}

constexpr const char* kSleeper = R"(name: sleeper
on: push
jobs:
  sleep:
    runs-on: ubuntu-latest
    container:
      image: localhost/busybox:1.35
      options: --memory 64m
    steps:
      - run: |
          setsid sleep 1000 </dev/null >/dev/null 2>&1 &
          echo sleeping
          exec sleep 1001
)";

constexpr const char* kHello = R"(name: hello
on: push
jobs:
  hello:
    runs-on: ubuntu-latest
    container:
      image: localhost/busybox:1.35
      options: --memory 64m
    steps:
      - run: echo "hello from a delegated scope"
)";

TEST_F(Delegated, TheNextRunReapsWhatASigkilledRunnerLeft) {
  import_image();
  if (HasFatalFailure()) return;
  write("sleeper.yml", kSleeper);
  write("hello.yml", kHello);
  {
    Background run(argv({"run", "sleeper.yml", "--network", "none"}, true), env(), home(),
                   tmp_.root() / "sleeper.log");
    eventually(
        [&] {
          return run.output().find("[sleep] sleeping") != std::string::npos || !run.running();
        },
        std::chrono::seconds(600));
    ASSERT_NE(run.output().find("[sleep] sleeping"), std::string::npos) << run.output();
    run.kill(SIGKILL);
  }
  // The container dies with its runner (its init watches the runner); its
  // cgroup stays in the killed runner's scope until that scope is empty and
  // the user's manager removes it.
  std::string left = cgroups_left();
  std::cout << "right after the SIGKILL: " << (left.empty() ? "no cgroup" : left) << "\n";
  auto r = as_user({"run", "hello.yml", "--network", "none"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("[hello] hello from a delegated scope"), std::string::npos) << r.out;
  EXPECT_EQ(count(r.err, "limits are not enforced"), 0) << r.err;
  EXPECT_TRUE(eventually([&] { return cgroups_left().empty() && sleepers().empty(); },
                         std::chrono::seconds(30)))
      << "before the second run: " << left << "\nafter it: " << cgroups_left()
      << "\nsleep processes: " << sleepers();
  // The next run reaped the killed run's container: no state of it is left.
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(state() / "containers", ec))
    EXPECT_EQ(e.path().filename().string()[0], '.') << "left behind: " << e.path();
}

TEST_F(Delegated, OutsideADelegatedScopeTheRunWarnsOnce) {
  import_image();
  if (HasFatalFailure()) return;
  write("hello.yml", kHello);
  auto r = as_user({"run", "hello.yml", "--network", "none"}, false);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("[hello] hello from a delegated scope"), std::string::npos) << r.out;
  EXPECT_EQ(count(r.err, "limits are not enforced"), 1) << r.err;
  EXPECT_NE(r.err.find("Delegate=yes"), std::string::npos) << r.err;
  auto ids = runs();
  ASSERT_EQ(ids.size(), 1u);
  Json limits = job(record(ids[0]), "hello")["env_doc"]["container"]["limits"];
  EXPECT_EQ(limits["enforced"], false) << limits.dump();
  EXPECT_EQ(cgroups_left(), "");
}

TEST_F(Delegated, AScopeSharedWithAShellWarnsOnceAndLeavesNothing) {
  import_image();
  if (HasFatalFailure()) return;
  write("hello.yml", kHello);
  // The shell stays in the scope while lockstep runs: no controller can be
  // enabled there, and lockstep goes back to the scope and does without.
  std::vector<std::string> a = argv({}, true);
  a.pop_back();  // the binary: the shell runs it
  a.insert(a.end(), {"/bin/sh", "-c",
                     std::string(LOCKSTEP_BINARY) + " run hello.yml --network none; exit $?"});
  auto r = run_process(a, env(), home());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("[hello] hello from a delegated scope"), std::string::npos) << r.out;
  EXPECT_EQ(count(r.err, "limits are not enforced"), 1) << r.err;
  EXPECT_NE(r.err.find("in a cgroup of its own"), std::string::npos) << r.err;
  auto ids = runs();
  ASSERT_EQ(ids.size(), 1u);
  Json limits = job(record(ids[0]), "hello")["env_doc"]["container"]["limits"];
  EXPECT_EQ(limits["enforced"], false) << limits.dump();
  EXPECT_TRUE(eventually([&] { return cgroups_left().empty(); }, std::chrono::seconds(30)))
      << cgroups_left();
}

TEST_F(Delegated, VerifyInAScopeVariesWhatTheScopeAllows) {
  import_image();
  if (HasFatalFailure()) return;
  write("art.yml", R"yml(name: art
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    container:
      image: localhost/busybox:1.35
      options: --memory 64m --network none
    steps:
      - run: echo "built with $(nproc) cpu(s)" && mkdir -p out && echo same > out/result.txt
      - uses: actions/upload-artifact@v4
        with:
          name: result
          path: out/result.txt
)yml");
  // user@.service delegates pids, memory and cpu: no cpuset for the cpus
  // variation, which is left out with one line, as without a cgroup.
  std::string offered = trimmed(user_slice() / unit() / "cgroup.controllers");
  auto r = as_user({"verify", "art.yml"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("REPRODUCIBLE: "), std::string::npos) << r.out << r.err;
  EXPECT_EQ(r.out.find("NOT REPRODUCIBLE"), std::string::npos) << r.out;
  EXPECT_EQ(count(r.err, "limits are not enforced"), 0) << r.err;
  if (offered.find("cpuset") == std::string::npos) {
    EXPECT_EQ(count(r.err, "cpus is not varied without root"), 1) << offered << "\n" << r.err;
    EXPECT_NE(r.err.find("no cpuset controller"), std::string::npos) << r.err;
  } else {
    EXPECT_NE(r.out.find("built with 1 cpu(s)"), std::string::npos) << r.out;
  }
}

}  // namespace
}  // namespace lockstep::testing
