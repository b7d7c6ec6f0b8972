#pragma once
// The servers of the egress tests' "internet", in the world namespace of a
// NetnsWorld: nginx serving a directory over HTTP (198.51.100.10:80,
// [2001:db8:100::10]:80, and the private 10.77.0.10:80) and HTTPS
// (198.51.100.10:443, a certificate for files.test from the test's own CA),
// and a DNS responder at 198.51.100.53 (files.test, private.test). Plus
// running the lockstep binary in the host namespace with that resolver.
#include <sys/types.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "common/fd.hpp"
#include "common/fs.hpp"
#include "tests/support/lockstep_process.hpp"
#include "tests/support/netns_world.hpp"

namespace lockstep::testing {

inline constexpr const char* kWorldDns = "198.51.100.53";
inline constexpr const char* kWorldOther = "198.51.100.20";  // public, serves too

class World {
 public:
  // `dir`: where the served files, keys and configs go.
  explicit World(const std::filesystem::path& dir);
  ~World();
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  NetnsWorld& net() { return net_; }

  std::filesystem::path www() const { return dir_ / "www"; }
  std::filesystem::path ca() const { return dir_ / "ca.pem"; }
  bool start_nginx();
  void stop_nginx();
  // Requests nginx logged for `path` so far.
  int served(const std::string& path) const;

  // `lockstep args...` in the host namespace, LOCKSTEP_HOME of `home`,
  // resolving through the world's DNS.
  ProcessOutput lockstep(const LockstepHome& home, std::vector<std::string> args,
                         std::vector<std::string> env = {});
  // `argv` in the host namespace with the world's resolver, `env` added to
  // the test's environment; its output once it ended.
  ProcessOutput run_in_host(const std::vector<std::string>& argv,
                            const std::vector<std::string>& env = {});
  // The same, started and left running: the pid, and a pipe of its stdout.
  pid_t start_lockstep(const LockstepHome& home, std::vector<std::string> args, int* out_fd);

  // Lockstep's interfaces and tables in the host namespace, and its IPv4
  // forwarding setting.
  std::vector<std::string> leftovers();
  std::string forwarding();

 private:
  void serve_dns();
  std::filesystem::path dir_;
  NetnsWorld net_;
  std::string error_;
  pid_t nginx_ = -1;
  UniqueFd dns_fd_, stop_;
  std::thread dns_;
};

}  // namespace lockstep::testing
