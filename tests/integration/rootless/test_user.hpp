#pragma once
// The ordinary user of one rootless test (tests/integration/rootless/): made
// with useradd(8) by a test running as root, removed with userdel(8).
#include <pwd.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/support/lockstep_process.hpp"

namespace lockstep::testing {

// An ordinary user for one test: /etc/passwd entry and subordinate ranges of
// 65536 ids (or none), removed by the destructor.
class TestUser {
 public:
  TestUser(const std::filesystem::path& home, bool ranges) {
    name_ = "lsrl" + std::to_string(::getpid());
    first_ = 2000000 + static_cast<uint32_t>(::getpid() % 4000) * 65536;
    auto r = run_process({"/usr/sbin/useradd", "-M", "-d", home.string(), "-s", "/bin/sh", "-K",
                          "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0", name_});
    if (r.exit_code != 0) {
      error_ = "useradd: " + r.err;
      return;
    }
    created_ = true;
    if (ranges) {
      std::string range = std::to_string(first_) + "-" + std::to_string(first_ + 65535);
      r = run_process({"/usr/sbin/usermod", "--add-subuids", range, "--add-subgids", range, name_});
      if (r.exit_code != 0) {
        error_ = "usermod: " + r.err;
        return;
      }
    }
    struct passwd* pw = ::getpwnam(name_.c_str());
    if (!pw) {
      error_ = "no passwd entry for " + name_;
      return;
    }
    uid_ = pw->pw_uid;
    gid_ = pw->pw_gid;
  }
  ~TestUser() {
    if (created_) run_process({"/usr/sbin/userdel", "-f", name_});
  }
  TestUser(const TestUser&) = delete;
  TestUser& operator=(const TestUser&) = delete;

  const std::string& name() const { return name_; }
  const std::string& error() const { return error_; }
  uid_t uid() const { return uid_; }
  // Host id of container id 1.
  uint32_t first_subordinate() const { return first_; }
  gid_t gid() const { return gid_; }

  // Makes `p` and everything under it the user's.
  void give_tree(const std::filesystem::path& p) const {
    ASSERT_EQ(::lchown(p.c_str(), uid_, gid_), 0) << p;
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(p, ec);
         !ec && it != std::filesystem::end(it); it.increment(ec))
      ASSERT_EQ(::lchown(it->path().c_str(), uid_, gid_), 0) << it->path();
  }
  // Writes `text` to `p`, a file of the user's.
  std::filesystem::path write_file(const std::filesystem::path& p, const std::string& text) const {
    std::ofstream(p) << text;
    give_tree(p);
    return p;
  }

 private:
  std::string name_;
  std::string error_;
  bool created_ = false;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  uint32_t first_ = 0;
};

}  // namespace lockstep::testing
