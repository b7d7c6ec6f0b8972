// The job supervisor: a process of its own per job, so that the job dies on
// time even when the agent is frozen or dead (docs/server.md, "The job
// supervisor").
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "common/fd.hpp"
#include "common/fs.hpp"
#include "server/agent.hpp"

namespace lockstep::server {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

int64_t mono_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Appends whole lines with one write each (O_APPEND keeps them whole).
class LineFile {
 public:
  explicit LineFile(const fs::path& p)
      : fd_(p.empty() ? -1 : ::open(p.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) {}
  ~LineFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  LineFile(const LineFile&) = delete;
  LineFile& operator=(const LineFile&) = delete;
  void write(const std::string& s) {
    if (fd_ >= 0) (void)!::write(fd_, s.data(), s.size());
  }

 private:
  int fd_;
};

// Replaces every secret value by ***, before anything reaches the spool.
class Masker {
 public:
  explicit Masker(std::vector<std::string> values) : values_(std::move(values)) {
    std::erase_if(values_, [](const std::string& v) { return v.empty(); });
    std::sort(values_.begin(), values_.end(),
              [](const auto& a, const auto& b) { return a.size() > b.size(); });
  }
  std::string operator()(std::string line) const {
    for (const auto& v : values_)
      for (size_t at = line.find(v); at != std::string::npos; at = line.find(v, at + 3))
        line.replace(at, v.size(), "***");
    return line;
  }

 private:
  std::vector<std::string> values_;
};

struct Job {
  int64_t id = 0;
  int attempt = 0;
  json plan;
  LineFile* log = nullptr;
  LineFile* trace = nullptr;
  const Masker* mask = nullptr;
  void say(const std::string& line) const { log->write((*mask)(line) + "\n"); }
  void mark(const char* what) const {
    trace->write(std::string(what) + " " + std::to_string(id) + " " + std::to_string(attempt) +
                 " " + std::to_string(mono_ns()) + "\n");
  }
};

// The fake executor: each step's `run` lines are `echo TEXT`, `sleep SECONDS`
// or `exit CODE`; anything else is printed and counts as success.
int fake_body(const Job& job) {
  job.mark("start");
  int step_no = 0;
  const json steps = job.plan.value("steps", json::array());
  for (const auto& step : steps) {
    ++step_no;
    std::string title = step.value("name", "");
    std::string run = step.value("run", "");
    if (title.empty())
      title = run.empty() ? step.value("uses", "step") : run.substr(0, run.find('\n'));
    job.say("::group::" + title);
    std::istringstream lines(run);
    std::string line;
    while (std::getline(lines, line)) {
      if (line.rfind("echo ", 0) == 0) {
        job.say(line.substr(5));
      } else if (line.rfind("sleep ", 0) == 0) {
        double secs = std::atof(line.c_str() + 6);
        int64_t end = mono_ns() + static_cast<int64_t>(secs * 1e9);
        while (mono_ns() < end) {
          job.mark("alive");
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      } else if (line.rfind("exit ", 0) == 0) {
        int code = std::atoi(line.c_str() + 5);
        job.say("::endgroup::");
        job.say("step " + std::to_string(step_no) + " exited with " + std::to_string(code));
        job.mark("end");
        return code;
      } else if (!line.empty()) {
        job.say("+ " + line);
      }
    }
    job.say("::endgroup::");
  }
  job.mark("end");
  return 0;
}

}  // namespace

int run_supervisor(const fs::path& dir) {
  auto text = read_file(dir / "job.json");
  if (!text) return 125;
  json spec = json::parse(*text, nullptr, false);
  if (spec.is_discarded()) return 125;
  std::vector<std::string> secret_values;
  const json secrets = spec.value("secrets", json::object());
  for (auto it = secrets.begin(); it != secrets.end(); ++it)
    if (it->is_string()) secret_values.push_back(it->get<std::string>());
  Masker mask(std::move(secret_values));
  LineFile log(dir / "log");
  LineFile trace(spec.value("trace", ""));
  Job job{spec.value("job", int64_t{0}),
          spec.value("attempt", 0),
          spec.value("plan", json()),
          &log,
          &trace,
          &mask};

  // Watchdog: fd 3 carries the kill deadline (monotonic ns, 8 bytes per
  // update) from the agent; EOF means the agent is gone.
  std::atomic<int64_t> deadline{spec.value("first_deadline_ns", int64_t{0})};
  std::thread([&] {
    for (;;) {
      pollfd p{3, POLLIN, 0};
      int rc = ::poll(&p, 1, 10);
      if (rc > 0) {
        int64_t d = 0;
        ssize_t n = ::read(3, &d, sizeof d);
        if (n == static_cast<ssize_t>(sizeof d)) {
          deadline = d;
          continue;
        }
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
          job.mark("killed");
          job.say("lockstep: the agent went away; the job was stopped");
          ::_exit(137);
        }
      }
      if (mono_ns() > deadline.load()) {
        job.mark("killed");
        job.say("lockstep: the lease could not be renewed in time; the job was stopped");
        ::_exit(137);
      }
    }
  }).detach();

  int code = fake_body(job);
  json result = {{"status", code == 0 ? "success" : "failure"},
                 {"exit_code", code},
                 {"env_hash", ""},
                 {"record", json::object()}};
  if (!write_file_atomic(dir / "result.json", result.dump())) return 125;
  return 0;
}

}  // namespace lockstep::server
