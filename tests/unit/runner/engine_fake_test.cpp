// The engine through a fake executor (tests/support/fake_executor.hpp): if:,
// needs, outputs, continue-on-error and cancellation, as `lockstep run` does
// them, without root or containers. Processes run on the host.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>

#include "cache/image_store.hpp"
#include "common/fs.hpp"
#include "common/json.hpp"
#include "runner/engine/run.hpp"
#include "runner/records/run_record.hpp"
#include "tests/support/fake_executor.hpp"

namespace lockstep::runner {
namespace {
namespace fs = std::filesystem;

class EngineFake : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = TempDir::create(fs::temp_directory_path(), "engine-fake-");
    ASSERT_TRUE(d);
    dir_.emplace(std::move(*d));
    // The image's files never matter here: processes run on the host.
    fs::create_directories(root() / "rootfs" / "bin");
    cache::ImageStore store(root() / "home");
    ASSERT_TRUE(store.import_rootfs(root() / "rootfs", "localhost/fake:1"));
  }
  fs::path root() const { return dir_->path(); }

  // Runs `yaml`; returns the exit code, the record in `record`. `edit`
  // changes the options first.
  int run(const std::string& yaml, Json* record = nullptr,
          const std::function<void(RunOptions&)>& edit = {}) {
    fs::path wf = root() / "wf" / "ci.yml";
    fs::create_directories(wf.parent_path());
    std::ofstream(wf) << yaml;
    RunOptions o;
    o.workflow = wf;
    o.state_dir = root() / "home";
    o.network = "none";
    o.max_jobs = 2;
    if (edit) edit(o);
    RunExtras ex;
    ex.executor = &fake_;
    RecordSettings how;
    how.quiet = true;
    return finish_run(o, run_workflow(o, ex), how, record);
  }

  static const Json& job(const Json& rec, const std::string& name) {
    for (const auto& j : rec["jobs"])
      if (j["name"] == name) return j;
    static const Json none;
    ADD_FAILURE() << "no job " << name << " in " << rec["jobs"].dump();
    return none;
  }

  std::optional<TempDir> dir_;
  testing::FakeExecutor fake_;
};

TEST_F(EngineFake, StepIfOutputsAndStatusFunctions) {
  Json rec;
  int rc = run(R"(on: push
jobs:
  a:
    runs-on: x
    container: localhost/fake:1
    outputs:
      word: ${{ steps.make.outputs.word }}
    steps:
      - id: make
        run: echo "word=hello" >> "$GITHUB_OUTPUT"
      - if: steps.make.outputs.word == 'hello'
        run: "true"
      - if: steps.make.outputs.word != 'hello'
        run: exit 1
      - id: broken
        run: exit 3
        continue-on-error: true
      - if: steps.broken.outcome == 'failure' && steps.broken.conclusion == 'success'
        run: "true"
      - run: exit 2
      - if: failure()
        id: after
        run: "true"
      - run: "true"
)",
               &rec);
  EXPECT_EQ(rc, 1);
  const Json& a = job(rec, "a");
  EXPECT_EQ(a["result"], "failure");
  EXPECT_EQ(a["outputs"]["word"], "hello");
  std::vector<std::string> conclusions;
  for (const auto& s : a["steps"]) conclusions.push_back(s["conclusion"]);
  EXPECT_EQ(conclusions, (std::vector<std::string>{"success", "success", "skipped", "success",
                                                   "success", "failure", "success", "skipped"}));
  EXPECT_EQ(a["steps"][3]["outcome"], "failure");
}

TEST_F(EngineFake, NeedsPassesOutputsAndSkipsAfterAFailureUnlessAlways) {
  Json rec;
  int rc = run(R"(on: push
jobs:
  first:
    runs-on: x
    container: localhost/fake:1
    outputs:
      n: ${{ steps.s.outputs.n }}
    steps:
      - id: s
        run: echo "n=41" >> "$GITHUB_OUTPUT"
  second:
    needs: first
    runs-on: x
    container: localhost/fake:1
    steps:
      - run: test "${{ needs.first.outputs.n }}" = 41 && exit 5
  third:
    needs: second
    runs-on: x
    container: localhost/fake:1
    steps:
      - run: "true"
  report:
    needs: [second, third]
    if: always()
    runs-on: x
    container: localhost/fake:1
    steps:
      - run: test "${{ needs.second.result }}/${{ needs.third.result }}" = failure/skipped
)",
               &rec);
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(job(rec, "first")["result"], "success");
  EXPECT_EQ(job(rec, "second")["result"], "failure");
  EXPECT_EQ(job(rec, "second")["steps"][0]["exit_code"], 5);  // proves the output arrived
  EXPECT_EQ(job(rec, "third")["result"], "skipped");
  EXPECT_EQ(job(rec, "report")["result"], "success");
}

