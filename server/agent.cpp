#include "server/agent.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include <cstring>
#include <set>

#include "cache/artifacts.hpp"
#include "common/digest.hpp"
#include "common/fd.hpp"
#include "common/fs.hpp"
#include "executor/network.hpp"
#include "registry-mirror/http.hpp"
#include "server/crypto.hpp"

namespace lockstep::server {

using nlohmann::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

int64_t mono_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

struct Reply {
  long status = 0;  // 0: no answer (transport failure)
  json body;
  std::string error;
};

class Client {
 public:
  Client(const AgentConfig& cfg) : cfg_(cfg) {}
  Reply post(const std::string& what, const json& body, long timeout_ms) {
    return send("/api/agent/" + what, body.dump(), timeout_ms);
  }
  Reply send(const std::string& path, const std::string& body, long timeout_ms) {
    registry::HttpRequest req;
    req.body = body;
    return perform(path, std::move(req), timeout_ms);
  }
  // POSTs `path` and writes a 200's body to `fd`.
  Reply fetch(const std::string& path, int fd, long timeout_ms) {
    registry::HttpRequest req;
    req.on_data = [fd](const char* p, size_t n) -> Status {
      while (n > 0) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return fail_errno("write");
        p += w;
        n -= static_cast<size_t>(w);
      }
      return {};
    };
    return perform(path, std::move(req), timeout_ms);
  }

 private:
  // POSTs `req` to `path` with the agent's token; a JSON answer in `body`
  // (empty when streamed), the server's error text for a status of 300 on.
  Reply perform(const std::string& path, registry::HttpRequest req, long timeout_ms) {
    req.method = "POST";
    req.url = cfg_.server + path;
    req.headers = {"Authorization: Bearer " + cfg_.token, "Content-Type: application/json"};
    req.timeout_ms = timeout_ms;
    Reply out;
    auto r = http_.perform(req);
    if (!r) {
      out.error = r.error().message();
      return out;
    }
    out.status = r->status;
    out.body = json::parse(r->body.empty() ? "{}" : r->body, nullptr, false);
    if (!out.body.is_object()) out.body = json::object();
    if (out.status >= 300)
      out.error = out.body.value("error", "HTTP " + std::to_string(out.status));
    return out;
  }

  const AgentConfig& cfg_;
  registry::HttpSession http_;
};

// Forks the job supervisors. It is forked from the agent before the agent
// starts any thread, so it is single-threaded and a fork of it is as safe as
// a new process; that fork costs about a millisecond where an exec of the
// lockstep binary costs about ten (it maps some sixty libraries), the largest
// cost of a short job. Requests come over a SOCK_SEQPACKET socket: spawn DIR
// (with the read end of the deadline pipe, SCM_RIGHTS), answered with the
// supervisor's pid; reap PID once the agent saw it exit, answered with its
// wait status. Until reaped a supervisor stays a zombie, so its pid and
// process group id are not reused while the agent may still signal them. The
// launcher ends when the agent's end of the socket closes (the agent exited
// or died); a supervisor still sees its deadline pipe close then, as before.
class Launcher {
 public:
  static Result<std::unique_ptr<Launcher>> start();
  ~Launcher() {
    sock_.reset();
    int st = 0;
    if (pid_ > 0) ::waitpid(pid_, &st, 0);
  }
  Launcher(const Launcher&) = delete;
  Launcher& operator=(const Launcher&) = delete;

  // A supervisor for the job in `dir` with `deadline_r` as its fd 3.
  Result<pid_t> spawn(const fs::path& dir, int deadline_r) {
    Request req{'s', 0, {}};
    std::string d = dir.string();
    if (d.size() >= sizeof req.dir) return fail("job directory path too long: " + d);
    std::memcpy(req.dir, d.c_str(), d.size() + 1);
    LS_TRY_ASSIGN(Reply rep, call(req, deadline_r));
    if (rep.err) return fail(Error::from_errno("start job supervisor", rep.err));
    return static_cast<pid_t>(rep.value);
  }
  // The wait status of a supervisor that has exited (its pidfd is readable).
  int reap(pid_t pid) {
    Request req{'r', pid, {}};
    auto rep = call(req, -1);
    return rep ? rep->value : -1;
  }

