// The workflow engine with real containers: matrices, needs and outputs,
// fail-fast, continue-on-error, timeouts, if: failure(), secrets, reports.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "tests/support/lockstep_process.hpp"

namespace lockstep::testing {
namespace {

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!is_root()) GTEST_SKIP() << "needs root: containers use mount/pid/net namespaces";
    ASSERT_FALSE(home_.import_busybox("localhost/busybox:test").empty());
  }
  ProcessOutput run(const std::string& yaml, std::vector<std::string> extra = {}) {
    auto wf = home_.write("wf.yml", yaml);
    extra.insert(extra.begin(), wf.string());
    extra.insert(extra.begin(), "run");
    return home_.lockstep(extra);
  }
  static std::string read(const std::filesystem::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  LockstepHome home_;
};

bool has(const std::string& s, const std::string& needle) {
  return s.find(needle) != std::string::npos;
}

TEST_F(EngineTest, ThreeAxisMatrixWithIncludeAndExclude) {
  auto r = run(R"(on: push
jobs:
  m:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    strategy:
      matrix:
        os: [a, b]
        cc: [gcc, clang]
        mode: [dbg, rel]
        exclude:
          - os: b
            cc: clang
        include:
          - os: a
            cc: gcc
            extra: yes
          - os: c
            cc: tcc
            mode: rel
    steps:
      - run: echo "combo ${{ matrix.os }}-${{ matrix.cc }}-${{ matrix.mode }} extra=${{ matrix.extra }}."
)");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // 2*2*2 = 8, minus 2 excluded (b, clang, *), plus the new (c, tcc, rel) = 7.
  EXPECT_TRUE(has(r.out, "7 of 7 jobs passed")) << r.out;
  EXPECT_TRUE(has(r.out, "combo a-gcc-dbg extra=yes."));
  EXPECT_TRUE(has(r.out, "combo a-gcc-rel extra=yes."));
  EXPECT_TRUE(has(r.out, "combo a-clang-dbg extra=."));
  EXPECT_TRUE(has(r.out, "combo b-gcc-rel extra=."));
  EXPECT_TRUE(has(r.out, "combo c-tcc-rel extra=."));
  EXPECT_FALSE(has(r.out, "combo b-clang"));
}

TEST_F(EngineTest, NeedsPassOutputsBetweenJobs) {
  auto r = run(R"(on: push
jobs:
  produce:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    outputs:
      version: ${{ steps.v.outputs.version }}
    steps:
      - id: v
        run: |
          echo "version=1.2.3" >> "$GITHUB_OUTPUT"
          echo "EXPORTED=from-env" >> "$GITHUB_ENV"
      - run: echo "env says $EXPORTED"
  consume:
    runs-on: ubuntu-latest
    needs: produce
    container: localhost/busybox:test
    steps:
      - run: echo "got ${{ needs.produce.outputs.version }} [${{ needs.produce.result }}]"
)");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "[produce] env says from-env")) << r.out;
  EXPECT_TRUE(has(r.out, "[consume] got 1.2.3 [success]")) << r.out;
  EXPECT_LT(r.out.find("[produce] env says"), r.out.find("[consume] got"));
}

TEST_F(EngineTest, FailFastCancelsSiblings) {
  auto r = run(R"(on: push
jobs:
  t:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    strategy:
      matrix:
        n: [1, 2, 3, 4]
    steps:
      - run: |
          if [ "${{ matrix.n }}" = 1 ]; then exit 1; fi
          sleep 30
)",
               {"--jobs", "2"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "0 of 4 jobs passed")) << r.out;
  std::regex cancelled(R"(\bcancelled\b)");
  EXPECT_GE(std::distance(std::sregex_iterator(r.out.begin(), r.out.end(), cancelled),
                          std::sregex_iterator()),
            3)
      << r.out;
}

TEST_F(EngineTest, ContinueOnErrorAndFailureCleanup) {
  auto r = run(R"(on: push
jobs:
  j:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - id: flaky
        continue-on-error: true
        run: exit 4
      - run: echo "after flaky outcome=${{ steps.flaky.outcome }} conclusion=${{ steps.flaky.conclusion }}"
      - run: exit 2
      - run: echo "must not run"
      - if: failure()
        run: echo "cleanup ran"
      - if: always()
        run: echo "always ran"
)");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "after flaky outcome=failure conclusion=success")) << r.out;
  EXPECT_FALSE(has(r.out, "] must not run"));
  EXPECT_TRUE(has(r.out, "] cleanup ran"));
  EXPECT_TRUE(has(r.out, "] always ran"));
  EXPECT_TRUE(has(r.err, "step 'exit 2' failed: exit code 2")) << r.err;
}