TEST_F(EngineFake, JobContinueOnErrorKeepsTheRunGreenAndDependentsGoOn) {
  Json rec;
  int rc = run(R"(on: push
jobs:
  flaky:
    runs-on: x
    container: localhost/fake:1
    continue-on-error: true
    steps:
      - run: exit 1
  after:
    needs: flaky
    runs-on: x
    container: localhost/fake:1
    steps:
      # A job that may fail counts as succeeded for those that need it.
      - run: test "${{ needs.flaky.result }}" = success
)",
               &rec);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(job(rec, "flaky")["result"], "failure");
  EXPECT_EQ(job(rec, "after")["result"], "success");
}

TEST_F(EngineFake, FailFastCancelsTheRunningSiblingAndCleanupStepsRun) {
  Json rec;
  int rc = run(R"(on: push
jobs:
  m:
    runs-on: x
    container: localhost/fake:1
    strategy:
      matrix:
        k: [fails, sleeps]
    steps:
      - if: matrix.k == 'fails'
        run: sleep 1; exit 1
      - if: matrix.k == 'sleeps'
        run: sleep 300
      - if: cancelled()
        run: "true"
)",
               &rec);
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(job(rec, "m (fails)")["result"], "failure");
  const Json& sleeps = job(rec, "m (sleeps)");
  EXPECT_EQ(sleeps["result"], "cancelled");
  // The sleep was stopped (had it run out, its outcome would be success),
  // and the step for cancelled() ran after it.
  EXPECT_EQ(sleeps["steps"][1]["outcome"], "cancelled");
  EXPECT_EQ(sleeps["steps"][2]["conclusion"], "success");
  EXPECT_EQ(fake_.started().size(), 2u);
  // The run failed: a failure outranks the cancellation it caused.
  EXPECT_EQ(rec["result"], "failure");
}

}  // namespace
}  // namespace lockstep::runner

namespace lockstep::runner {
namespace {

// One job run alone with the results of the jobs it needs given (how an
// agent of `lockstep server` runs a job): the needed jobs do not run, the
// given outputs and results are what `needs` and the status functions see,
// and the record keeps them for replay.
constexpr const char* kNeedsWorkflow = R"(on: push
jobs:
  build:
    runs-on: x
    container: localhost/fake:1
    outputs:
      v: ${{ steps.s.outputs.v }}
    steps:
      - id: s
        run: echo "v=local" >> "$GITHUB_OUTPUT"
  lint:
    runs-on: x
    container: localhost/fake:1
    steps:
      - run: "true"
  deploy:
    needs: [build, lint]
    runs-on: x
    container: localhost/fake:1
    steps:
      - run: test "${{ needs.build.outputs.v }}" = given && exit 7
  notify:
    needs: deploy
    if: failure()
    runs-on: x
    container: localhost/fake:1
    steps:
      - run: test "${{ needs.deploy.result }}" = failure
)";

GivenNeeds given(const std::string& text) {
  auto j = Json::parse(text);
  auto g = given_needs_from_json(j, "test");
  EXPECT_TRUE(g) << (g ? "" : g.error().message());
  return g ? *g : GivenNeeds{};
}

TEST_F(EngineFake, GivenNeedsRunOnlyTheSelectedJobWithTheirOutputs) {
  Json rec;
  int rc = run(kNeedsWorkflow, &rec, [](RunOptions& o) {
    o.jobs = {"deploy"};
    o.given_needs = given(R"({"build": {"result": "success", "outputs": {"v": "given"}},
                              "lint": {"result": "success"}})");
  });
  EXPECT_EQ(rc, 1);
  ASSERT_EQ(rec["jobs"].size(), 1u) << rec["jobs"].dump();
  EXPECT_EQ(job(rec, "deploy")["steps"][0]["exit_code"], 7);  // the given output arrived
  EXPECT_EQ(rec["options"]["needs"]["build"]["outputs"]["v"], "given");
  EXPECT_EQ(rec["options"]["needs"]["lint"]["result"], "success");
}

