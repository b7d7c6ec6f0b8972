// examples/reproducible-c through `lockstep replay` and `lockstep verify`:
// a replay from record.json alone on a fresh state dir arrives at the same
// environment hashes and artifact digests; verify calls the example
// REPRODUCIBLE and catches the two unreproducible variants, naming the file.
#include <gtest/gtest.h>

#include <regex>

#include "common/fs.hpp"
#include "common/json.hpp"
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
    auto image =
        run_process({"/bin/bash", std::string(LOCKSTEP_SOURCE_DIR) + "/scripts/compiler-image.sh",
                     "--oci", LOCKSTEP_CC_IMAGE_TAR, "--lockstep", LOCKSTEP_BINARY});
    ASSERT_EQ(image.exit_code, 0) << image.out << image.err;
    import_into(home_);
    // A clone-like repository holding the example at its place in this one.
    repo_ = home_.root() / "lockstep";
    fs::create_directories(repo_ / "examples");
    fs::copy(fs::path(LOCKSTEP_SOURCE_DIR) / "examples/reproducible-c",
             repo_ / "examples/reproducible-c", fs::copy_options::recursive);
    for (std::vector<std::string> args : {std::vector<std::string>{"init", "-q", "-b", "main"},
                                          {"add", "-A"},
                                          {"commit", "-q", "-m", "example"}}) {
      args.insert(args.begin(), {"/usr/bin/git", "-C", repo_.string()});
      auto r =
          run_process(args, {"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@e", "GIT_COMMITTER_NAME=t",
                             "GIT_COMMITTER_EMAIL=t@e", "GIT_AUTHOR_DATE=2026-01-01T00:00:00Z",
                             "GIT_COMMITTER_DATE=2026-01-01T00:00:00Z"});
      ASSERT_EQ(r.exit_code, 0) << r.err;
    }
  }

  static void import_into(const LockstepHome& home) {
    auto imported =
        home.lockstep({"image", "import", LOCKSTEP_CC_IMAGE_TAR, "--tag", "localhost/cc:debian12"});
    ASSERT_EQ(imported.exit_code, 0) << imported.err;
  }

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
