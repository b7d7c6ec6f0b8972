// The job supervisor: a process of its own per job, so that the job dies on
// time even when the agent is frozen or dead (docs/server.md, "The job
// supervisor").
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cache/git_checkout.hpp"
#include "cache/git_mirror.hpp"
#include "common/fd.hpp"
#include "common/fs.hpp"
#include "common/paths.hpp"
#include "runner/engine/output.hpp"
#include "server/agent.hpp"
#include "server/repo_git.hpp"

extern char** environ;

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

struct Job {
  int64_t id = 0;
  int attempt = 0;
  json plan;
  LineFile* log = nullptr;
  LineFile* trace = nullptr;
  // Every secret (and its encoded forms, as lockstep run masks them) is
  // replaced by *** before anything reaches the spool.
  const runner::Masker* mask = nullptr;
  void say(const std::string& line) const { log->write(mask->mask(line) + "\n"); }
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

// The process running the job's body under the lockstep executor (0: none
// yet); the watchdog stops it.
std::atomic<pid_t> g_child{0};

// Stops the job: the body gets SIGTERM (`lockstep run` then stops its
// containers and records the run as interrupted), and `grace_ms` later
// everything left in the supervisor's process group, the supervisor too,
// gets SIGKILL.
[[noreturn]] void stop_job(const Job& job, const char* why, int64_t grace_ms) {
  job.mark("killed");
  job.say(std::string("lockstep: ") + why + "; the job was stopped");
  if (pid_t c = g_child.load(); c > 0) {
    ::kill(c, SIGTERM);
    for (int64_t i = 0; i < grace_ms / 10 && ::kill(c, 0) == 0; ++i) {
      int st = 0;
      if (::waitpid(c, &st, WNOHANG) == c) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ::kill(0, SIGKILL);
  ::_exit(137);
}

// A word for a shell command line: as it is when it is safe, else in single quotes.
std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789-_./:=@+,") == std::string::npos)
    return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// The lockstep executor: the job is one cell of `lockstep run`, at the
// commit the server planned, from the repository's clone URL, with the
// agent's state dir (images, caches, records). Its output is masked line by
// line into the spool.
int lockstep_body(const Job& job, const json& spec, const fs::path& dir, json* result) {
  job.mark("start");
  const json& plan = job.plan;
  std::error_code ec;
  std::string self = fs::read_symlink("/proc/self/exe", ec).string();
  if (ec) {
    job.say("lockstep: find the lockstep binary: " + ec.message());
    return 2;
  }
  // The workflow, its lock and the project's config are read from a
  // checkout of the commit; the run's source is the repository at that
  // commit, as the server saw it.
  cache::GitMirrors mirrors(state_dir());
  cache::CheckoutRequest co;
  co.url = plan.value("clone_url", "");
  co.ref = plan.value("sha", "");
  co.path = dir / "src";
  if (plan.contains("merge") && plan["merge"].is_object()) {
    // A pull request: its merge commit, made here as the server made it.
    const json& mg = plan["merge"];
    const std::string head_ref = mg.value("head_ref", "");
    auto m = mirrors.update(co.url, {"+" + head_ref + ":" + head_ref});
    if (!m) {
      job.say("lockstep: fetch " + head_ref + " of " + co.url + ": " + m.error().message());
      return 2;
    }
    auto made = merge_commit(m->path, mg.value("base", ""), mg.value("head", ""));
    if (!made) {
      job.say("lockstep: make the pull request's merge commit: " + made.error().message());
      return 2;
    }
    if (*made != co.ref) {
      job.say("lockstep: the pull request's merge commit made here (" + *made +
              ") is not the server's (" + co.ref + ")");
      return 2;
    }
  }
  if (auto c = cache::checkout(mirrors, co); !c) {
    job.say("lockstep: check out " + co.url + " at " + co.ref + ": " + c.error().message());
    return 2;
  }
  // The job plan (runner/engine/job_plan.hpp): the server's plan of the
  // job, the `needs` context of the jobs it needs (they ran elsewhere and
  // do not run again here) and the run's pins.
  json job_plan = plan;
  job_plan["needs"] = spec.value("needs", json::object());
  job_plan["pins"] = spec.value("pins", json::object());
  if (!write_file(dir / "plan.json", job_plan.dump(), 0600)) {
    job.say("lockstep: could not write the job's plan");
    return 2;
  }
  const json matrix = plan.value("matrix", json::object());
  std::vector<std::string> argv = {self,       "run",
                                   "--plan",   (dir / "plan.json").string(),
                                   "--repo",   plan.value("clone_url", ""),
                                   "--ref",    plan.value("sha", ""),
                                   "--report", "json=" + (dir / "report.json").string()};
  // The repository's configuration variables (`vars`): not secret.
  const json vars = spec.value("vars", json::object());
  for (auto it = vars.begin(); it != vars.end(); ++it)
    if (it->is_string())
      argv.insert(argv.end(), {"--var", it.key() + "=" + it->get<std::string>()});
  // Artifacts earlier jobs of the run uploaded, already in this host's store.
  if (const std::string arts = spec.value("import_artifacts", ""); !arts.empty())
    argv.insert(argv.end(), {"--import-artifacts", arts});
  // The server's shared dependency caches, asked as this attempt.
  if (const json cs = spec.value("cache_server", json()); cs.is_object()) {
    const json file = {{"url", cs.value("url", "")},
                       {"token", cs.value("token", "")},
                       {"job", job.id},
                       {"attempt", job.attempt}};
    if (!write_file(dir / "cache-server.json", file.dump(), 0600)) {
      job.say("lockstep: could not write the job's cache server file");
      return 2;
    }
    argv.insert(argv.end(), {"--cache-server", (dir / "cache-server.json").string()});
  }
  for (const auto& p : spec.value("platforms", json::array()))
    if (p.is_string()) argv.insert(argv.end(), {"--platform", p.get<std::string>()});
  const json secrets = spec.value("secrets", json::object());
  if (!secrets.empty()) {
    std::string env;
    for (auto it = secrets.begin(); it != secrets.end(); ++it) {
      std::string v = it->is_string() ? it->get<std::string>() : it->dump();
      if (v.find('\n') != std::string::npos) {
        job.say("lockstep: secret " + it.key() + " spans lines, which an agent cannot pass yet");
        return 2;
      }
      env += it.key() + "=" + v + "\n";
    }
    if (!write_file(dir / "secrets.env", env, 0600)) {
      job.say("lockstep: could not write the job's secrets file");
      return 2;
    }
    argv.insert(argv.end(), {"--secret-file", (dir / "secrets.env").string()});
  }

  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return 2;
  UniqueFd out_r(p[0]), out_w(p[1]);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&fa, out_w.get(), 2);
  posix_spawn_file_actions_addchdir_np(&fa, co.path.c_str());
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, self.c_str(), &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  out_w.reset();
  if (rc != 0) {
    job.say(std::string("lockstep: start lockstep run: ") + std::strerror(rc));
    return 2;
  }
  g_child = pid;
  std::string pending;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(out_r.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(buf, static_cast<size_t>(n));
    for (size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
      job.say(pending.substr(0, nl));
      pending.erase(0, nl + 1);
    }
  }
  if (!pending.empty()) job.say(pending);
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  g_child = 0;
  int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);

  // The environment hash and the job's record, from the run's record.
  auto report_text = read_file(dir / "report.json");
  json report = report_text ? json::parse(*report_text, nullptr, false) : json();
  if (report.is_object()) {
    std::string run_id = report.value("run_id", "");
    (*result)["run_id"] = run_id;
    auto rec_text = read_file(state_dir() / "runs" / run_id / "record.json");
    json rec = rec_text ? json::parse(*rec_text, nullptr, false) : json();
    if (rec.is_object() && rec.contains("jobs") && rec["jobs"].is_array()) {
      for (const auto& j : rec["jobs"]) {
        if (j.value("id", "") != plan.value("job", "")) continue;
        if (j.value("matrix", json::object()) != matrix) continue;
        (*result)["env_hash"] = j.value("env_hash", "");
        (*result)["run_record"] = rec;
        (*result)["job_result"] = j.value("result", "");
        (*result)["record"] = {{"run_id", run_id},
                               {"job", j},
                               {"replay", "lockstep replay " + run_id + " --job " +
                                              shell_quote(j.value("name", plan.value("job", "")))}};
      }
    }
  }
  job.mark("end");
  return code;
}

}  // namespace