 private:
  struct Request {
    char op;  // 's' spawn, 'r' reap
    int32_t pid;
    char dir[4096];
  };
  struct Reply {
    int32_t value;  // pid or wait status
    int32_t err;    // errno of a failed fork
  };
  Launcher(UniqueFd sock, pid_t pid) : sock_(std::move(sock)), pid_(pid) {}

  Result<Reply> call(const Request& req, int fd) {
    std::lock_guard lk(mu_);
    iovec iov{const_cast<Request*>(&req), sizeof req};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int))] = {};
    if (fd >= 0) {
      m.msg_control = ctl;
      m.msg_controllen = sizeof ctl;
      cmsghdr* c = CMSG_FIRSTHDR(&m);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    ssize_t n;
    do n = ::sendmsg(sock_.get(), &m, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n != static_cast<ssize_t>(sizeof req)) return fail_errno("job supervisor launcher");
    Reply rep{};
    do n = ::recv(sock_.get(), &rep, sizeof rep, 0);
    while (n < 0 && errno == EINTR);
    if (n != static_cast<ssize_t>(sizeof rep))
      return fail(n < 0 ? Error::from_errno("job supervisor launcher", errno)
                        : Error("the job supervisor launcher is gone"));
    return rep;
  }

  [[noreturn]] static void serve(int sock);
  [[noreturn]] static void supervise(const char* dir, int deadline_r);

  std::mutex mu_;
  UniqueFd sock_;
  pid_t pid_ = -1;
};

Result<std::unique_ptr<Launcher>> Launcher::start() {
  // fork() is safe only while this process has one thread.
  std::error_code ec;
  auto tasks = std::distance(fs::directory_iterator("/proc/self/task", ec), {});
  if (ec || tasks != 1)
    return fail("the job supervisor launcher must start before any other thread");
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    return fail_errno("socketpair");
  UniqueFd mine(sv[0]), theirs(sv[1]);
  std::fflush(nullptr);  // nothing buffered is written twice
  pid_t agent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return fail_errno("fork the job supervisor launcher");
  if (pid == 0) {
    mine.reset();
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != agent) ::_exit(0);
    serve(theirs.release());
  }
  return std::unique_ptr<Launcher>(new Launcher(std::move(mine), pid));
}

void Launcher::serve(int sock) {
  // Only the socket (as fd 3) and the standard fds stay open.
  if (sock != 3) {
    ::dup2(sock, 3);
    ::close(sock);
    sock = 3;
  }
  ::syscall(SYS_close_range, 4, ~0U, 0);
  for (;;) {
    Request req{};
    iovec iov{&req, sizeof req};
    alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int))] = {};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl;
    m.msg_controllen = sizeof ctl;
    ssize_t n = ::recvmsg(sock, &m, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) ::_exit(0);  // the agent is gone
    int fd = -1;
    if (cmsghdr* c = CMSG_FIRSTHDR(&m); c && c->cmsg_type == SCM_RIGHTS)
      std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
    Reply rep{};
    if (req.op == 's' && fd >= 0) {
      req.dir[sizeof req.dir - 1] = 0;
      pid_t c = ::fork();
      if (c == 0) {
        ::close(sock);
        supervise(req.dir, fd);
      }
      if (c < 0)
        rep.err = errno;
      else
        rep.value = c;
    } else if (req.op == 'r') {
      int st = 0;
      while (::waitpid(req.pid, &st, 0) < 0 && errno == EINTR) {
      }
      rep.value = st;
    } else {
      rep.err = EINVAL;
    }
    if (fd >= 0) ::close(fd);
    (void)!::send(sock, &rep, sizeof rep, MSG_NOSIGNAL);
  }
}

void Launcher::supervise(const char* dir, int deadline_r) {
  // What the exec'd supervisor had: its own session and process group (the
  // agent kills the group; a signal to the agent's group does not reach the
  // job), no signal blocked, every disposition the default, stdin
  // /dev/null, stdout and stderr to supervisor.err, the deadline on fd 3.
  ::setsid();
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig = 1; sig < NSIG; ++sig)
    if (sig != SIGKILL && sig != SIGSTOP) ::signal(sig, SIG_DFL);
  ::dup2(deadline_r, 3);
  ::close(deadline_r);
  int in = ::open("/dev/null", O_RDONLY);
  ::dup2(in, 0);
  ::close(in);
  std::string err = std::string(dir) + "/supervisor.err";
  int out = ::open(err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  ::dup2(out, 1);
  ::dup2(out, 2);
  ::close(out);
  ::syscall(SYS_close_range, 4, ~0U, 0);
  int rc = run_supervisor(dir);
  std::fflush(nullptr);
  ::_exit(rc);
}

