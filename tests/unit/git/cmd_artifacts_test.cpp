// `lockstep artifacts <run> [--download DIR]` against a real artifact store.
#include "runner/verbs/cmd_artifacts.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "cache/artifacts.hpp"
#include "common/fs.hpp"

namespace lockstep::runner {
namespace {
namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class CmdArtifactsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = TempDir::create(fs::temp_directory_path(), "lockstep-cmd-artifacts-");
    ASSERT_TRUE(t) << t.error().message();
    tmp_ = std::move(*t);
    ::setenv("LOCKSTEP_HOME", (tmp_.path() / "state").c_str(), 1);
    fs::create_directories(tmp_.path() / "ws/dist");
    std::ofstream(tmp_.path() / "ws/dist/a.txt") << "aaa";
    std::ofstream(tmp_.path() / "ws/log.txt") << "log";
    cache::ArtifactStore store(tmp_.path() / "state");
    cache::UploadRequest r;
    r.run_id = "r1";
    r.job = "build";
    r.dirs = {tmp_.path() / "ws", tmp_.path() / "home"};
    r.name = "dist";
    r.paths = {"dist"};
    auto d = store.upload(r);
    ASSERT_TRUE(d) << d.error().message();
    dist_ = *d->artifact;
    r.name = "logs";
    r.paths = {"log.txt"};
    ASSERT_TRUE(store.upload(r));
  }
  void TearDown() override { ::unsetenv("LOCKSTEP_HOME"); }
  TempDir tmp_;
  cache::ArtifactInfo dist_;
};

TEST_F(CmdArtifactsTest, ListsNameSizeAndDigest) {
  ::testing::internal::CaptureStdout();
  int rc = cmd_artifacts({"r1"});
  std::fflush(stdout);
  std::string out = ::testing::internal::GetCapturedStdout();
  EXPECT_EQ(rc, 0);
  EXPECT_NE(out.find("NAME"), std::string::npos) << out;
  EXPECT_NE(out.find("dist             3       1  " + dist_.digest.str()), std::string::npos)
      << out;
  EXPECT_NE(out.find("logs"), std::string::npos) << out;
}

TEST_F(CmdArtifactsTest, DownloadsAllOrOne) {
  ::testing::internal::CaptureStdout();
  int rc = cmd_artifacts({"r1", "--download", (tmp_.path() / "out").string()});
  std::fflush(stdout);
  ::testing::internal::GetCapturedStdout();
  ASSERT_EQ(rc, 0);
  EXPECT_EQ(slurp(tmp_.path() / "out/dist/a.txt"), "aaa");
  EXPECT_EQ(slurp(tmp_.path() / "out/logs/log.txt"), "log");

  ::testing::internal::CaptureStdout();
  rc = cmd_artifacts({"r1", "--download", (tmp_.path() / "one").string(), "--name", "dist"});
  std::fflush(stdout);
  ::testing::internal::GetCapturedStdout();
  ASSERT_EQ(rc, 0);
  EXPECT_EQ(slurp(tmp_.path() / "one/a.txt"), "aaa");
}

TEST_F(CmdArtifactsTest, MissingArtifactAndUsageErrors) {
  ::testing::internal::CaptureStderr();
  int rc = cmd_artifacts({"r1", "--download", (tmp_.path() / "x").string(), "--name", "nope"});
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(err,
            "lockstep: error: artifact 'nope' not found in run 'r1' (available: dist, logs)\n");
  ::testing::internal::CaptureStderr();
  rc = cmd_artifacts({});
  ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(rc, 2);
}

}  // namespace
}  // namespace lockstep::runner
