// examples/reproducible-c through `lockstep replay` and `lockstep verify`:
// a replay from record.json alone on a fresh state dir arrives at the same
// environment hashes and artifact digests; verify calls the example
// REPRODUCIBLE and catches the two unreproducible variants, naming the file.
#include <gtest/gtest.h>

#include <regex>

#include "common/fs.hpp"
#include "common/json.hpp"
#include "tests/integration/repro/repro_fixture.hpp"
#include "tests/support/lockstep_process.hpp"

namespace lockstep::testing {
namespace {
namespace fs = std::filesystem;

bool has(const std::string& s, const std::string& needle) {
  return s.find(needle) != std::string::npos;
}

class ReplayVerifyExampleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!is_root()) GTEST_SKIP() << "needs root: containers use mount/pid/net namespaces";
    ASSERT_NO_FATAL_FAILURE(import_compiler_image(home_));
    repo_ = home_.root() / "lockstep";
    ASSERT_NO_FATAL_FAILURE(make_example_repo(repo_));
  }

  static void import_into(const LockstepHome& home) { import_compiler_image(home); }

  ProcessOutput lockstep_in_repo(const LockstepHome& home, std::vector<std::string> args) {
    args.insert(args.begin(), LOCKSTEP_BINARY);
    return run_process(args, {"LOCKSTEP_HOME=" + home.home().string()}, repo_);
  }

  LockstepHome home_;
  fs::path repo_;
};

TEST_F(ReplayVerifyExampleTest, ReplayFromRecordJsonOnAFreshStateDirReproducesHashesAndDigests) {
  auto r = lockstep_in_repo(home_, {"run", "examples/reproducible-c/ci.yml"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.err, m, std::regex("run (\\S+) recorded in"))) << r.err;
  std::string id = m[1];
  fs::path copy = home_.root() / "handed-over" / "record.json";
  fs::create_directories(copy.parent_path());
  fs::copy_file(home_.home() / "runs" / id / "record.json", copy);
  auto original = Json::parse(*read_file(copy));
  ASSERT_EQ(original["jobs"].size(), 4u);
  EXPECT_EQ(original["source"]["commit"].get<std::string>().size(), 40u);

  LockstepHome fresh;
  import_into(fresh);
  auto replay = fresh.lockstep({"replay", copy.string()});
  EXPECT_EQ(replay.exit_code, 0) << replay.out << replay.err;
  EXPECT_TRUE(has(replay.out,
                  "replay: 4 of 4 environment hashes match the record; 4 artifact(s) identical; "
                  "outputs match"))
      << replay.out << replay.err;
  ASSERT_TRUE(std::regex_search(replay.err, m, std::regex("run (\\S+) recorded in"))) << replay.err;
  auto again = Json::parse(*read_file(fresh.home() / "runs" / std::string(m[1]) / "record.json"));
  for (const auto& j : original["jobs"]) {
    bool found = false;
    for (const auto& k : again["jobs"]) {
      if (k["name"] != j["name"]) continue;
      found = true;
      EXPECT_EQ(k["env_hash"], j["env_hash"]) << j["name"];
      ASSERT_EQ(k["artifacts"].size(), 1u);
      EXPECT_EQ(k["artifacts"][0]["digest"], j["artifacts"][0]["digest"]) << j["name"];
    }
    EXPECT_TRUE(found) << j["name"];
  }
}

TEST_F(ReplayVerifyExampleTest, VerifyCallsTheExampleReproducible) {
  auto r = lockstep_in_repo(home_, {"verify", "examples/reproducible-c/ci.yml"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "REPRODUCIBLE: 4 artifact(s), 4 file(s) identical across 2 builds"))
      << r.out << r.err;
}

TEST_F(ReplayVerifyExampleTest, VerifyCatchesAnEmbeddedBuildPathNamingTheFile) {
  auto r =
      lockstep_in_repo(home_, {"verify", "examples/reproducible-c/unreproducible/embeds-path.yml"});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "NOT REPRODUCIBLE: 1 of 1 artifact(s) differ across 2 builds")) << r.out;
  EXPECT_TRUE(has(r.out, "file wordstat: ")) << r.out;
}

TEST_F(ReplayVerifyExampleTest, VerifyCatchesAnEmbeddedTimeNamingTheFile) {
  // Only the clock varies: the time alone makes the difference.
  auto r = lockstep_in_repo(
      home_, {"verify", "examples/reproducible-c/unreproducible/embeds-time.yml", "--vary",
              "-build-path,-hostname,-umask,-tz,-locale,-uid,-home,-cpus"});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "file wordstat: ")) << r.out;
  EXPECT_TRUE(has(r.out, "in ELF section .rodata")) << r.out;
}

}  // namespace
}  // namespace lockstep::testing
