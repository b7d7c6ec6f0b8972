#pragma once
// `lockstep server`: the HTTP API, UI and webhooks over PostgreSQL, with the
// background work beside them: the planner (deliveries into runs), the
// reaper (lapsed claims, lost leases), the status sender and the poller.
// docs/server.md describes all of it.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "common/error.hpp"
#include "server/planner.hpp"
#include "server/queue.hpp"

namespace lockstep::server {

struct ServerConfig {
  std::string listen = "127.0.0.1:8080";
  std::string db;  // conninfo; empty: the private instance under state_dir
  std::filesystem::path state_dir;
  std::string public_url;  // for links in statuses; empty: http://<listen>
  LeaseTimes lease;
  int64_t max_log_bytes = 64ll << 20;
  size_t max_connections = 256;
  std::filesystem::path admin_token_file;  // empty: <state>/server/admin-token
  std::chrono::milliseconds claim_wait{25'000};
  size_t db_connections = 16;
  // Artifacts older than this many days expire even if their own retention
  // is longer (0: only their own; server/retention.hpp).
  int artifact_retention_days = 0;
  // Dependency caches: an entry unused this long goes, and a repository's
  // least recently used ones beyond this size (GitHub's 7 days and 10 GB).
  int cache_retention_days = 7;
  // Where the planner resolves the images job plans pin (server/planner.hpp).
  ImagePinSettings image_pins;
  int64_t cache_max_bytes = 10ll << 30;
};

class Server {
 public:
  static Result<std::unique_ptr<Server>> start(ServerConfig cfg);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  uint16_t port() const;
  // Serves until stop() (or SIGTERM/SIGINT when handle_signals).
  Status run(bool handle_signals);
  void stop();

  struct Impl;

 private:
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The database the admin verbs and the server use: `db` when given, else the
// private instance under the state dir (started if it is not running; it is
// left running for a server that adopts it).
struct Database {
  std::string conninfo;
  std::unique_ptr<class PgInstance> owned;  // set when this process started it
  ~Database();
  Database();
  Database(Database&&) noexcept;
  Database& operator=(Database&&) noexcept;
};
Result<Database> open_database(const std::string& db, const std::filesystem::path& state_dir);

}  // namespace lockstep::server
