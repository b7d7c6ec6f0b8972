#pragma once
// A private PostgreSQL 15 cluster under one directory, made by Debian's
// initdb and run by pg_ctl: the server's database when no --db is given, and
// the tests' database. It listens on a Unix socket in its own directory only
// (no TCP), with the socket closed to other users, and trusts whoever can
// reach that socket.
//
// PostgreSQL refuses to run as root: run as root, the cluster belongs to the
// `postgres` system user (Debian's package makes it), so every directory on
// the way to `dir` must be searchable by that user; create() says which one
// is not.
#include <filesystem>
#include <string>

#include "common/error.hpp"

namespace lockstep::server {

struct PgInstanceOptions {
  std::filesystem::path dir;  // the cluster (created when empty or missing)
  int port = 5432;            // names the socket file only
  bool durable = true;        // false: fsync off, for tests
};

class PgInstance {
 public:
  // initdb when `dir` holds no cluster, then starts it (or adopts the one
  // already running there after a crash of its owner) and makes the
  // `lockstep` database.
  static Result<PgInstance> start(const PgInstanceOptions& opt);
  PgInstance() = default;
  PgInstance(PgInstance&& o) noexcept;
  PgInstance& operator=(PgInstance&& o) noexcept;
  PgInstance(const PgInstance&) = delete;
  PgInstance& operator=(const PgInstance&) = delete;
  // Stops the cluster (fast shutdown) when this object started it or took
  // it over with own().
  ~PgInstance();
  // Whether start() found the cluster already running (left by a crashed
  // owner, or run by a live server when an admin verb opens it).
  bool adopted() const { return adopted_; }
  void own() { owned_ = true; }

  std::string conninfo() const;
  Status stop();
  // Starts it again after stop() (a database restart).
  Status restart_after_stop();
  const std::filesystem::path& dir() const { return opt_.dir; }

 private:
  PgInstanceOptions opt_;
  bool running_ = false;
  bool adopted_ = false;
  bool owned_ = false;
};

// The directory of Debian's PostgreSQL 15 programs.
std::filesystem::path pg_bindir();

}  // namespace lockstep::server
