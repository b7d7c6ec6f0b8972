#pragma once
// `lockstep mirror serve`: the read side of the OCI distribution API over
// HTTP/1.1 (keep-alive, a fixed pool of threads, blobs sent with sendfile),
// pulling through to the configured upstreams. Boost.Asio/Beast stay inside
// mirror_server.cpp.
#include <cstdint>
#include <memory>

#include "common/error.hpp"
#include "registry-mirror/mirror_config.hpp"
#include "registry-mirror/mirror_metrics.hpp"

namespace lockstep::registry {

class MirrorServer {
 public:
  // Validates the config, opens the store and binds the listening socket
  // (so port() is known before run()).
  static Result<std::unique_ptr<MirrorServer>> create(MirrorConfig cfg);
  ~MirrorServer();
  MirrorServer(const MirrorServer&) = delete;
  MirrorServer& operator=(const MirrorServer&) = delete;

  uint16_t port() const;
  MirrorMetrics& metrics();

  // Serves until stop() (or SIGTERM/SIGINT when handle_signals). Shutdown
  // stops accepting, lets in-flight responses finish (up to the configured
  // grace), then aborts downloads still running: a partial blob is never
  // published.
  Status run(bool handle_signals);
  // Thread-safe; returns at once, run() returns when shut down.
  void stop();

 private:
  struct Impl;
  explicit MirrorServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace lockstep::registry
