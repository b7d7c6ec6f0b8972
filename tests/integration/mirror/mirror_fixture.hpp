#pragma once
// Shared setup for the mirror's integration tests: a real docker-registry as
// the upstream, the mirror in this process (or as a child process for the
// signal tests), and plain HTTP helpers that act as registry clients.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "../registry/local_registry.hpp"
#include "../registry/test_image.hpp"
#include "cache/blob_store.hpp"
#include "registry-mirror/client.hpp"
#include "registry-mirror/http.hpp"
#include "registry-mirror/mirror_config.hpp"
#include "registry-mirror/mirror_server.hpp"

namespace lockstep::registry::testing {

// The mirror running on its own threads in this process; stopped and joined
// on destruction.
class InProcessMirror {
 public:
  static Result<std::unique_ptr<InProcessMirror>> start(MirrorConfig cfg);
  ~InProcessMirror();
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  MirrorMetrics& metrics() { return server_->metrics(); }

 private:
  std::unique_ptr<MirrorServer> server_;
  std::thread thread_;
  int port_ = 0;
};

// The mirror as a child process (mirror_testd), for SIGKILL and SIGTERM;
// killed and reaped on destruction.
class MirrorProcess {
 public:
  static Result<MirrorProcess> start(const std::vector<std::string>& args);
  MirrorProcess(MirrorProcess&&) noexcept;
  MirrorProcess& operator=(MirrorProcess&&) = delete;
  ~MirrorProcess();
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void kill(int sig);
  // Waits for exit; returns the wait status.
  int wait();

 private:
  MirrorProcess() = default;
  pid_t pid_ = -1;
  int port_ = 0;
};

struct Fetched {
  long status = 0;
  std::string body;
  std::string error;  // transport failure (e.g. a body cut short)
  HttpResponse resp;
};

// One request on a fresh connection.
Fetched http_get(const std::string& url, const std::string& method = "GET",
                 const std::vector<std::string>& headers = {});

// GET with the body hashed as it streams (no copy kept).
struct Streamed {
  long status = 0;
  uint64_t size = 0;
  Digest digest;
  std::string error;
};
Streamed get_hashed(HttpSession& s, const std::string& url);

// An image of `layers` incompressible layers of about `layer_size` bytes.
TestImage big_image(int layers, size_t layer_size, uint64_t seed);
// Config and layers of an image.
std::vector<Digest> blobs_of(const TestImage& img);

class MirrorTest : public ::testing::Test {
 protected:
  void SetUp() override;
  // A mirror in front of `upstream_url` (default: the registry).
  void start_mirror(std::string upstream_url = {},
                    std::chrono::seconds ttl = std::chrono::seconds(300), unsigned budget = 0,
                    uint64_t max_size = 0);
  void push(const std::string& name_tag, const TestImage& img);
  std::string murl(const std::string& path) const { return mirror_->url() + path; }
  cache::BlobStore store() const { return cache::BlobStore(state_.path()); }

  std::optional<LocalRegistry> registry_;
  std::optional<RegistryClient> client_;
  TempDir state_;
  std::unique_ptr<InProcessMirror> mirror_;
};

}  // namespace lockstep::registry::testing
