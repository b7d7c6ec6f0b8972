#pragma once
// The fixture of the egress tests: the test's "internet" (world.hpp), the
// job image with curl, wget and git, and the run's record.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "world.hpp"

namespace lockstep::testing {
using nlohmann::json;

inline bool has(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

// A string member of a record entry, "" when absent (json::value() trips
// GCC 12's -Wnull-dereference).
inline std::string member(const json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}

class EgressRunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!is_root()) GTEST_SKIP() << "needs root: network namespaces, nftables, containers";
    world_ = std::make_unique<World>(home_.root() / "world");
    ASSERT_TRUE(world_->ok()) << world_->error();
    auto rootfs = home_.root() / "net-rootfs";
    auto b = run_process({"/bin/bash",
                          std::string(LOCKSTEP_SOURCE_DIR) + "/tests/support/nettools-rootfs.sh",
                          rootfs.string()});
    ASSERT_EQ(b.exit_code, 0) << b.err;
    auto r = home_.lockstep({"image", "import", rootfs.string(), "--tag", "localhost/net:test"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  void TearDown() override {
    if (world_) {
      EXPECT_EQ(world_->leftovers(), std::vector<std::string>{});
      EXPECT_EQ(world_->forwarding(), "0");
    }
    world_.reset();
  }

  ProcessOutput run(const std::string& workflow, std::vector<std::string> extra = {}) {
    auto wf = home_.write("wf/ci.yml", workflow);
    std::vector<std::string> args = {"run", wf.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return world_->lockstep(home_, args);
  }
  json record() {
    auto text = read_file(home_.latest_record());
    return text ? json::parse(*text) : json();
  }
  static std::string job_head(const std::string& steps) {
    return "on: push\njobs:\n  j:\n    runs-on: ubuntu-latest\n    container:\n      image: "
           "localhost/net:test\n    steps:\n" +
           steps;
  }

  LockstepHome home_;
  std::unique_ptr<World> world_;
};

}  // namespace lockstep::testing