// A running supervisor and the pipe that carries its deadline.
struct Supervisor {
  Launcher* launcher = nullptr;
  pid_t pid = -1;
  UniqueFd pidfd;
  UniqueFd deadline_w;
  bool exited = false;
  int wait_status = 0;
  int64_t grace_ms = 2'000;  // between SIGTERM and SIGKILL

  void set_deadline(int64_t ns) {
    if (deadline_w) (void)!::write(deadline_w.get(), &ns, sizeof ns);
  }
  bool poll_exit() { return wait_exit(0); }
  // Stops the job: SIGTERM to the supervisor's process group (the job and
  // everything it started; `lockstep run` stops its containers on it), and
  // SIGKILL to whatever of the group is left `grace_ms` later.
  void kill_now() {
    if (pid <= 0 || exited) return;
    ::kill(-pid, SIGTERM);
    for (int64_t i = 0; i < grace_ms / 20; ++i) {
      poll_exit();
      if (::kill(-pid, 0) != 0 && errno == ESRCH) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ::kill(-pid, SIGKILL);
    wait_exit(-1);
  }
  ~Supervisor() { kill_now(); }

 private:
  // Within `ms` (-1: until it does) the supervisor exits; then it is reaped.
  bool wait_exit(int ms) {
    if (exited) return true;
    pollfd p{pidfd.get(), POLLIN, 0};
    int r;
    do r = ::poll(&p, 1, ms);
    while (r < 0 && errno == EINTR);
    if (r > 0) {
      wait_status = launcher->reap(pid);
      exited = true;
    }
    return exited;
  }
};

Result<std::unique_ptr<Supervisor>> spawn_supervisor(Launcher& launcher, const fs::path& dir,
                                                     int64_t deadline) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return fail_errno("pipe");
  UniqueFd r(p[0]);
  auto sp = std::make_unique<Supervisor>();
  Supervisor& s = *sp;
  s.launcher = &launcher;
  s.deadline_w.reset(p[1]);
  LS_TRY_ASSIGN(s.pid, launcher.spawn(dir, r.get()));
  s.pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, s.pid, 0)));
  if (!s.pidfd) {
    auto e = fail_errno("pidfd_open of the job supervisor");
    // Not reaped yet, so both ids are still its own (it may not have made
    // its process group yet).
    ::kill(s.pid, SIGKILL);
    ::kill(-s.pid, SIGKILL);
    s.exited = true;
    s.wait_status = launcher.reap(s.pid);
    return e;
  }
  s.set_deadline(deadline);
  return sp;
}

class Slot {
 public:
  Slot(const AgentConfig& cfg, int index, std::atomic<bool>& stop, Launcher& launcher)
      : cfg_(cfg), index_(index), stop_(stop), launcher_(launcher), client_(cfg) {}

