#pragma once
// Configuration of `lockstep mirror serve`: a YAML file (see
// examples/mirror/mirror.yml) overridden by command-line flags.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace lockstep::registry {

struct UpstreamConfig {
  std::string name;       // routing key: "?ns=<name>" and "/v2/<name>/..." ("docker.io")
  std::string url;        // "https://registry-1.docker.io", "http://127.0.0.1:5000"
  bool insecure = false;  // plain HTTP to a non-loopback host
  // Optional self-imposed budget of upstream manifest GETs per window
  // (0: unlimited). When spent, stale tags are served and uncached
  // references get 429 from the mirror itself.
  unsigned manifest_budget = 0;
  std::chrono::seconds budget_window{6 * 3600};
  std::string username, password;  // credentials for the token flow (optional)
};

struct MirrorConfig {
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 5000;  // 0: any free port (tests)
  std::vector<UpstreamConfig> upstreams;
  std::string default_upstream;  // name; the first upstream when empty
  std::chrono::seconds tag_ttl{300};
  uint64_t max_size = 0;  // bytes of blobs kept; 0: unlimited
  std::filesystem::path state_dir;
  std::filesystem::path access_log;  // JSON lines; empty: stderr
  unsigned threads = 0;              // HTTP threads; 0: one per CPU
  unsigned upstream_threads = 8;     // blocking manifest/tag requests
  std::chrono::seconds shutdown_grace{30};
};

// "30s", "5m", "6h", "1d", "250ms" (rounded up to seconds), or bare seconds.
Result<std::chrono::seconds> parse_duration(std::string_view s);
// "512", "10k", "200M", "20G", "1T" (powers of 1024, optional trailing "B"/"iB").
Result<uint64_t> parse_size(std::string_view s);
// "NAME=URL": errors name the flag value.
Result<UpstreamConfig> parse_upstream_flag(std::string_view s);
// "HOST:PORT", "[::1]:PORT" or ":PORT" (all interfaces).
Status parse_listen(std::string_view s, MirrorConfig& cfg);

// Reads a YAML config into cfg (keys absent from the file keep cfg's values).
// Errors name the file and key: "mirror.yml: upstreams[0]: missing 'url'".
Status load_mirror_config(const std::filesystem::path& file, MirrorConfig& cfg);

// Checks what the server needs: at least one upstream, URLs with a scheme, a
// default that names an upstream, unique names.
Status validate_mirror_config(MirrorConfig& cfg);

}  // namespace lockstep::registry
