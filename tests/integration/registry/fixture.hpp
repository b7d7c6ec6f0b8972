#pragma once
// Shared setup for the registry integration tests: a running docker-registry,
// a fresh state dir with an ImageStore, and a client that reads no user
// credentials and retries quickly.
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>

#include "cache/image_store.hpp"
#include "local_registry.hpp"
#include "registry-mirror/client.hpp"
#include "test_image.hpp"

namespace lockstep::registry::testing {

inline ClientOptions quick_options() {
  ClientOptions o;
  o.credentials = CredentialStore{};
  o.max_attempts = 3;
  o.backoff_initial = std::chrono::milliseconds(10);
  o.backoff_max = std::chrono::milliseconds(50);
  return o;
}

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!LocalRegistry::available()) GTEST_SKIP() << "needs " << LocalRegistry::kBinary;
    auto r = LocalRegistry::start();
    ASSERT_TRUE(r) << r.error().message();
    registry_.emplace(std::move(*r));
    auto s = TempDir::create(std::filesystem::temp_directory_path(), "ls-state-");
    ASSERT_TRUE(s) << s.error().message();
    state_ = std::move(*s);
    images_ = std::make_unique<cache::ImageStore>(state_.path());
    auto c = RegistryClient::create(quick_options());
    ASSERT_TRUE(c) << c.error().message();
    client_.emplace(std::move(*c));
  }

  Reference ref(const std::string& name_and_tag) const {
    return ref_at(registry_->domain(), name_and_tag);
  }
  static Reference ref_at(const std::string& domain, const std::string& name_and_tag) {
    auto r = Reference::parse(domain + "/" + name_and_tag);
    EXPECT_TRUE(r) << r.error().message();
    return *r;
  }

  std::optional<LocalRegistry> registry_;
  TempDir state_;
  std::unique_ptr<cache::ImageStore> images_;
  std::optional<RegistryClient> client_;
};

// A read-only overlay of the layer dirs (lowest first) at a temp dir,
// unmounted on destruction: the root filesystem as a container sees it.
class OverlayView {
 public:
  explicit OverlayView(const std::vector<std::filesystem::path>& lowest_first) {
    auto d = TempDir::create(std::filesystem::temp_directory_path(), "ls-overlay-");
    if (!d) return;
    dir_ = std::move(*d);
    std::string opts = "lowerdir=";
    for (auto it = lowest_first.rbegin(); it != lowest_first.rend(); ++it)
      opts += (it == lowest_first.rbegin() ? "" : ":") + it->string();
    mounted_ = ::mount("overlay", dir_.path().c_str(), "overlay", MS_RDONLY, opts.c_str()) == 0;
    if (!mounted_) error_ = std::strerror(errno);
  }
  ~OverlayView() {
    if (mounted_) ::umount2(dir_.path().c_str(), MNT_DETACH);
  }
  bool ok() const { return mounted_; }
  const std::string& error() const { return error_; }
  std::filesystem::path operator/(const std::string& p) const { return dir_.path() / p; }

 private:
  TempDir dir_;
  bool mounted_ = false;
  std::string error_;
};

}  // namespace lockstep::registry::testing
