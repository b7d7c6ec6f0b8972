#pragma once
// A whole CI service on loopback for one test: its own PostgreSQL (initdb
// and pg_ctl in a temp dir, on a free 127.0.0.1 port), a bare git repository
// with workflows, `lockstep server` and any number of `lockstep agent`s as
// separate processes with their own state dirs. Everything is stopped and
// removed when the fixture ends, pass or fail.
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace lockstep::testing {

struct HttpReply {
  long status = 0;  // 0: no answer
  std::string body;
  nlohmann::json json() const;
};

// A started program whose output goes to a file.
struct Child {
  pid_t pid = -1;
  std::filesystem::path log;
  bool running() const { return pid > 0; }
};

// One line of an agent's trace file ("<event> <job> <attempt> <ns>").
// A workflow of one job, `echo built`, run on every push.
inline constexpr const char* kOneJobWorkflow = R"(name: ci
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: echo built
)";

struct TraceEvent {
  std::string event;
  int64_t job = 0;
  int attempt = 0;
  int64_t ns = 0;
};

// A file's content ("" when it cannot be read).
std::string slurp(const std::filesystem::path& p);

// A forge's commit status API on loopback: records every request and answers
// 500 to the first `failures` of them, 201 after that.
class FakeForge {
 public:
  struct Call {
    std::string method, path, authorization, body;
    long answered = 0;
  };
  explicit FakeForge(int failures);
  ~FakeForge();
  FakeForge(const FakeForge&) = delete;
  FakeForge& operator=(const FakeForge&) = delete;
  uint16_t port() const { return port_; }
  std::vector<Call> calls();

 private:
  void serve();
  int listen_fd_ = -1;
  std::atomic<int> client_{-1};
  uint16_t port_ = 0;
  int failures_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<Call> calls_;
  std::thread thread_;
};

class ServerFixture : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Starts the server (after the database and the repository are set up);
  // a second start reuses the first one's port.
  void start_server(double lease_seconds = 90);
  // The server with no --db (its own PostgreSQL under `home`), as server_.
  void start_server_without_db(const std::filesystem::path& home);
  // Stops and starts the PostgreSQL cluster (fast shutdown: connections cut).
  void restart_postgres();
  // Starts an agent named `name` with the fake executor; its token is made
  // on first use.
  Child& start_agent(const std::string& name, int slots = 1, const std::string& executor = "fake");
  // Imports the busybox test image into agent `name`'s state dir (before it starts).
  void import_busybox(const std::string& name);
  // SIGTERM, then SIGKILL after a grace period; reaped.
  void stop_child(Child& c);
  std::string agent_token(const std::string& name);

  // Commits `files` (path -> content) to `main` of the repository; its sha.
  std::string commit(const std::map<std::string, std::string>& files);
  // A pull request's head: feature.txt holding `text`, committed on a branch
  // off main and pushed to the bare repository only as `ref` (where the
  // forge keeps it); the work tree is back on main. Its sha.
  std::string push_pull_head(const std::string& text, const std::string& ref);
  // A GitHub push webhook for `sha`, signed with `secret` (empty: unsigned).
  HttpReply push_hook(const std::string& delivery, const std::string& sha,
                      const std::string& secret, const std::string& repo = "o/r",
                      const std::string& body_override = "");
  // A GitHub webhook of kind `event` with `body`, signed with the fixture's secret.
  HttpReply github_hook(const std::string& event, const std::string& delivery,
                        const std::string& body);
  // A GitHub pull_request webhook ("opened") of pull request `number` of
  // o/r, from a branch "feature" of the same repository at `head` into main
  // at `base`.
  HttpReply pull_request_hook(const std::string& delivery, int number, const std::string& base,
                              const std::string& head);
  // Runs git in the fixture's working tree (its output).
  std::string git(const std::vector<std::string>& args);
  HttpReply get(const std::string& path);
  // GET /api/runs: the runs, newest first; empty while the server cannot
  // answer (a 503 while its database restarts).
  nlohmann::json runs();
  // A POST to the API with the server's admin token (or `token` when given).
  HttpReply post(const std::string& path, const std::optional<std::string>& token = std::nullopt);
  // The server's database, for checks the API does not offer.
  int64_t count(const std::string& table);

  // Polls `what` every 50 ms until true; false when `limit` passes first (a
  // hang guard, not a timing assertion).
  static bool eventually(const std::function<bool()>& what,
                         std::chrono::seconds limit = std::chrono::seconds(60));
  // The run `id` once it has ended (status success, failure or cancelled).
  nlohmann::json finished_run(int64_t id);
  std::vector<TraceEvent> trace() const;

  std::filesystem::path root_;
  std::string secret_ = "webhook-s3cret";
  std::string db_url_;
  uint16_t pg_port_ = 0;
  uint16_t port_ = 0;
  Child server_;
  std::map<std::string, Child> agents_;
  std::map<std::string, std::string> tokens_;
  std::string parent_sha_ = "0000000000000000000000000000000000000000";

 private:
  Child spawn(const std::vector<std::string>& argv, const std::filesystem::path& home,
              const std::string& log_name);
  void run_ok(const std::vector<std::string>& argv, const std::filesystem::path& cwd = {});
  bool pg_started_ = false;
};

}  // namespace lockstep::testing
