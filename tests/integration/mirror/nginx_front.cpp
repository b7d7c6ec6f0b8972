#include "nginx_front.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <sstream>
#include <thread>

#include "../registry/local_registry.hpp"
#include "tests/support/quiet_log.hpp"

extern char** environ;

namespace lockstep::registry::testing {

bool Nginx::available() {
  return ::access(kBinary, X_OK) == 0;
}

Result<Nginx> Nginx::start(const NginxOptions& o) {
  Nginx n;
  LS_TRY_ASSIGN(n.dir_, TempDir::create(std::filesystem::temp_directory_path(), "ls-nginx-"));
  n.port_ = free_port();
  const std::string d = n.dir_.path().string();
  std::ostringstream c;
  c << "daemon off;\nmaster_process on;\nworker_processes " << o.workers << ";\nuser root;\n"
    << "pid " << d << "/nginx.pid;\nerror_log " << d << "/error.log warn;\n"
    << "events { worker_connections 1024; }\n"
    << "http {\n"
    << "  access_log " << d << "/access.log;\n"
    << "  client_body_temp_path " << d << "/body;\n  proxy_temp_path " << d << "/proxy;\n"
    << "  fastcgi_temp_path " << d << "/fcgi;\n"
    << "  sendfile on;\n  tcp_nopush on;\n  keepalive_requests 100000;\n";
  if (o.burst)
    c << "  limit_req_zone $server_port zone=lim:1m rate=1r/m;\n  limit_req_status 429;\n";
  c << "  server {\n    listen 127.0.0.1:" << n.port_ << ";\n";
  if (o.proxy_to) {
    c << "    location / {\n      proxy_pass http://127.0.0.1:" << o.proxy_to << ";\n"
      << "      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n"
      << "      proxy_set_header Host $http_host;\n";
    // limit_rate paces what nginx sends; unbuffered proxying would bypass it.
    if (o.limit_rate.empty())
      c << "      proxy_buffering off;\n";
    else
      c << "      limit_rate " << o.limit_rate << ";\n      proxy_max_temp_file_size 1024m;\n";
    if (o.burst) c << "      limit_req zone=lim burst=" << *o.burst << " nodelay;\n";
    c << "      error_page 429 = @limited;\n    }\n"
      << "    location @limited {\n      add_header Retry-After " << o.retry_after << " always;\n"
      << "      default_type application/json;\n"
      << "      return 429 '{\"errors\":[{\"code\":\"TOOMANYREQUESTS\",\"message\":\"slow "
         "down\"}]}';\n    }\n";
  } else {
    c << "    root " << o.static_root.string() << ";\n    location / { }\n";
  }
  c << "  }\n}\n";
  auto conf = n.dir_.path() / "nginx.conf";
  LS_TRY(write_file_atomic(conf, c.str()));
  std::string conf_s = conf.string(), prefix = d + "/";
  char* argv[] = {const_cast<char*>(kBinary), const_cast<char*>("-p"), prefix.data(),
                  const_cast<char*>("-c"),    conf_s.data(),           nullptr};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  std::string log = d + "/stderr.log";
  posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  int rc = ::posix_spawn(&n.pid_, kBinary, &fa, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return fail(Error::from_errno("spawn nginx", rc));
  if (auto st = wait_for_port(n.port_); !st) {
    auto err = read_file(log);
    return fail("nginx did not start: " + (err ? *err : st.error().message()));
  }
  return n;
}

Nginx::Nginx(Nginx&& o) noexcept
    : dir_(std::move(o.dir_)), pid_(std::exchange(o.pid_, -1)), port_(o.port_) {}

Nginx::~Nginx() {
  if (pid_ > 0) {
    // SIGTERM to the master: it stops its workers before it exits.
    ::kill(pid_, SIGTERM);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
}

int Nginx::count(const std::string& needle) const {
  lockstep::testing::wait_until_log_is_still(dir_.path() / "access.log");
  auto text = read_file(dir_.path() / "access.log");
  if (!text) return 0;
  int n = 0;
  std::istringstream in(*text);
  for (std::string line; std::getline(in, line);)
    if (line.find(needle) != std::string::npos) ++n;
  return n;
}

int Nginx::count_status(int status) const {
  return count("\" " + std::to_string(status) + " ");
}

}  // namespace lockstep::registry::testing
