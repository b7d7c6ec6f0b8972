// `lockstep image pull` as a user runs it: exit codes, stdout, one-line errors.
#include <cstdlib>

#include "fixture.hpp"
#include "runner/verbs/cmd_image_pull.hpp"

namespace lockstep::registry::testing {
namespace {

struct CliRun {
  int code;
  std::string out;
  std::string err;
};

class PullCli : public RegistryTest {
 protected:
  void SetUp() override {
    RegistryTest::SetUp();
    if (IsSkipped()) return;
    ::setenv("LOCKSTEP_HOME", state_.path().c_str(), 1);
    auto docker = TempDir::create(std::filesystem::temp_directory_path(), "ls-docker-config-");
    ASSERT_TRUE(docker);
    docker_config_ = std::move(*docker);
    ::setenv("DOCKER_CONFIG", docker_config_.path().c_str(), 1);
  }
  void TearDown() override {
    ::unsetenv("LOCKSTEP_HOME");
    ::unsetenv("DOCKER_CONFIG");
  }
  static CliRun run(const std::vector<std::string>& args) {
    ::testing::internal::CaptureStdout();
    ::testing::internal::CaptureStderr();
    int code = lockstep::runner::cmd_image_pull(args);
    std::string out = ::testing::internal::GetCapturedStdout();
    std::string err = ::testing::internal::GetCapturedStderr();
    return {code, out, err};
  }
  TempDir docker_config_;
};

TEST_F(PullCli, PullsAndPrintsTheManifestDigest) {
  TestImage img = make_image({{file("a", "1")}, {file("b", "2")}}, Compression::kGzip);
  ASSERT_TRUE(push_image(*client_, ref("app:v1"), img));
  CliRun r = run({registry_->domain() + "/app:v1"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, img.manifest.digest.str() + "\n");
  // Not a terminal: one line per event.
  EXPECT_NE(r.err.find("sha256:" + img.layers[0].digest.hex().substr(0, 12) + "\u2026 downloaded"),
            std::string::npos)
      << r.err;
  // The image is in the store under LOCKSTEP_HOME.
  cache::ImageStore store(state_.path());
  auto rec = store.resolve(registry_->domain() + "/app:v1");
  ASSERT_TRUE(rec) << rec.error().message();
  EXPECT_EQ(rec->manifest, img.manifest.digest);

  CliRun quiet = run({registry_->domain() + "/app:v1", "--quiet"});
  EXPECT_EQ(quiet.code, 0);
  EXPECT_EQ(quiet.out, img.manifest.digest.str() + "\n");
  EXPECT_EQ(quiet.err, "");
}

TEST_F(PullCli, PlatformOption) {
  TestImage amd = make_image({{file("arch", "amd64")}}, Compression::kGzip, "amd64");
  TestImage arm = make_image({{file("arch", "arm64")}}, Compression::kGzip, "arm64", "v8");
  ASSERT_TRUE(push_index(*client_, ref("multi:v1"), {&amd, &arm}, make_index({&amd, &arm})));
  CliRun r = run({registry_->domain() + "/multi:v1", "--platform", "linux/arm64/v8", "-q"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, arm.manifest.digest.str() + "\n");
  CliRun none = run({registry_->domain() + "/multi:v1", "--platform=linux/riscv64", "-q"});
  EXPECT_EQ(none.code, 1);
  EXPECT_EQ(none.err, "lockstep: error: no manifest for linux/riscv64 in " + registry_->domain() +
                          "/multi:v1 (available: linux/amd64, linux/arm64/v8)\n");
}

TEST_F(PullCli, UsageErrorsExitTwo) {
  CliRun bad = run({"Foo:bar"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_EQ(bad.err,
            "lockstep: error: invalid reference 'Foo:bar': repository name must be "
            "lowercase\n");
  EXPECT_EQ(bad.out, "");
  CliRun none = run({});
  EXPECT_EQ(none.code, 2);
  EXPECT_EQ(none.err,
            "lockstep: error: image pull needs an image reference; see 'lockstep image "
            "pull --help'\n");
  CliRun plat = run({"alpine", "--platform", "linux/"});
  EXPECT_EQ(plat.code, 2);
  EXPECT_EQ(plat.err, "lockstep: error: invalid platform 'linux/' (expected os/arch[/variant])\n");
  CliRun help = run({"--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_EQ(help.out.rfind("usage: lockstep image pull REF", 0), 0u) << help.out;
}

TEST_F(PullCli, RegistryDownExitsOne) {
  int port = free_port();
  CliRun r = run({"127.0.0.1:" + std::to_string(port) + "/app:v1", "-q"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "lockstep: error: cannot reach registry 127.0.0.1:" + std::to_string(port) +
                       ": Connection refused (is it running?)\n");
  EXPECT_EQ(r.out, "");
}

}  // namespace
}  // namespace lockstep::registry::testing
