#include "local_registry.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <sstream>
#include <thread>

#include "common/fd.hpp"
#include "tests/support/quiet_log.hpp"

extern char** environ;

namespace lockstep::registry::testing {

int free_port() {
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0)
    return -1;
  return ntohs(a.sin_port);
}

Status wait_for_port(int port) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < deadline) {
    UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) return {};
    // Polling a starting server: there is nothing to wait on but the port.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return fail("nothing listens on 127.0.0.1:" + std::to_string(port) + " after 15 s");
}

bool LocalRegistry::available() {
  return ::access(kBinary, X_OK) == 0;
}

Result<LocalRegistry> LocalRegistry::start() {
  LocalRegistry r;
  LS_TRY_ASSIGN(r.dir_, TempDir::create(std::filesystem::temp_directory_path(), "ls-registry-"));
  r.port_ = free_port();
  auto cfg = r.dir_.path() / "config.yml";
  std::ostringstream yml;
  yml << "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: "
      << (r.dir_.path() / "data").string() << "\n  delete:\n    enabled: true\n"
      << "http:\n  addr: 127.0.0.1:" << r.port_ << "\n";
  LS_TRY(write_file_atomic(cfg, yml.str()));
  auto log = (r.dir_.path() / "registry.log").string();
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  std::string cfg_s = cfg.string();
  char* argv[] = {const_cast<char*>(kBinary), const_cast<char*>("serve"), cfg_s.data(), nullptr};
  int rc = ::posix_spawn(&r.pid_, kBinary, &fa, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return fail(Error::from_errno("spawn docker-registry", rc));
  LS_TRY(wait_for_port(r.port_));
  return r;
}

LocalRegistry::LocalRegistry(LocalRegistry&& o) noexcept
    : dir_(std::move(o.dir_)), pid_(std::exchange(o.pid_, -1)), port_(o.port_) {}

LocalRegistry::~LocalRegistry() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
}

int LocalRegistry::count_requests(const std::string& needle) const {
  lockstep::testing::wait_until_log_is_still(dir_.path() / "registry.log");
  auto text = read_file(dir_.path() / "registry.log");
  if (!text) return -1;
  int n = 0;
  std::istringstream in(*text);
  for (std::string line; std::getline(in, line);)
    if (line.find(needle) != std::string::npos && line.find("HTTP/1.1\" ") != std::string::npos)
      ++n;
  return n;
}

}  // namespace lockstep::registry::testing
