// The mirror as a child process for the signal tests and the benchmark:
// mirror_testd STATE_DIR UPSTREAM_URL [TTL_SECONDS]. Listens on a free
// loopback port and prints "listening on port N". SIGTERM shuts it down
// gracefully (exit 0).
#include <cstdio>
#include <string>

#include "common/log.hpp"
#include "registry-mirror/mirror_server.hpp"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: mirror_testd STATE_DIR UPSTREAM_URL [TTL_SECONDS]\n");
    return 2;
  }
  // Logs go to stderr: the parent stops reading stdout after the port line.
  lockstep::setup_logging(lockstep::Verbosity::kVerbose);
  lockstep::registry::MirrorConfig cfg;
  cfg.listen_port = 0;
  cfg.state_dir = argv[1];
  lockstep::registry::UpstreamConfig u;
  u.name = "local";
  u.url = argv[2];
  cfg.upstreams.push_back(u);
  if (argc > 3) cfg.tag_ttl = std::chrono::seconds(std::stoi(argv[3]));
  cfg.access_log = cfg.state_dir / "access.log";
  auto server = lockstep::registry::MirrorServer::create(cfg);
  if (!server) {
    std::fprintf(stderr, "mirror_testd: %s\n", server.error().message().c_str());
    return 1;
  }
  std::printf("listening on port %u\n", (*server)->port());
  std::fflush(stdout);
  auto st = (*server)->run(true);
  return st ? 0 : 1;
}
