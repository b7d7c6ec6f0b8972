#pragma once
// A read-only overlay mount of unpacked layers, to see them as a container
// would.
#include <sched.h>
#include <sys/mount.h>

#include <cerrno>
#include <filesystem>
#include <string>
#include <vector>

namespace lockstep::cache::testing {

class OverlayMount {
 public:
  // Mounts in a private mount namespace of this test process (each test runs
  // in its own process), so nothing outlives the test even if it crashes.
  static bool enter_private_ns() {
    return ::unshare(CLONE_NEWNS) == 0 &&
           ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0;
  }
  OverlayMount(const std::filesystem::path& target,
               const std::vector<std::filesystem::path>& lowest_first)
      : target_(target) {
    std::string lower;
    for (auto it = lowest_first.rbegin(); it != lowest_first.rend(); ++it) {
      if (!lower.empty()) lower += ":";
      lower += it->string();
    }
    std::string opts = "lowerdir=" + lower;
    ok_ = ::mount("overlay", target.c_str(), "overlay", MS_RDONLY, opts.c_str()) == 0;
    err_ = errno;
  }
  ~OverlayMount() {
    if (ok_) ::umount2(target_.c_str(), MNT_DETACH);
  }
  bool ok() const { return ok_; }
  int err() const { return err_; }

 private:
  std::filesystem::path target_;
  bool ok_ = false;
  int err_ = 0;
};

}  // namespace lockstep::cache::testing
