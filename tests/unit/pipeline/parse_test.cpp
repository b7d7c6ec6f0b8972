#include "pipeline/parse.hpp"

#include <random>

#include <gtest/gtest.h>

#include "common/fs.hpp"
#include "pipeline/diagnostic.hpp"

namespace lockstep::pipeline {
namespace {

Workflow parse_ok(std::string_view yaml) {
  auto r = parse_workflow(yaml, "ci.yml");
  EXPECT_TRUE(r) << r.error().message();
  return r ? std::move(*r) : Workflow{};
}

constexpr const char* kFull = R"(name: CI
on: [push, pull_request]
permissions:
  contents: read
env:
  GLOBAL: "1"
defaults:
  run:
    shell: bash
    working-directory: src
jobs:
  setup:
    runs-on: ubuntu-latest
    outputs:
      matrix: ${{ steps.gen.outputs.matrix }}
    steps:
      - id: gen
        run: echo 'matrix={"os":["a"]}' >> "$GITHUB_OUTPUT"
  build:
    name: Build ${{ matrix.compiler }}
    needs: setup
    if: github.event_name == 'push'
    runs-on: [self-hosted, linux]
    container:
      image: gcc:${{ matrix.compiler }}
      env:
        CC: gcc
      options: --cpus 2 --memory 1g
      volumes:
        - /cache:/cache
    services:
      db:
        image: postgres:16
        env:
          POSTGRES_PASSWORD: x
        ports:
          - 5432:5432
        options: --health-cmd "pg_isready" --health-interval 10s
    strategy:
      fail-fast: false
      max-parallel: 4
      matrix:
        compiler: [12, '13']
        build_type: [Release, Debug]
        include:
          - compiler: 13
            extra: true
        exclude:
          - build_type: Debug
    env:
      JOB: x
    timeout-minutes: 30
    continue-on-error: ${{ matrix.compiler == 13 }}
    concurrency: build
    defaults:
      run:
        shell: sh
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0
      - name: Compile
        id: compile
        run: |
          make -j2
          make test
        shell: bash
        working-directory: build
        env:
          VERBOSE: 1
        if: ${{ success() }}
        timeout-minutes: 10
        continue-on-error: true
)";

TEST(ParseWorkflow, ReadsEverySupportedKey) {
  Workflow wf = parse_ok(kFull);
  EXPECT_EQ(wf.file, "ci.yml");
  EXPECT_EQ(wf.name, "CI");
  ASSERT_EQ(wf.env.size(), 1u);
  EXPECT_EQ(wf.env[0], (std::pair<std::string, std::string>{"GLOBAL", "1"}));
  EXPECT_EQ(wf.defaults.shell, "bash");
  EXPECT_EQ(wf.defaults.working_directory, "src");
  ASSERT_EQ(wf.ignored.size(), 2u);
  EXPECT_EQ(wf.ignored[0].key, "permissions");
  EXPECT_EQ(wf.ignored[0].where, "the workflow");
  EXPECT_EQ(wf.ignored[0].loc.line, 3);
  EXPECT_EQ(wf.ignored[1].key, "concurrency");
  EXPECT_EQ(wf.ignored[1].where, "job 'build'");
  ASSERT_EQ(wf.jobs.size(), 2u);
  const Job& setup = wf.jobs[0];
  EXPECT_EQ(setup.id, "setup");
  EXPECT_EQ(setup.loc.line, 12);
  EXPECT_EQ(setup.loc.column, 3);
  EXPECT_EQ(setup.outputs.at("matrix"), "${{ steps.gen.outputs.matrix }}");
  const Job& b = wf.jobs[1];
  EXPECT_EQ(b.name, "Build ${{ matrix.compiler }}");
  EXPECT_EQ(b.needs, std::vector<std::string>{"setup"});
  ASSERT_EQ(b.needs_locs.size(), 1u);
  EXPECT_EQ(b.needs_locs[0].line, 21);
  EXPECT_EQ(b.needs_locs[0].column, 12);
  EXPECT_EQ(b.if_expr, "github.event_name == 'push'");
  EXPECT_EQ(b.runs_on, (std::vector<std::string>{"self-hosted", "linux"}));
  ASSERT_TRUE(b.container);
  EXPECT_EQ(b.container->image, "gcc:${{ matrix.compiler }}");
  EXPECT_EQ(b.container->env[0].second, "gcc");
  EXPECT_EQ(b.container->options, "--cpus 2 --memory 1g");
  EXPECT_EQ(b.container->volumes, std::vector<std::string>{"/cache:/cache"});
  ASSERT_EQ(b.services.size(), 1u);
  EXPECT_EQ(b.services[0].name, "db");
  EXPECT_EQ(b.services[0].container.image, "postgres:16");
  EXPECT_EQ(b.services[0].ports, std::vector<std::string>{"5432:5432"});
  EXPECT_EQ(b.strategy.fail_fast, "false");
  EXPECT_EQ(b.strategy.max_parallel, 4);
  EXPECT_EQ(b.strategy.matrix.dump(),
            R"({"compiler":[12,"13"],"build_type":["Release","Debug"],)"
            R"("include":[{"compiler":13,"extra":true}],"exclude":[{"build_type":"Debug"}]})");
  EXPECT_EQ(b.strategy.matrix_loc.line, 43);
  EXPECT_EQ(b.env[0].first, "JOB");
  EXPECT_EQ(b.timeout_minutes, "30");
  EXPECT_EQ(b.continue_on_error, "${{ matrix.compiler == 13 }}");
  EXPECT_EQ(b.defaults.shell, "sh");
  ASSERT_EQ(b.steps.size(), 2u);
  EXPECT_EQ(b.steps[0].uses, "actions/checkout@v4");
  EXPECT_EQ(b.steps[0].with.at("fetch-depth"), "0");
  EXPECT_EQ(b.steps[0].loc.line, 59);
  EXPECT_EQ(b.steps[0].loc.column, 9);
  const Step& s = b.steps[1];
  EXPECT_EQ(s.name, "Compile");
  EXPECT_EQ(s.id, "compile");
  EXPECT_EQ(s.run, "make -j2\nmake test\n");
  EXPECT_EQ(s.shell, "bash");
  EXPECT_EQ(s.working_directory, "build");
  EXPECT_EQ(s.env[0], (std::pair<std::string, std::string>{"VERBOSE", "1"}));
  EXPECT_EQ(s.if_expr, "${{ success() }}");
  EXPECT_EQ(s.timeout_minutes, "10");
  EXPECT_EQ(s.continue_on_error, "true");
  // Every expression-bearing string of the job, in document order.
  std::vector<std::string> whats;
  for (const auto& site : b.expressions) whats.push_back(site.what);
  EXPECT_EQ(whats, (std::vector<std::string>{"'name'", "'if'", "'image' of 'container'",
                                             "'continue-on-error'", "'if' of step 2"}));
  EXPECT_EQ(b.expressions[0].loc.line, 20);
  EXPECT_EQ(b.expressions[0].loc.column, 11);
  EXPECT_TRUE(b.expressions[1].condition);
}

TEST(ParseWorkflow, QuotedBangAndStandardTagsAreText) {
  Workflow wf = parse_ok(R"y(jobs:
  a:
    runs-on: !!str x
    steps:
      - run: make
        if: "!cancelled()"
      - run: make
        if: ${{ !cancelled() }}
)y");
  EXPECT_EQ(wf.jobs[0].runs_on, std::vector<std::string>{"x"});
  EXPECT_EQ(wf.jobs[0].steps[0].if_expr, "!cancelled()");
  EXPECT_EQ(wf.jobs[0].steps[1].if_expr, "${{ !cancelled() }}");
}

TEST(ParseWorkflow, ScalarFormsOfNeedsRunsOnContainer) {
  Workflow wf = parse_ok(R"(on: push
jobs:
  a:
    runs-on: ubuntu-latest
    container: alpine:3.19
    steps: [{run: "true"}]
  b:
    needs: [a]
    runs-on: ubuntu-latest
    steps:
      - run: echo
)");
  EXPECT_EQ(wf.jobs[0].runs_on, std::vector<std::string>{"ubuntu-latest"});
  EXPECT_EQ(wf.jobs[0].container->image, "alpine:3.19");
  EXPECT_EQ(wf.jobs[1].needs, std::vector<std::string>{"a"});
  EXPECT_TRUE(wf.jobs[0].strategy.matrix.is_null());
  EXPECT_EQ(wf.jobs[0].strategy.fail_fast, "true");
}

TEST(ParseErrors, RendersLineAndCaret) {
  auto r = parse_workflow(R"(on: push
jobs:
  build:
    runs-on: ubuntu-latest
    step:
      - run: make
)",
                          "ci.yml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "ci.yml:5:5: unknown key 'step' in job 'build' (did you mean 'steps'?)\n"
            "    5 |     step:\n"
            "      |     ^");
  auto decoded = decode_workflow_error(r.error());
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->file, "ci.yml");
  EXPECT_EQ(decoded->line, 5);
  EXPECT_EQ(decoded->column, 5);
  EXPECT_EQ(decoded->message, "unknown key 'step' in job 'build' (did you mean 'steps'?)");
  EXPECT_EQ(decoded->source_line, "    step:");
}