TEST_F(EngineTest, StepTimeoutKillsTheStep) {
  auto r = run(R"(on: push
jobs:
  slow:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - name: sleeper
        timeout-minutes: 0.02
        run: sleep 60
)");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(has(r.err, "step 'sleeper' failed: timed out after")) << r.err;
}

TEST_F(EngineTest, SecretsAreMaskedInConsoleLogsAndReports) {
  auto junit = home_.root() / "junit.xml";
  auto json = home_.root() / "report.json";
  auto r = run(R"(on: push
jobs:
  s:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - name: leak
        run: |
          echo "token is ${{ secrets.TOKEN }}"
          echo "::add-mask::dynamic-value-42"
          echo "later dynamic-value-42"
          exit 1
)",
               {"--secret", "TOKEN=hunter2-very-secret", "--report", "junit=" + junit.string(),
                "--report", "json=" + json.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_FALSE(has(r.out + r.err, "hunter2-very-secret"));
  EXPECT_FALSE(has(r.out + r.err, "dynamic-value-42"));
  EXPECT_TRUE(has(r.out, "token is ***")) << r.out;
  EXPECT_TRUE(has(r.out, "later ***"));
  std::string xml = read(junit);
  EXPECT_TRUE(has(xml, "<testsuites")) << xml;
  EXPECT_TRUE(has(xml, "token is ***")) << xml;
  EXPECT_TRUE(has(xml, "<failure message=")) << xml;
  EXPECT_FALSE(has(xml, "hunter2-very-secret"));
  EXPECT_FALSE(has(read(json), "hunter2-very-secret"));
  // The job's log file under the run dir is masked too.
  int logs = 0;
  for (auto& e : std::filesystem::recursive_directory_iterator(home_.home() / "runs")) {
    if (e.path().filename() != "log.txt") continue;
    ++logs;
    std::string log = read(e.path());
    EXPECT_TRUE(has(log, "token is ***")) << log;
    EXPECT_FALSE(has(log, "hunter2-very-secret"));
    EXPECT_FALSE(has(log, "dynamic-value-42"));
  }
  EXPECT_EQ(logs, 1);
}

TEST_F(EngineTest, JobIfAndSkippedDependents) {
  auto r = run(R"(on: push
jobs:
  a:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - run: exit 1
  b:
    runs-on: ubuntu-latest
    needs: a
    container: localhost/busybox:test
    steps:
      - run: echo "b should be skipped"
  c:
    runs-on: ubuntu-latest
    needs: a
    if: failure()
    container: localhost/busybox:test
    steps:
      - run: echo "c handles the failure"
)");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_FALSE(has(r.out, "] b should be skipped"));
  EXPECT_TRUE(has(r.out, "[c] c handles the failure")) << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(\nb\s+-\s+skipped)"))) << r.out;
}

TEST_F(EngineTest, BadInputIsAWorkflowErrorWithLocation) {
  struct Case {
    const char* yaml;
    const char* expect;
  };
  const Case cases[] = {
      {"jobs:\n  a:\n    runs-on: x\n    container: x\n    steps: [\n", "wf.yml:"},
      {"jobs:\n  a:\n    runs-on: x\n    needs: b\n    container: x\n    steps:\n      - run: "
       "'true'\n  b:\n"
       "    runs-on: x\n    needs: a\n    container: x\n    steps:\n      - run: 'true'\n",
       "cycle"},
      {"jobs:\n  a:\n    runs-on: x\n    needs: nope\n    container: x\n    steps:\n      - run: "
       "'true'\n",
       "unknown job 'nope'"},
      {"jobs:\n  a:\n    runs-on: x\n    container: x\n    steps:\n      - run: echo ${{ "
       "matrix.nokey }}\n",
       "matrix key 'nokey'"},
      {"jobs:\n  a:\n    runs-on: x\n    container: x\n    steps:\n      - run: echo ${{ 1 + }}\n",
       "wf.yml:6:"},
      {"jobs:\n  a:\n    runs-on: x\n    container: x\n    strategy:\n      matrix: {}\n    "
       "steps:\n"
       "      - run: 'true'\n",
       "wf.yml:6:"},
  };
  for (const auto& c : cases) {
    auto r = run(c.yaml);
    EXPECT_EQ(r.exit_code, 2) << c.yaml << "\n" << r.err;
    EXPECT_TRUE(has(r.err, c.expect)) << c.yaml << "\n" << r.err;
    EXPECT_TRUE(has(r.err, "lockstep: error: ")) << r.err;
    EXPECT_FALSE(has(r.out, "jobs passed"));
  }
}