int run_supervisor(const fs::path& dir) {
  auto text = read_file(dir / "job.json");
  if (!text) return 125;
  json spec = json::parse(*text, nullptr, false);
  if (spec.is_discarded()) return 125;
  runner::Masker mask;
  const json secrets = spec.value("secrets", json::object());
  for (auto it = secrets.begin(); it != secrets.end(); ++it)
    if (it->is_string()) mask.add(it->get<std::string>());
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
  const int64_t grace_ms = spec.value("grace_ms", int64_t{2000});
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
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
          stop_job(job, "the agent went away", grace_ms);
      }
      if (mono_ns() > deadline.load())
        stop_job(job, "the lease could not be renewed in time", grace_ms);
    }
  }).detach();

  json result = {{"env_hash", ""}, {"record", json::object()}};
  int code = spec.value("executor", "fake") == "lockstep" ? lockstep_body(job, spec, dir, &result)
                                                          : fake_body(job);
  result["status"] = code == 0 ? "success" : "failure";
  // A job its own if: skipped (with what it needs, the agent decides that).
  if (code == 0 && result.value("job_result", "") == "skipped") result["status"] = "skipped";
  result["exit_code"] = code;
  if (!write_file(dir / "result.json", result.dump(), 0600)) return 125;
  return 0;
}

}  // namespace lockstep::server