// Every prefix of a valid workflow either parses or fails with a located
// workflow error: no exception, no crash, no unlocated message.
TEST(ParseRobustness, EveryPrefixParsesOrFailsLocated) {
  const std::string full = kFull;
  size_t parsed = 0;
  for (size_t n = 0; n <= full.size(); ++n) {
    auto r = parse_workflow(std::string_view(full).substr(0, n), "ci.yml");
    if (r) {
      ++parsed;
      continue;
    }
    EXPECT_EQ(r.error().kind(), ErrorKind::kWorkflow);
    EXPECT_TRUE(decode_workflow_error(r.error())) << n << ": " << r.error().message();
  }
  EXPECT_GT(parsed, 0u);
  EXPECT_LT(parsed, full.size());
}

// Fixed-seed byte mutations of a valid workflow: each parses or fails with a
// located workflow error (a poor man's fuzzer that runs in every build).
TEST(ParseRobustness, MutatedWorkflowsFailLocated) {
  const std::string full = kFull;
  const std::string alphabet = " \n\t:-[]{}'\"$!&*|>#,.0a";
  std::mt19937 rng(12345);
  size_t failed = 0;
  for (int round = 0; round < 1500; ++round) {
    std::string text = full;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      size_t pos = rng() % text.size();
      char c = alphabet[rng() % alphabet.size()];
      switch (rng() % 3) {
        case 0:
          text[pos] = c;
          break;
        case 1:
          text.insert(text.begin() + static_cast<std::ptrdiff_t>(pos), c);
          break;
        default:
          text.erase(pos, 1);
          break;
      }
    }
    auto r = parse_workflow(text, "ci.yml");
    if (r) continue;
    ++failed;
    EXPECT_EQ(r.error().kind(), ErrorKind::kWorkflow);
    EXPECT_TRUE(decode_workflow_error(r.error())) << round << ": " << r.error().message();
  }
  EXPECT_GT(failed, 100u);
}