// `lockstep run --plan FILE`, as an agent runs a server's job: exactly the
// planned cell (a matrix of objects too), the needs context given instead of
// running the jobs it needs, the image held to the run's pin even when its
// tag has moved; bad plans are one-line errors and nothing runs.
TEST_F(EngineTest, AJobPlanRunsItsCellWithGivenNeedsAndPinnedImages) {
  home_.write("wf.yml", R"(on: push
jobs:
  build:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - run: echo "build ran"
  test:
    needs: build
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    strategy:
      matrix:
        cfg: [{name: a, n: 1}, {name: b, n: 2}]
    steps:
      - run: echo "cell ${{ matrix.cfg.name }} ${{ matrix.cfg.n }} ${{ needs.build.outputs.v }} ${{ github.event_name }}" && test ! -e /moved
)");
  // The digest the tag names now; then the tag moves to another image.
  const std::string pinned = home_.import_busybox("localhost/busybox:test");
  ASSERT_EQ(pinned.rfind("sha256:", 0), 0u) << pinned;
  const auto moved = home_.root() / "busybox-moved";
  std::filesystem::copy(
      home_.root() / "busybox-rootfs", moved,
      std::filesystem::copy_options::recursive | std::filesystem::copy_options::copy_symlinks);
  std::ofstream(moved / "moved") << "moved\n";
  ASSERT_EQ(home_.lockstep({"image", "import", moved.string(), "--tag", "localhost/busybox:test"})
                .exit_code,
            0);
  auto plan = home_.write("plan.json", R"({"workflow": "wf.yml", "job": "test",
      "matrix": {"cfg": {"n": 2, "name": "b"}}, "event": "pull_request",
      "event_payload": {"number": 3, "pull_request": {"number": 3,
        "head": {"ref": "topic"}, "base": {"ref": "main"}}},
      "needs": {"build": {"result": "success", "outputs": {"v": "given"}}},
      "pins": {"images": {"localhost/busybox:test": ")" +
                                           pinned + R"("}}, "repo": "ignored/by-run"})");
  auto r = home_.lockstep({"run", "--plan", plan.string()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "cell b 2 given pull_request")) << r.out;
  EXPECT_FALSE(has(r.out, "cell a")) << r.out;
  EXPECT_FALSE(has(r.out, "build ran")) << r.out;
  EXPECT_TRUE(has(read(home_.latest_record()), pinned)) << read(home_.latest_record());

  // Without the pin the tag's new image runs, and the step sees /moved.
  auto unpinned = home_.write("unpinned.json", R"({"workflow": "wf.yml", "job": "test",
      "matrix": {"cfg": {"name": "a", "n": 1}},
      "needs": {"build": {"result": "success", "outputs": {"v": "given"}}}})");
  r = home_.lockstep({"run", "--plan", unpinned.string()});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "cell a 1 given push")) << r.out;

  const auto runs_before = home_.run_ids().size();
  for (const auto& [args, why] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--plan", plan.string(), "--job", "test"},
            "--job cannot be given with --plan, which names it"},
           {{"--plan", plan.string(), "wf.yml"}, "--plan names the workflow"},
           {{"--plan", home_.write("p1.json", R"({"workflow": "../wf.yml", "job": "test"})")},
            "'workflow' must be a path inside the checkout, got '../wf.yml'"},
           {{"--plan", home_.write("p2.json", R"({"workflow": "wf.yml"})")}, "'job' is missing"},
           {{"--plan", home_.write("p3.json", R"({"workflow": "wf.yml", "job": "test",
               "pins": {"images": {"x": 3}}})")},
            "'pins.images' of 'x' must be a string"},
           {{"--plan", home_.write("p4.json", R"({"workflow": "wf.yml", "job": "test",
               "matrix": {"cfg": {"name": "c"}}, "needs": {"build": {"result": "success"}}})")},
            "no job instance matches the selection"}}) {
    std::vector<std::string> argv = {"run"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto bad = home_.lockstep(argv);
    EXPECT_EQ(bad.exit_code, 2) << bad.out << bad.err;
    EXPECT_TRUE(has(bad.err, why)) << bad.err;
    EXPECT_EQ(std::count(bad.err.begin(), bad.err.end(), '\n'), 1) << bad.err;
  }
  EXPECT_EQ(home_.run_ids().size(), runs_before);
}

}  // namespace
}  // namespace lockstep::testing
