#pragma once
// Test fixtures with real parts: Debian's docker-registry started on a free
// loopback port with its own storage dir, stopped (and reaped) on destruction.
#include <sys/types.h>

#include <filesystem>
#include <string>

#include "common/error.hpp"
#include "common/fs.hpp"

namespace lockstep::registry::testing {

// A loopback port that was free a moment ago (bind to port 0, read, close).
int free_port();

class LocalRegistry {
 public:
  static constexpr const char* kBinary = "/usr/bin/docker-registry";
  static bool available();
  // Starts the registry and waits until /v2/ answers.
  static Result<LocalRegistry> start();
  LocalRegistry(LocalRegistry&&) noexcept;
  LocalRegistry& operator=(LocalRegistry&&) = delete;
  ~LocalRegistry();

  int port() const { return port_; }
  std::string domain() const { return "127.0.0.1:" + std::to_string(port_); }
  // How many access-log lines contain `needle` (e.g. "GET /v2/app/blobs/").
  int count_requests(const std::string& needle) const;

 private:
  LocalRegistry() = default;
  TempDir dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// Waits until something accepts TCP connections on 127.0.0.1:port.
Status wait_for_port(int port);

}  // namespace lockstep::registry::testing
