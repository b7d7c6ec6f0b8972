#pragma once
// A stand-in for the Linux executor, for tests of the engine (scheduling,
// if:, needs, outputs, continue-on-error, cancellation) without root: each
// process runs on the host as the test's user, with every container path of
// a bind mount (/__w, /github/home, ...) in its argv, environment and
// working directory replaced by the mount's host directory. It isolates
// nothing: only for workflows a test writes.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "executor/executor.hpp"

namespace lockstep::testing {

class FakeContainer : public executor::Container {
 public:
  explicit FakeContainer(executor::ContainerSpec spec) : spec_(std::move(spec)) {
    for (const auto& m : spec_.mounts) maps_.emplace_back(m.target, m.source.string());
    // Longest container path first: /__w/_actions before /__w.
    std::sort(maps_.begin(), maps_.end(),
              [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  }
  const std::string& id() const override { return spec_.id; }

  // Container paths to host paths, where a mount target starts a path.
  std::string host(std::string s) const {
    for (const auto& [target, source] : maps_) {
      for (size_t pos = s.find(target); pos != std::string::npos;
           pos = s.find(target, pos + source.size())) {
        bool starts = pos == 0 || s[pos - 1] == '=' || s[pos - 1] == ':' || s[pos - 1] == ' ';
        size_t end = pos + target.size();
        bool ends = end == s.size() || s[end] == '/' || s[end] == ':' || s[end] == ' ';
        if (starts && ends) s.replace(pos, target.size(), source);
      }
    }
    return s;
  }

  Result<executor::ProcessResult> exec(const executor::ProcessSpec& ps,
                                       const executor::LineSink& sink) override {
    cancelled_.store(false);  // a cancel stops the process it finds running
    std::vector<std::string> argv, env;
    for (const auto& a : ps.argv) argv.push_back(host(a));
    for (const auto& e : spec_.env) env.push_back(host(e));
    for (const auto& e : ps.env) {
      std::string key = e.substr(0, e.find('=') + 1);
      std::erase_if(env, [&](const std::string& x) { return x.rfind(key, 0) == 0; });
      env.push_back(host(e));
    }
    std::string wd = host(ps.workdir.empty() ? spec_.workdir : ps.workdir);
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return fail_errno("pipe");
    std::vector<char*> args, envp;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    auto start = std::chrono::steady_clock::now();
    pid_t pid = ::fork();
    if (pid < 0) return fail_errno("fork");
    if (pid == 0) {
      ::setpgid(0, 0);
      ::dup2(out[1], 1);
      ::dup2(out[1], 2);
      if (::chdir(wd.c_str()) != 0) ::_exit(126);
      ::execvpe(args[0], args.data(), envp.data());
      ::_exit(127);
    }
    ::close(out[1]);
    pid_.store(pid);
    std::string buf;
    char chunk[4096];
    bool timed_out = false;
    for (;;) {
      pollfd p{out[0], POLLIN, 0};
      int left = -1;
      if (ps.timeout) {
        auto spent = std::chrono::steady_clock::now() - start;
        left = static_cast<int>(std::max<int64_t>(
            0, std::chrono::duration_cast<std::chrono::milliseconds>(*ps.timeout - spent).count()));
      }
      int n = ::poll(&p, 1, left);
      if (n == 0) {
        timed_out = true;
        ::kill(-pid, SIGKILL);
        break;
      }
      ssize_t r = ::read(out[0], chunk, sizeof chunk);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      buf.append(chunk, static_cast<size_t>(r));
      for (size_t nl; (nl = buf.find('\n')) != std::string::npos; buf.erase(0, nl + 1))
        sink(executor::Stream::kStdout, std::string_view(buf).substr(0, nl),
             std::chrono::system_clock::now());
    }
    if (!buf.empty()) sink(executor::Stream::kStdout, buf, std::chrono::system_clock::now());
    ::close(out[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    pid_.store(0);
    executor::ProcessResult r;
    r.duration = std::chrono::steady_clock::now() - start;
    r.network = spec_.network;
    if (cancelled_.load()) {
      r.kind = executor::ExitKind::kCancelled;
      r.reason = "cancelled";
    } else if (timed_out) {
      r.kind = executor::ExitKind::kTimedOut;
      r.reason = "timed out";
    } else if (WIFSIGNALED(status)) {
      r.kind = executor::ExitKind::kSignaled;
      r.signal = WTERMSIG(status);
      r.reason = "killed by signal " + std::to_string(r.signal);
    } else {
      r.exit_code = WEXITSTATUS(status);
      r.reason = "exit code " + std::to_string(r.exit_code);
    }
    return r;
  }

  void cancel(std::chrono::milliseconds) override {
    cancelled_.store(true);
    if (pid_t p = pid_.load()) ::kill(-p, SIGKILL);
  }
  Status stop(std::chrono::milliseconds grace) override {
    cancel(grace);
    return {};
  }
  executor::ResourceUsage usage() const override { return {}; }

 private:
  executor::ContainerSpec spec_;
  std::vector<std::pair<std::string, std::string>> maps_;
  std::atomic<pid_t> pid_{0};
  std::atomic<bool> cancelled_{false};
};

class FakeExecutor : public executor::Executor {
 public:
  Result<std::unique_ptr<executor::Container>> start(const executor::ContainerSpec& spec) override {
    std::lock_guard lk(mu_);
    started_.push_back(spec.id);
    return std::unique_ptr<executor::Container>(std::make_unique<FakeContainer>(spec));
  }
  std::vector<std::string> started() const {
    std::lock_guard lk(mu_);
    return started_;
  }
  // What settle() answers: a teardown that failed behind the jobs.
  void fail_teardown(std::string why) { teardown_error_ = std::move(why); }
  Status settle() override {
    if (teardown_error_.empty()) return {};
    return fail(teardown_error_);
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> started_;
  std::string teardown_error_;
};

}  // namespace lockstep::testing
