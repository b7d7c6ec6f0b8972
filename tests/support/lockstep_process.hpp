#pragma once
// Test support for integration tests that drive the real `lockstep` binary:
// a private LOCKSTEP_HOME per test, a busybox image built from Debian's
// busybox-static, and running the binary with captured stdout/stderr.
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace lockstep::testing {

struct ProcessOutput {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs argv with extra environment entries ("K=V"), capturing both streams.
inline ProcessOutput run_process(const std::vector<std::string>& argv,
                                 const std::vector<std::string>& extra_env = {},
                                 const std::filesystem::path& cwd = {}) {
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) return {};
  std::vector<std::string> env_store;
  for (char** e = environ; *e; ++e) env_store.emplace_back(*e);
  for (const auto& e : extra_env) {
    std::string key = e.substr(0, e.find('='));
    std::erase_if(env_store, [&](const std::string& x) { return x.rfind(key + "=", 0) == 0; });
    env_store.push_back(e);
  }
  std::vector<char*> envp, args;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_store = argv;
  for (auto& a : argv_store) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(126);
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  ProcessOutput r;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
      }
    }
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

// A temporary LOCKSTEP_HOME (and work dir) removed with everything in it.
class LockstepHome {
 public:
  LockstepHome() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "lockstep-it-XXXXXX").string();
    root_ = ::mkdtemp(tmpl.data());
  }
  ~LockstepHome() {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  LockstepHome(const LockstepHome&) = delete;
  LockstepHome& operator=(const LockstepHome&) = delete;

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path home() const { return root_ / "home"; }

  ProcessOutput lockstep(std::vector<std::string> args,
                         std::vector<std::string> extra_env = {}) const {
    args.insert(args.begin(), LOCKSTEP_BINARY);
    extra_env.push_back("LOCKSTEP_HOME=" + home().string());
    return run_process(args, extra_env, root_);
  }

  // Imports the busybox rootfs as `tag`; returns the digest printed.
  std::string import_busybox(const std::string& tag = "localhost/busybox:test") const {
    auto rootfs = root_ / "busybox-rootfs";
    run_process({"/bin/bash", std::string(LOCKSTEP_SOURCE_DIR) + "/scripts/busybox-rootfs.sh",
                 rootfs.string()});
    auto r = lockstep({"image", "import", rootfs.string(), "--tag", tag});
    std::string digest = r.out;
    while (!digest.empty() && (digest.back() == '\n' || digest.back() == ' ')) digest.pop_back();
    return r.exit_code == 0 ? digest : "";
  }

  std::filesystem::path write(const std::string& name, const std::string& content) const {
    auto p = root_ / name;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << content;
    return p;
  }

  // Every run's id, oldest first (run ids sort by start time).
  std::vector<std::string> run_ids() const {
    std::vector<std::string> ids;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(home() / "runs", ec))
      if (e.path().filename().string()[0] != '.') ids.push_back(e.path().filename().string());
    std::sort(ids.begin(), ids.end());
    return ids;
  }
  // record.json of the newest run; empty when there is none.
  std::filesystem::path latest_record() const {
    auto ids = run_ids();
    return ids.empty() ? std::filesystem::path() : home() / "runs" / ids.back() / "record.json";
  }

 private:
  std::filesystem::path root_;
};

inline bool is_root() {
  return ::geteuid() == 0;
}

}  // namespace lockstep::testing
