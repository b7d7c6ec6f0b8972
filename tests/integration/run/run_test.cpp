// `lockstep run` end to end: real binary, real containers, a busybox image
// imported by the test into its own LOCKSTEP_HOME.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <regex>

#include "tests/support/lockstep_process.hpp"

namespace lockstep::testing {
namespace {

class RunTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!is_root()) GTEST_SKIP() << "needs root: containers use mount/pid/net namespaces";
    digest_ = home_.import_busybox("localhost/busybox:test");
    ASSERT_FALSE(digest_.empty()) << "image import failed";
  }
  LockstepHome home_;
  std::string digest_;
};

int count(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (size_t p = haystack.find(needle); p != std::string::npos; p = haystack.find(needle, p + 1))
    ++n;
  return n;
}

TEST_F(RunTest, HelloExampleRunsFourPassingJobsInContainers) {
  auto r = home_.lockstep({"image", "import", (home_.root() / "busybox-rootfs").string(), "--tag",
                           "localhost/busybox:1.35"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = home_.lockstep({"run", std::string(LOCKSTEP_SOURCE_DIR) + "/examples/hello/ci.yml"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("[greet (hello, world)] hello, world! (from lockstep)"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("[greet (bonjour, lockstep)] bonjour, lockstep! (from lockstep)"),
            std::string::npos);
  // Each job has its own pid namespace: its init, the step's shell and the
  // command's processes, never the host's.
  std::regex procs(R"(\] processes visible: (\d+))");
  int jobs_seen = 0;
  for (auto it = std::sregex_iterator(r.out.begin(), r.out.end(), procs);
       it != std::sregex_iterator(); ++it) {
    ++jobs_seen;
    EXPECT_LE(std::stoi((*it)[1]), 8) << r.out;
  }
  EXPECT_EQ(jobs_seen, 4);
  EXPECT_EQ(count(r.out, "  success "), 4) << r.out;
  EXPECT_NE(r.out.find("4 of 4 jobs passed"), std::string::npos) << r.out;
}

TEST_F(RunTest, FailingStepExitsOneAndNamesJobMatrixAndStep) {
  auto wf = home_.write("fail.yml", R"(name: fail
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    strategy:
      fail-fast: false
      matrix:
        cc: [gcc, clang]
        mode: [Release]
    steps:
      - name: compile
        run: |
          echo "building with ${{ matrix.cc }}"
          if [ "${{ matrix.cc }}" = clang ]; then echo "clang broke" >&2; exit 3; fi
)");
  auto r = home_.lockstep({"run", wf.string()});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("lockstep: error: job build (clang, Release): step 'compile' failed: "
                       "exit code 3"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.out.find("[build (clang, Release)] clang broke"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[build (gcc, Release)] building with gcc"), std::string::npos);
  EXPECT_NE(r.out.find("1 of 2 jobs passed"), std::string::npos) << r.out;
}

TEST_F(RunTest, WorkflowErrorExitsTwoAndRunsNothing) {
  auto wf =
      home_.write("bad.yml",
                  "jobs:\n  a:\n    runs-on: x\n    container: localhost/busybox:test\n    step:\n"
                  "      - run: echo hi\n");
  auto r = home_.lockstep({"run", wf.string()});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("bad.yml:5:5: unknown key 'step'"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("jobs passed"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(home_.home() / "runs"));
}

TEST_F(RunTest, UsageErrorsExitTwo) {
  auto r = home_.lockstep({"run", "--jobs", "zero", "x.yml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "lockstep: error: --jobs 'zero': expected a number from 1 to 4096\n");
  // Every number is read one way: no sign, no wrap-around.
  r = home_.lockstep({"mirror", "serve", "--threads", "-1"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "lockstep: error: --threads '-1': expected a number from 1 to 1024\n");
  r = home_.lockstep({"run", "--jobs", "+2", "x.yml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "lockstep: error: --jobs '+2': expected a number from 1 to 4096\n");
  r = home_.lockstep({"frobnicate"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown command 'frobnicate'"), std::string::npos);
  // The triggering event: a name as GitHub spells them, a payload that is a
  // JSON object.
  r = home_.lockstep({"run", "--event", "Pull-Request", "x.yml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "lockstep: error: --event 'Pull-Request': an event name is lowercase letters and '_' "
            "(push, pull_request, workflow_dispatch, ...)\n");
  auto payload = home_.root() / "event.json";
  std::ofstream(payload) << "[1, 2]";
  r = home_.lockstep({"run", "--event-file", payload.string(), "x.yml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "lockstep: error: --event-file " + payload.string() +
                       ": the payload is not a JSON object\n");
  std::ofstream(payload) << "{\"number\": ";
  r = home_.lockstep({"run", "--event-file", payload.string(), "x.yml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("--event-file " + payload.string()), std::string::npos) << r.err;
}

// A reader that closes early (`lockstep run | head -1`): the run still ends
// as it would have, with its record; its steps still get SIGPIPE (`yes |
// head` ends).
TEST_F(RunTest, AReaderThatGoesAwayDoesNotKillTheRun) {
  auto wf = home_.write("many.yml", R"WF(on: push
jobs:
  talk:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - run: for i in $(seq 1 2000); do echo "line $i of a long log"; done
      - run: sleep 0.5 && test "$(yes | head -3 | wc -l)" = 3
)WF");
  auto r =
      run_process({"/bin/bash", "-c",
                   "set -o pipefail; \"$0\" run \"$1\" | head -1; echo \"status ${PIPESTATUS[0]}\"",
                   LOCKSTEP_BINARY, wf.string()},
                  {"LOCKSTEP_HOME=" + home_.home().string()});
  EXPECT_NE(r.out.find("status 0"), std::string::npos) << r.out << r.err;
  auto ls = home_.lockstep({"runs", "ls"});
  EXPECT_NE(ls.out.find("success"), std::string::npos) << ls.out << ls.err;
}

TEST_F(RunTest, HelpAndVersion) {
  auto r = home_.lockstep({"--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out.rfind("lockstep ", 0), 0u);
  r = home_.lockstep({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("run"), std::string::npos);
  r = home_.lockstep({"run", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("usage: lockstep run"), std::string::npos);
  r = home_.lockstep({"image", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("import"), std::string::npos);
}

TEST_F(RunTest, ImportIsDeterministicAcrossStateDirs) {
  LockstepHome other;
  std::string again = other.import_busybox("another/name:tag");
  EXPECT_EQ(again, digest_);
  EXPECT_TRUE(std::regex_match(digest_, std::regex("sha256:[0-9a-f]{64}")));
}

}  // namespace
}  // namespace lockstep::testing
