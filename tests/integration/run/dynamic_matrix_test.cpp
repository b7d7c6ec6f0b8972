// A matrix made from the outputs of the jobs it needs
// (`matrix: ${{ fromJSON(needs.setup.outputs.matrix) }}`): expanded once
// those jobs ran, then run like any matrix; what needs it waits for all of it.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "common/fs.hpp"
#include "common/json.hpp"
#include "tests/support/lockstep_process.hpp"

namespace lockstep::testing {
namespace {

const char* kDynamic = R"yml(name: dyn
jobs:
  setup:
    runs-on: linux
    container: localhost/busybox:test
    outputs:
      matrix: ${{ steps.m.outputs.matrix }}
    steps:
      - id: m
        run: echo 'matrix=MATRIX' >> "$GITHUB_OUTPUT"
  build:
    needs: setup
    runs-on: linux
    container: localhost/busybox:test
    strategy:
      matrix: ${{ fromJSON(needs.setup.outputs.matrix) }}
    steps:
      - run: echo "building ${{ matrix.os }}-${{ matrix.n }} of ${{ strategy.job-total }}"
  report:
    needs: build
    runs-on: linux
    container: localhost/busybox:test
    steps:
      - run: echo "all built ${{ needs.build.result }}"
)yml";

class DynamicMatrixTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!is_root()) GTEST_SKIP() << "needs root: containers use mount/pid/net namespaces";
    ASSERT_FALSE(home_.import_busybox("localhost/busybox:test").empty());
  }
  std::filesystem::path workflow(const std::string& matrix) {
    std::string text = kDynamic;
    text.replace(text.find("MATRIX"), 6, matrix);
    return home_.write("dyn.yml", text);
  }
  LockstepHome home_;
};

bool has(const std::string& s, const std::string& n) {
  return s.find(n) != std::string::npos;
}

TEST_F(DynamicMatrixTest, MatrixFromNeedsOutputsIsExpandedOnceTheyRan) {
  auto wf = workflow(R"({"os":["alpha","beta"],"n":[1,2]})");
  auto list = home_.lockstep({"run", wf.string(), "--list"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_TRUE(has(list.out, "build (matrix from needs)")) << list.out;
  auto r = home_.lockstep({"run", wf.string()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  for (const char* line :
       {"[build (alpha, 1)] building alpha-1 of 4", "[build (alpha, 2)] building alpha-2 of 4",
        "[build (beta, 1)] building beta-1 of 4", "[build (beta, 2)] building beta-2 of 4",
        "[report] all built success"})
    EXPECT_TRUE(has(r.out, line)) << line << "\n" << r.out;
  // report ran after every build instance.
  EXPECT_GT(r.out.find("[report] all built"), r.out.rfind("] building "));
  EXPECT_TRUE(has(r.out, "6 of 6 jobs passed")) << r.out;

  auto one = home_.lockstep({"run", wf.string(), "--job", "build", "--matrix", "os=beta"});
  EXPECT_EQ(one.exit_code, 0) << one.out << one.err;
  EXPECT_TRUE(has(one.out, "building beta-1")) << one.out;
  EXPECT_FALSE(has(one.out, "building alpha")) << one.out;
}

TEST_F(DynamicMatrixTest, BadMatrixOutputFailsTheJobAndSkipsWhatNeedsIt) {
  auto r = home_.lockstep({"run", workflow("not json").string()});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(has(r.err, "job build (matrix from needs): matrix: ")) << r.err;
  EXPECT_FALSE(has(r.out, "all built")) << r.out;
}

// The matrix is expanded as soon as its own needs ran: a slow job it does not
// need keeps running meanwhile (a schedule in waves would wait for it).
TEST_F(DynamicMatrixTest, ExpandsWithoutWaitingForJobsItDoesNotNeed) {
  auto wf = home_.write("slow.yml", R"yml(name: dyn
jobs:
  setup:
    runs-on: linux
    container: localhost/busybox:test
    outputs:
      matrix: ${{ steps.m.outputs.matrix }}
    steps:
      - id: m
        run: echo 'matrix={"n":[1,2]}' >> "$GITHUB_OUTPUT"
  slow:
    runs-on: linux
    container: localhost/busybox:test
    steps:
      - run: sleep 8 && echo slow-done
  build:
    needs: setup
    runs-on: linux
    container: localhost/busybox:test
    strategy:
      matrix: ${{ fromJSON(needs.setup.outputs.matrix) }}
    steps:
      - run: echo "building ${{ matrix.n }}"
  report:
    needs: [build, slow]
    runs-on: linux
    container: localhost/busybox:test
    steps:
      - run: echo "all built ${{ needs.build.result }}"
)yml");
  auto r = home_.lockstep({"run", wf.string(), "--jobs", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  size_t built = r.out.find("[build (2)] building 2");
  ASSERT_NE(built, std::string::npos) << r.out;
  EXPECT_LT(built, r.out.find("[slow] slow-done")) << r.out;
  EXPECT_GT(r.out.find("[report] all built success"), r.out.find("[slow] slow-done")) << r.out;
  EXPECT_TRUE(has(r.out, "5 of 5 jobs passed")) << r.out;

  // The record lists the instances where the job is declared.
  auto text = read_file(home_.latest_record());
  ASSERT_TRUE(text);
  auto rec = Json::parse(*text);
  std::vector<std::string> names;
  for (const auto& j : rec["jobs"]) names.push_back(j["name"]);
  EXPECT_EQ(names, (std::vector<std::string>{"setup", "slow", "build (1)", "build (2)", "report"}));
}

}  // namespace
}  // namespace lockstep::testing
