#pragma once
// Debian's nginx started by a test on a free loopback port with a config the
// test writes: a reverse proxy in front of an upstream (optionally with
// limit_rate or limit_req returning 429), or a static file server with
// sendfile (the benchmark's ceiling). Stopped and reaped on destruction.
#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>

#include "common/error.hpp"
#include "common/fs.hpp"

namespace lockstep::registry::testing {

struct NginxOptions {
  int proxy_to = 0;                   // upstream port; 0 serves static_root instead
  std::filesystem::path static_root;  // served at / with sendfile
  std::string limit_rate;             // "4m": bytes per second per response
  // limit_req: requests beyond `burst` (rate 1 per minute) get 429 with
  // Retry-After: retry_after.
  std::optional<int> burst;
  int retry_after = 30;
  int workers = 1;
};

class Nginx {
 public:
  static constexpr const char* kBinary = "/usr/sbin/nginx";
  static bool available();
  static Result<Nginx> start(const NginxOptions& o);
  Nginx(Nginx&&) noexcept;
  Nginx& operator=(Nginx&&) = delete;
  ~Nginx();

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  pid_t pid() const { return pid_; }  // the master (its workers are its children)
  // Access-log lines containing needle (e.g. "\"GET /v2/app/blobs/").
  int count(const std::string& needle) const;
  // Access-log lines with this status after the request line.
  int count_status(int status) const;

 private:
  Nginx() = default;
  TempDir dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace lockstep::registry::testing