TEST(ParseRobustness, HugeNumbersAndDeepNesting) {
  Workflow wf = parse_ok(R"(jobs:
  a:
    runs-on: x
    strategy:
      matrix:
        n: [1e999, 123456789012345678901234567890, 0x7fffffffffffffffff]
    steps: [{run: x}]
)");
  EXPECT_EQ(wf.jobs[0].strategy.matrix.dump(),
            R"({"n":["1e999",1.2345678901234568e+29,"0x7fffffffffffffffff"]})");
  std::string deep = "jobs: " + std::string(3000, '[') + std::string(3000, ']') + "\n";
  auto r = parse_workflow(deep, "ci.yml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::kWorkflow);
}

TEST(LoadWorkflow, ReadsAFileAndNamesItInErrors) {
  auto dir = TempDir::create(std::filesystem::temp_directory_path(), "pipeline-load");
  ASSERT_TRUE(dir) << dir.error().message();
  auto path = dir->path() / "ci.yml";
  ASSERT_TRUE(write_file_atomic(path, "jobs:\n  a:\n    runs-on: x\n    steps: [{run: make}]\n"));
  auto wf = load_workflow(path);
  ASSERT_TRUE(wf) << wf.error().message();
  EXPECT_EQ(wf->file, path.string());
  EXPECT_EQ(wf->jobs[0].steps[0].run, "make");
  auto missing = load_workflow(dir->path() / "nope.yml");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message(),
            "read workflow " + (dir->path() / "nope.yml").string() + ": No such file or directory");
  EXPECT_EQ(missing.error().errnum(), ENOENT);
}

TEST(Spellcheck, NearestWithinThreeEdits) {
  EXPECT_EQ(spellcheck("stpes", {"steps", "env", "needs"}), "steps");
  EXPECT_EQ(spellcheck("Needs", {"steps", "env", "needs"}), "needs");
  EXPECT_EQ(spellcheck("xyz", {"steps", "env", "needs"}), "");
  EXPECT_EQ(spellcheck("ix", {"if", "id"}), "if");
  EXPECT_EQ(did_you_mean("contaner", {"container", "services"}), " (did you mean 'container'?)");
  EXPECT_EQ(did_you_mean("qqqqqqq", {"container"}), "");
}

}  // namespace
}  // namespace lockstep::pipeline