TEST_F(EngineFake, GivenNeedsDecideIfAndTheJobsNotGivenStillRun) {
  // lint is not given: it runs here, build does not.
  Json rec;
  int rc = run(kNeedsWorkflow, &rec, [](RunOptions& o) {
    o.jobs = {"deploy"};
    o.given_needs = given(R"({"build": {"result": "failure", "outputs": {}}})");
  });
  EXPECT_EQ(rc, 0);
  std::vector<std::string> names;
  for (const auto& j : rec["jobs"]) names.push_back(j["name"]);
  EXPECT_EQ(names, (std::vector<std::string>{"lint", "deploy"}));
  EXPECT_EQ(job(rec, "deploy")["result"], "skipped");

  // failure() of a job whose need failed elsewhere runs it.
  rc = run(kNeedsWorkflow, &rec, [](RunOptions& o) {
    o.jobs = {"notify"};
    o.given_needs = given(R"({"deploy": {"result": "failure"}})");
  });
  EXPECT_EQ(rc, 0);
  ASSERT_EQ(rec["jobs"].size(), 1u);
  EXPECT_EQ(job(rec, "notify")["result"], "success");
}

TEST_F(EngineFake, GivenNeedsBadInputIsRefusedBeforeAnythingRuns) {
  auto refused = [&](const std::function<void(RunOptions&)>& edit) {
    return run(kNeedsWorkflow, nullptr, edit);
  };
  EXPECT_EQ(
      refused([](RunOptions& o) { o.given_needs = given(R"({"build": {"result": "success"}})"); }),
      2)
      << "--needs without --job";
  EXPECT_EQ(refused([](RunOptions& o) {
              o.jobs = {"deploy"};
              o.given_needs = given(R"({"nosuch": {"result": "success"}})");
            }),
            2);
  EXPECT_EQ(refused([](RunOptions& o) {
              o.jobs = {"deploy"};
              o.given_needs = given(R"({"deploy": {"result": "success"}})");
            }),
            2);
  EXPECT_FALSE(fs::exists(root() / "home" / "runs") && !fs::is_empty(root() / "home" / "runs"));

  for (const char* bad : {R"([])", R"({"a": 1})", R"({"a": {"result": "done"}})",
                          R"({"a": {"result": "success", "outputs": []}})",
                          R"({"a": {"result": "success", "outputs": {"k": 1}}})"}) {
    auto g = given_needs_from_json(Json::parse(bad), "needs.json");
    ASSERT_FALSE(g) << bad;
    EXPECT_EQ(g.error().message().rfind("needs.json", 0), 0u) << g.error().message();
    EXPECT_EQ(g.error().message().find('\n'), std::string::npos);
  }
}

}  // namespace
}  // namespace lockstep::runner

namespace lockstep::runner {
namespace {

// A job container torn down behind its job (Executor::retire) that could
// not be torn down completely fails the run, though every job passed.
TEST_F(EngineFake, ATeardownThatFailsBehindTheJobsFailsTheRun) {
  const std::string yaml =
      "on: push\njobs:\n  a:\n    runs-on: x\n    container: localhost/fake:1\n"
      "    steps:\n      - run: \"true\"\n";
  Json rec;
  EXPECT_EQ(run(yaml, &rec), 0);
  fake_.fail_teardown("cgroup lockstep/x: Device or resource busy");
  ::testing::internal::CaptureStderr();
  int rc = run(yaml, &rec);
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(job(rec, "a")["result"], "success");
  EXPECT_EQ(rec["exit_code"], 1);
  EXPECT_NE(err.find("after the jobs: cgroup lockstep/x: Device or resource busy"),
            std::string::npos)
      << err;
}

}  // namespace
}  // namespace lockstep::runner