  void run() {
    int backoff_ms = 200;
    while (!stop_) {
      Reply r = client_.post("claim",
                             {{"name", cfg_.name},
                              {"slots", cfg_.slots},
                              {"version", "lockstep-agent/1"},
                              {"wait_ms", 5'000}},
                             30'000);
      if (r.status == 204) continue;
      if (r.status == 401) {
        spdlog::error("agent: the server refused the token: {}", r.error);
        stop_ = true;
        fatal = true;
        return;
      }
      if (r.status != 200) {
        spdlog::warn("agent: claim: {}", r.error);
        sleep_ms(backoff_ms);
        backoff_ms = std::min(backoff_ms * 2, 5000);
        continue;
      }
      backoff_ms = 200;
      run_job(r.body);
    }
  }

  bool fatal = false;

 private:
  void sleep_ms(int ms) {
    for (int i = 0; i < ms / 20 && !stop_; ++i) std::this_thread::sleep_for(20ms);
  }

  void run_job(const json& claim) {
    int64_t job = claim.value("job", int64_t{0});
    int attempt = claim.value("attempt", 0);
    int64_t renew_ns = claim.value("renew_ms", int64_t{15'000}) * 1'000'000;
    int64_t give_up_ns = claim.value("give_up_ms", int64_t{40'000}) * 1'000'000;
    std::string tag = "job " + std::to_string(job) + " attempt " + std::to_string(attempt);
    fs::path dir =
        cfg_.state_dir / "agent" / "jobs" / (std::to_string(job) + "-" + std::to_string(attempt));
    // The claim is confirmed before anything of the job runs: until `start`
    // is acknowledged no lease exists, so nothing may run. The kill deadline
    // is measured from the sending of the request the server acknowledged:
    // the server stored its time later than that.
    int64_t deadline = 0;
    for (int64_t until = mono_ns() + give_up_ns;;) {
      if (stop_) return give_back(job, attempt, "agent stopping");
      int64_t sent = mono_ns();
      if (sent >= until) return give_back(job, attempt, "could not confirm the claim in time");
      Reply r = client_.post("start", {{"job", job}, {"attempt", attempt}}, timeout(until));
      if (r.status == 409) {
        spdlog::warn("agent: {}: the claim lapsed before it was confirmed (409: {})", tag, r.error);
        return;
      }
      if (r.status == 200) {
        deadline = sent + give_up_ns;
        break;
      }
      sleep_ms(100);
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
    fs::create_directories(dir, ec);
    ::chmod(dir.c_str(), 0700);
    // The artifacts earlier jobs of the run uploaded (docs/server.md,
    // "Artifacts"): their files into this host's store, their manifests for
    // `lockstep run --import-artifacts`.
    std::set<std::string> imported;
    if (std::string why = import_artifacts(claim.value("artifacts", json::array()),
                                           dir / "artifacts", &imported, deadline);
        !why.empty()) {
      spdlog::warn("agent: {}: {}", tag, why);
      give_back(job, attempt, why);
      cleanup(dir);
      return;
    }
    json spec = {{"job", job},
                 {"attempt", attempt},
                 {"import_artifacts", imported.empty() ? "" : (dir / "artifacts").string()},
                 {"plan", claim.value("plan", json::object())},
                 {"needs", claim.value("needs", json::object())},
                 {"pins", claim.value("pins", json::object())},
                 {"secrets", claim.value("secrets", json::object())},
                 {"vars", claim.value("vars", json::object())},
                 {"first_deadline_ns", deadline},
                 // Time the job gets between SIGTERM and SIGKILL: taken from
                 // the margin between giving up (4L/9) and the server's
                 // declaring the attempt lost (L), so never more than L/9.
                 {"grace_ms", std::min<int64_t>(2'000, give_up_ns / 4'000'000)},
                 {"executor", cfg_.executor},
                 // The server's shared dependency caches (docs/server.md,
                 // "Caches"), asked by the job with this agent's token.
                 {"cache_server", {{"url", cfg_.server}, {"token", cfg_.token}}},
                 {"platforms", cfg_.platforms},
                 {"trace", cfg_.trace.string()}};
    // The job's directory holds scratch only (job.json, needs.json,
    // secrets.env, result.json), written without fsync: if this host
    // crashes, the lease lapses and the server runs a new attempt, so
    // nothing in it has to survive a crash.
    if (auto w = write_file(dir / "job.json", spec.dump(), 0600); !w) {
      spdlog::error("agent: {}: {}", tag, w.error().message());
      give_back(job, attempt, "could not write the job's files");
      return;
    }
    auto spawned = spawn_supervisor(launcher_, dir, deadline);
    if (!spawned) {
      spdlog::error("agent: {}: {}", tag, spawned.error().message());
      give_back(job, attempt, spawned.error().message());
      return;
    }
    std::unique_ptr<Supervisor> sup = std::move(*spawned);
    sup->grace_ms = spec.value("grace_ms", int64_t{2'000});
    spdlog::info("agent: slot {} runs {}", index_, tag);
    bool cancelled = false, truncated = false, uploaded = false;
    int64_t sent_bytes = 0;
    int64_t next_renew = mono_ns() + renew_ns;
    auto fenced = [&](const Reply& r) {
      if (r.status != 409) return false;
      spdlog::warn("agent: {} was fenced (409: {}); stopping it", tag, r.error);
      sup->kill_now();
      return true;
    };
    for (;;) {
      int64_t now = mono_ns();
      if (now >= deadline) {
        // Our lease is gone: the supervisor killed the job (or does now).
        sup->kill_now();
        spdlog::warn("agent: {}: could not renew the lease in time; job stopped", tag);
        Reply r = client_.post(
            "abandon",
            {{"job", job}, {"attempt", attempt}, {"reason", "lease not renewed in time"}}, 5'000);
        if (r.status == 409) spdlog::warn("agent: {} was fenced (409: {})", tag, r.error);
        cleanup(dir);
        return;
      }
      if (stop_) {
        sup->kill_now();
        client_.post("abandon", {{"job", job}, {"attempt", attempt}, {"reason", "agent stopping"}},
                     5'000);
        cleanup(dir);
        return;
      }
      // Renew.
      if (now >= next_renew) {
        int64_t sent = mono_ns();
        Reply r = client_.post("renew", {{"job", job}, {"attempt", attempt}}, timeout(deadline));
        if (fenced(r)) return cleanup(dir);
        if (r.status == 200) {
          deadline = sent + give_up_ns;
          sup->set_deadline(deadline);
          next_renew = sent + renew_ns;
          if (r.body.value("cancel", false) && !cancelled) {
            spdlog::info("agent: {} cancelled", tag);
            cancelled = true;
            sup->kill_now();
          }
        } else {
          next_renew = mono_ns() + std::min<int64_t>(renew_ns, 500'000'000);
        }
      }
      bool done = sup->poll_exit();
      // Log: whatever the spool holds beyond what the server has.
      if (!truncated) {
        auto st = send_log(dir / "log", job, attempt, &sent_bytes, deadline);
        if (st == LogSend::kFenced) {
          spdlog::warn("agent: {} was fenced (409) while sending its log; stopping it", tag);
          sup->kill_now();
          return cleanup(dir);
        }
        if (st == LogSend::kTooLarge) truncated = true;
        if (st == LogSend::kFailed) {
          sleep_ms(100);
          continue;
        }
      }
      if (done) {
        json result = {{"status", "failure"}, {"exit_code", -1}};
        if (auto t = read_file(dir / "result.json")) {
          json j = json::parse(*t, nullptr, false);
          if (!j.is_discarded()) result = j;
        } else if (!cancelled) {
          result["reason"] = "the job supervisor ended without a result (wait status " +
                             std::to_string(sup->wait_status) + ")";
        }
        if (cancelled) result["status"] = "cancelled";
        // What the job uploaded goes to the server before the job ends, so
        // that the jobs that need it find it.
        if (!uploaded && !result.value("run_id", std::string()).empty()) {
          bool was_fenced = false;
          std::string why = upload_artifacts(result["run_id"].get<std::string>(), imported, job,
                                             attempt, deadline, &was_fenced);
          if (was_fenced) {
            spdlog::warn("agent: {} was fenced (409) while sending its artifacts", tag);
            return cleanup(dir);
          }
          if (!why.empty()) {
            spdlog::warn("agent: {}: {}", tag, why);
            if (mono_ns() < deadline && why.find("(retry)") != std::string::npos) {
              sleep_ms(500);
              continue;
            }
            result["status"] = "failure";
            result["reason"] = why;
          }
          uploaded = true;
        }
        json fin = {{"job", job},
                    {"attempt", attempt},
                    {"status", result.value("status", "failure")},
                    {"exit_code", result.value("exit_code", -1)},
                    {"env_hash", result.value("env_hash", "")},
                    {"record", result.value("record", json::object())},
                    {"run_record", result.value("run_record", json())},
                    {"reason", result.value("reason", "")},
                    {"log_bytes", sent_bytes}};
        if (fin["env_hash"] == "") fin["env_hash"] = sha256_hex(claim.value("plan", json()).dump());
        Reply r = client_.post("finish", fin, timeout(deadline));
        if (fenced(r)) return cleanup(dir);
        if (r.status == 200) {
          spdlog::info("agent: {} finished: {}", tag, fin["status"].get<std::string>());
          return cleanup(dir);
        }
        sleep_ms(100);  // the server is unreachable or busy: try again
        continue;
      }
      // Wait for the supervisor or the next tick.
      wait_child(sup->pid, 100);
    }
  }

  // "" when every artifact in `manifests` is here (files in the store,
  // manifests written into `into`); else why not.
  std::string import_artifacts(const json& manifests, const fs::path& into,
                               std::set<std::string>* names, int64_t deadline) {
    if (!manifests.is_array() || manifests.empty()) return "";
    cache::ArtifactStore store(cfg_.state_dir);
    std::error_code ec;
    fs::create_directories(into, ec);
    for (const auto& m : manifests) {
      const std::string name = m.is_object() ? m.value("name", "") : "";
      if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos)
        return "the server sent an artifact without a usable name";
      for (const auto& f : m.value("files", json::array())) {
        auto d = Digest::parse(f.is_object() ? f.value("digest", "") : "");
        if (!d) return "artifact '" + name + "': " + std::string(d.error().message());
        if (fs::exists(store.file_path(*d), ec)) continue;
        const fs::path part = into / (".part-" + d->hex());
        UniqueFd out(::open(part.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        if (!out) return "create " + part.string() + ": " + std::strerror(errno);
        Reply r =
            client_.fetch("/api/agent/blob-get?sha=" + d->hex(), out.get(), timeout(deadline));
        if (r.status != 200) {
          ::unlink(part.c_str());
          return "fetch file " + d->str() + " of artifact '" + name + "': " + r.error;
        }
        ::lseek(out.get(), 0, SEEK_SET);
        auto put = store.put_file(*d, out.get());
        ::unlink(part.c_str());
        if (!put) return "artifact '" + name + "': " + put.error().message();
      }
      if (auto w = write_file_atomic(into / (name + ".json"), m.dump()); !w)
        return w.error().message();
      names->insert(name);
    }
    return "";
  }

  // Sends the artifacts the run `run_id` uploaded (not those it imported):
  // the files the server lacks, in chunks, then each manifest. "" when
  // done; a transport failure or a busy server ends in "(retry)".
  std::string upload_artifacts(const std::string& run_id, const std::set<std::string>& imported,
                               int64_t job, int attempt, int64_t deadline, bool* fenced) {
    cache::ArtifactStore store(cfg_.state_dir);
    auto list = store.list(run_id);
    if (!list) return "list the job's artifacts: " + list.error().message();
    auto failed = [&](const std::string& what, const Reply& r) {
      if (r.status == 409) *fenced = true;
      bool again = r.status == 0 || r.status >= 500;
      return what + ": " + r.error + (again ? " (retry)" : "");
    };
    const std::string at = "job=" + std::to_string(job) + "&attempt=" + std::to_string(attempt);
    for (const auto& a : *list) {
      if (imported.count(a.name)) continue;
      json shas = json::array();
      for (const auto& f : a.files) shas.push_back(f.digest.hex());
      Reply r = client_.post("blobs-missing", {{"job", job}, {"attempt", attempt}, {"shas", shas}},
                             timeout(deadline));
      if (r.status != 200) return failed("send artifact '" + a.name + "'", r);
      for (const auto& h : r.body.value("missing", json::array())) {
        const std::string hex = h.is_string() ? h.get<std::string>() : "";
        auto d = Digest::parse("sha256:" + hex);
        if (!d) return "the server named a file that is no sha256: " + hex;
        UniqueFd in(::open(store.file_path(*d).c_str(), O_RDONLY | O_CLOEXEC));
        if (!in) return "open " + store.file_path(*d).string() + ": " + std::strerror(errno);
        std::string chunk(8 << 20, '\0');
        int64_t off = 0;
        for (;;) {
          ssize_t n = ::pread(in.get(), chunk.data(), chunk.size(), off);
          if (n < 0) return "read " + store.file_path(*d).string() + ": " + std::strerror(errno);
          bool last = static_cast<size_t>(n) < chunk.size();
          Reply u = client_.send("/api/agent/blob?" + at + "&sha=" + hex +
                                     "&offset=" + std::to_string(off) + (last ? "&last=1" : ""),
                                 chunk.substr(0, static_cast<size_t>(n)), timeout(deadline));
          if (u.status != 200) return failed("send file " + d->str(), u);
          off += n;
          if (last) break;
        }
      }
      auto manifest = store.manifest_json(run_id, a.name);
      if (!manifest) return manifest.error().message();
      Reply m = client_.post(
          "artifact", {{"job", job}, {"attempt", attempt}, {"manifest", json::parse(*manifest)}},
          timeout(deadline));
      if (m.status != 200) return failed("send artifact '" + a.name + "'", m);
    }
    return "";
  }

  enum class LogSend { kOk, kFenced, kTooLarge, kFailed };

  LogSend send_log(const fs::path& spool, int64_t job, int attempt, int64_t* sent,
                   int64_t deadline) {
    UniqueFd fd(::open(spool.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return LogSend::kOk;
    std::string buf(256 * 1024, '\0');
    for (;;) {
      ssize_t n = ::pread(fd.get(), buf.data(), buf.size(), *sent);
      if (n <= 0) return LogSend::kOk;
      Reply r = client_.send("/api/agent/log?job=" + std::to_string(job) + "&attempt=" +
                                 std::to_string(attempt) + "&offset=" + std::to_string(*sent),
                             buf.substr(0, static_cast<size_t>(n)), timeout(deadline));
      if (r.status == 409) return LogSend::kFenced;
      if (r.status == 413) {
        *sent = r.body.value("log_bytes", *sent);
        return LogSend::kTooLarge;
      }
      if (r.status == 400 && r.body.contains("log_bytes")) {
        *sent = r.body.value("log_bytes", *sent);  // the server holds less: resend from there
        continue;
      }
      if (r.status != 200) return LogSend::kFailed;
      *sent = r.body.value("log_bytes", *sent + n);
    }
  }

  // Milliseconds until the deadline, at least 100: no request outlives the lease.
  static long timeout(int64_t deadline) {
    return static_cast<long>(std::max<int64_t>(100, (deadline - mono_ns()) / 1'000'000));
  }

  static void wait_child(pid_t pid, int ms) {
    int pfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (pfd < 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      return;
    }
    UniqueFd owned(pfd);
    pollfd p{pfd, POLLIN, 0};
    ::poll(&p, 1, ms);
  }

  void give_back(int64_t job, int attempt, const std::string& why) {
    client_.post("abandon", {{"job", job}, {"attempt", attempt}, {"reason", why}}, 5'000);
  }

  void cleanup(const fs::path& dir) {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  const AgentConfig& cfg_;
  int index_;
  std::atomic<bool>& stop_;
  Launcher& launcher_;
  Client client_;
};

}  // namespace

Status run_agent(const AgentConfig& cfg_in, std::atomic<bool>& stop, bool handle_signals) {
  AgentConfig cfg = cfg_in;
  while (!cfg.server.empty() && cfg.server.back() == '/') cfg.server.pop_back();
  if (cfg.name.empty()) {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    cfg.name = host;
  }
  if (cfg.executor != "lockstep" && cfg.executor != "fake")
    return fail("--executor must be 'lockstep' or 'fake', not '" + cfg.executor + "'",
                ErrorKind::kUsage);
  std::error_code ec;
  fs::create_directories(cfg.state_dir / "agent" / "jobs", ec);
  if (ec) return fail("create " + (cfg.state_dir / "agent").string() + ": " + ec.message());
  // Each job's `lockstep run` takes over the egress network (bridge, nftables
  // table) an earlier job of this agent's left, instead of making and
  // removing its own: that was most of an agent's cost per job
  // (docs/server.md, "Agents"). Set before any thread starts; every job's
  // process inherits it.
  if (cfg.executor == "lockstep")
    ::setenv("LOCKSTEP_NETWORK_KEEPER", std::to_string(::getpid()).c_str(), 1);
  // Before any thread starts (see Launcher).
  LS_TRY_ASSIGN(auto launcher, Launcher::start());
  std::thread sig;
  if (handle_signals) {
    sig = std::thread([&stop] {
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, SIGTERM);
      sigaddset(&set, SIGINT);
      timespec ts{0, 100'000'000};
      while (!stop) {
        if (sigtimedwait(&set, nullptr, &ts) > 0) {
          spdlog::info("agent: stopping; running jobs are given back");
          stop = true;
        }
      }
    });
  }
  std::vector<std::unique_ptr<Slot>> slots;
  std::vector<std::thread> threads;
  for (int i = 0; i < std::max(1, cfg.slots); ++i) {
    slots.push_back(std::make_unique<Slot>(cfg, i, stop, *launcher));
    threads.emplace_back([s = slots.back().get()] { s->run(); });
  }
  spdlog::info("agent: {} with {} slot(s) serving {}", cfg.name, cfg.slots, cfg.server);
  for (auto& t : threads) t.join();
  stop = true;
  if (sig.joinable()) sig.join();
  if (cfg.executor == "lockstep") {
    if (auto r = executor::release_kept_networks(::getpid()); !r)
      spdlog::warn("agent: {}", r.error().message());
  }
  for (const auto& s : slots)
    if (s->fatal) return fail("the server refused the agent's token", ErrorKind::kUsage);
  return {};
}

}  // namespace lockstep::server
