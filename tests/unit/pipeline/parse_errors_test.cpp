// Every workflow error message of the parser, pinned.
#include <gtest/gtest.h>

#include "pipeline/diagnostic.hpp"
#include "pipeline/parse.hpp"

namespace lockstep::pipeline {
namespace {

// The one-line form of the error.
std::string parse_error(std::string_view yaml) {
  auto r = parse_workflow(yaml, "ci.yml");
  EXPECT_FALSE(r) << yaml;
  if (r) return "";
  EXPECT_EQ(r.error().kind(), ErrorKind::kWorkflow);
  return std::string(first_line(r.error()));
}

// GitHub evaluates expressions in mapping keys; lockstep in the matrix only,
// and says so everywhere else rather than take the text as a name.
TEST(ParseErrors, ExpressionKeysOutsideTheMatrix) {
  EXPECT_EQ(parse_error("jobs:\n  a:\n    runs-on: x\n    env:\n      ${{ matrix.k }}: v\n"
                        "    steps: [{run: x}]\n"),
            "ci.yml:5:7: an expression as a key ('${{ matrix.k }}') in 'env' in job 'a' is not "
            "supported by lockstep (only in strategy.matrix)");
  EXPECT_EQ(parse_error("jobs:\n  a:\n    runs-on: x\n    steps:\n      - uses: o/r@v1\n"
                        "        with:\n          ${{ 'x' }}: 1\n"),
            "ci.yml:7:11: an expression as a key ('${{ 'x' }}') in 'with' in step 1 of job 'a' is "
            "not supported by lockstep (only in strategy.matrix)");
  EXPECT_EQ(parse_error("jobs:\n  a:\n    runs-on: x\n    ${{ 'steps' }}: [{run: x}]\n"),
            "ci.yml:4:5: an expression as a key ('${{ 'steps' }}') in job 'a' is not supported by "
            "lockstep (only in strategy.matrix)");
  EXPECT_EQ(parse_error("jobs:\n  a:\n    runs-on: x\n    services:\n      ${{ 'db' }}:\n"
                        "        image: x\n    steps: [{run: x}]\n"),
            "ci.yml:5:7: an expression as a key ('${{ 'db' }}') in 'services' in job 'a' is not "
            "supported by lockstep (only in strategy.matrix)");
  // A key of the matrix is checked like any expression.
  EXPECT_EQ(parse_error("jobs:\n  a:\n    runs-on: x\n    strategy:\n      matrix:\n"
                        "        ${{ 'os' ) }}: [a]\n    steps: [{run: x}]\n")
                .substr(0, 12),
            "ci.yml:6:9: ");
}

TEST(ParseErrors, UnknownKeysEverywhere) {
  EXPECT_EQ(parse_error("on: push\njob:\n  a: {}\n"),
            "ci.yml:2:1: unknown key 'job' in the workflow (did you mean 'jobs'?)");
  EXPECT_EQ(parse_error("on: push\nfoo: 1\njobs: {}\n"),
            "ci.yml:2:1: unknown key 'foo' in the workflow");
  EXPECT_EQ(parse_error(R"(jobs:
  a:
    runs-on: x
    steps:
      - rn: make
)"),
            "ci.yml:5:9: unknown key 'rn' in step 1 of job 'a' (did you mean 'run'?)");
  EXPECT_EQ(parse_error(R"(jobs:
  a:
    runs-on: x
    strategy:
      matrx: {os: [a]}
    steps: [{run: x}]
)"),
            "ci.yml:5:7: unknown key 'matrx' in 'strategy' of job 'a' (did you mean 'matrix'?)");
  EXPECT_EQ(parse_error(R"(jobs:
  a:
    runs-on: x
    container:
      imag: alpine
    steps: [{run: x}]
)"),
            "ci.yml:5:7: unknown key 'imag' in 'container' of job 'a' (did you mean 'image'?)");
  EXPECT_EQ(
      parse_error(R"(defaults:
  run:
    shel: bash
jobs: {}
)"),
      "ci.yml:3:5: unknown key 'shel' in 'defaults.run' of the workflow (did you mean 'shell'?)");
  EXPECT_EQ(
      parse_error(R"(jobs:
  a:
    runs-on: x
    timeout-minute: 3
    steps: [{run: x}]
)"),
      "ci.yml:4:5: unknown key 'timeout-minute' in job 'a' (did you mean 'timeout-minutes'?)");
}

TEST(ParseErrors, UnsupportedKeysAreNamed) {
  EXPECT_EQ(parse_error(R"(jobs:
  deploy:
    runs-on: x
    environment: production
    steps: [{run: x}]
)"),
            "ci.yml:4:5: 'environment' in job 'deploy' is not supported by lockstep");
  EXPECT_EQ(parse_error(R"(jobs:
  call:
    runs-on: x
    secrets: inherit
    steps: [{run: x}]
)"),
            "ci.yml:4:5: 'secrets' in job 'call' belongs to a job that calls a reusable "
            "workflow (with 'uses')");
  EXPECT_EQ(parse_error(R"(jobs:
  a:
    runs-on: x
    container:
      image: ghcr.io/o/i
      credentials:
        username: u
    steps: [{run: x}]
)"),
            "ci.yml:6:7: 'credentials' in 'container' of job 'a' is not supported by lockstep");
  EXPECT_EQ(parse_error(R"(jobs:
  a:
    runs-on: {group: big}
    steps: [{run: x}]
)"),
            "ci.yml:3:5: 'runs-on' as a mapping (group/labels) is not supported by lockstep");
  EXPECT_EQ(parse_error(R"(jobs:
  a:
    runs-on: x
    steps:
      - uses: actions/checkout
)"),
            "ci.yml:5:15: 'actions/checkout' needs a version, as in 'actions/checkout@v1'");
}

TEST(ParseErrors, WrongTypes) {
  EXPECT_EQ(parse_error("jobs:\n  - build\n"),
            "ci.yml:2:3: expected a mapping for 'jobs', got a sequence");
  EXPECT_EQ(parse_error("- a\n- b\n"),
            "ci.yml:1:1: expected a mapping for the workflow, got a sequence");
  EXPECT_EQ(parse_error("jobs:\n"), "ci.yml:1:1: expected a mapping for 'jobs', got nothing");
  EXPECT_EQ(parse_error("jobs:\n  a: build\n"),
            "ci.yml:2:6: expected a mapping for job 'a', got a string");
  EXPECT_EQ(parse_error(R"(jobs:
  a:
    runs-on: x
    steps:
      run: make
)"),
            "ci.yml:5:7: expected a sequence for 'steps' in job 'a', got a mapping");
  EXPECT_EQ(parse_error(R"(jobs:
  a:
    runs-on: x
    steps:
      - run:
          - make
)"),
            "ci.yml:6:11: expected a string for 'run' in step 1 of job 'a', got a sequence");
  EXPECT_EQ(parse_error(R"(jobs:
  a:
    runs-on: x
    needs: {b: 1}
    steps: [{run: x}]
)"),
            "ci.yml:4:12: expected a string or a sequence for 'needs' in job 'a', got a mapping");
  EXPECT_EQ(parse_error(R"(env:
  A: [1, 2]
jobs: {}
)"),
            "ci.yml:2:6: expected a string for 'A' in 'env' of the workflow, got a sequence");
  EXPECT_EQ(parse_error(R"(jobs:
  a:
    runs-on: x
    timeout-minutes: soon
    steps: [{run: x}]
)"),
            "ci.yml:4:22: expected a positive number or an expression for 'timeout-minutes' in "
            "job 'a', got 'soon'");
  EXPECT_EQ(parse_error(R"(jobs:
  a:
    runs-on: x
    continue-on-error: maybe
    steps: [{run: x}]
)"),
            "ci.yml:4:24: expected true, false or an expression for 'continue-on-error' in job "
            "'a', got 'maybe'");
  EXPECT_EQ(parse_error(R"(jobs:
  a:
    runs-on: x
    strategy:
      max-parallel: 0
    steps: [{run: x}]
)"),
            "ci.yml:5:21: expected a positive integer for 'max-parallel' in 'strategy' of job "
            "'a', got '0'");
  EXPECT_EQ(parse_error(R"(jobs:
  a:
    runs-on: x
    strategy:
      matrix:
        os: ubuntu
    steps: [{run: x}]
)"),
            "ci.yml:6:13: expected a sequence for matrix axis 'os', got a string");
  EXPECT_EQ(parse_error(R"(jobs:
  a:
    runs-on: x
    strategy:
      matrix:
        include: [ubuntu]
    steps: [{run: x}]
)"),
            "ci.yml:6:19: expected mappings in 'include' of 'matrix' of job 'a', got a string");
}

TEST(ParseErrors, StructuralRules) {
  EXPECT_EQ(parse_error(""), "ci.yml:1:1: the workflow is empty");
  EXPECT_EQ(parse_error("on: push\n"), "ci.yml:1:1: the workflow has no 'jobs'");
  EXPECT_EQ(parse_error("jobs: {}\n"), "ci.yml:1:1: 'jobs' is empty");
  EXPECT_EQ(parse_error("jobs:\n  a:\n    runs-on: x\n"), "ci.yml:2:3: job 'a' has no 'steps'");
  EXPECT_EQ(parse_error("jobs:\n  a:\n    steps: [{run: x}]\n"),
            "ci.yml:2:3: job 'a' has no 'runs-on'");
  EXPECT_EQ(parse_error("jobs:\n  a:\n    runs-on: x\n    steps: []\n"),
            "ci.yml:4:5: 'steps' in job 'a' is empty");
  EXPECT_EQ(parse_error(R"(jobs:
  a:
    runs-on: x
    steps:
      - run: make
        uses: actions/checkout@v4
)"),
            "ci.yml:5:9: step 1 of job 'a' has both 'run' and 'uses' (a step does one of them)");
  EXPECT_EQ(parse_error(R"(jobs:
  a:
    runs-on: x
    steps:
      - run: a
      - name: nothing
)"),
            "ci.yml:6:9: step 2 of job 'a' has neither 'run' nor 'uses'");
  EXPECT_EQ(parse_error(R"(jobs:
  a:
    runs-on: x
    steps:
      - id: build
        run: a
      - id: build
        run: b
)"),
            "ci.yml:7:13: duplicate step id 'build' in job 'a' (first used at line 5)");
  EXPECT_EQ(parse_error(R"(jobs:
  1build:
    runs-on: x
    steps: [{run: x}]
)"),
            "ci.yml:2:3: invalid job id '1build': a job id starts with a letter or '_' and holds "
            "only letters, digits, '-' and '_'");
  EXPECT_EQ(parse_error(R"(jobs:
  a:
    runs-on: x
    steps:
      - id: my step
        run: a
)"),
            "ci.yml:5:13: invalid step id 'my step': a step id starts with a letter or '_' and "
            "holds only letters, digits, '-' and '_'");
  EXPECT_EQ(parse_error(R"(jobs:
  a:
    runs-on: x
    steps: [{run: x}]
  a:
    runs-on: y
    steps: [{run: y}]
)"),
            "ci.yml:5:3: duplicate job id 'a'");
  EXPECT_EQ(parse_error(R"(jobs:
  a:
    runs-on: x
    runs-on: y
    steps: [{run: x}]
)"),
            "ci.yml:4:5: duplicate key 'runs-on' in job 'a'");
  EXPECT_EQ(parse_error(R"(jobs:
  a:
    runs-on: x
    container:
      env: {A: b}
    steps: [{run: x}]
)"),
            "ci.yml:5:7: 'container' of job 'a' has no 'image'");
  EXPECT_EQ(parse_error(R"(jobs:
  a:
    runs-on: x
    strategy:
      matrix: {}
    steps: [{run: x}]
)"),
            "ci.yml:5:15: 'matrix' of job 'a' is empty");
  EXPECT_EQ(parse_error(R"(jobs:
  a:
    runs-on: x
    strategy:
      matrix:
        os: []
    steps: [{run: x}]
)"),
            "ci.yml:6:9: matrix axis 'os' has no values");
  EXPECT_EQ(parse_error("jobs: {a: {runs-on: x, steps: [{run: x}]}}\n---\nb: 1\n"),
            "ci.yml:3:1: the file holds 2 YAML documents; a workflow is one");
}

TEST(ParseErrors, MalformedYaml) {
  EXPECT_EQ(parse_error("jobs:\n  a: [1,\nb: }\n"), "ci.yml:3:4: malformed YAML: illegal flow end");
  EXPECT_EQ(parse_error("jobs:\n  a:\n    b: 1\n   c: 2\n"),
            "ci.yml:4:4: malformed YAML: end of map not found");
  EXPECT_EQ(parse_error("jobs: [a, b\n"),
            "ci.yml:2:1: malformed YAML: end of sequence flow not found");
  EXPECT_EQ(parse_error("jobs:\n\ta: 1\n"), "ci.yml:2:3: malformed YAML: illegal map value");
  EXPECT_EQ(parse_error("jobs: *nope\n"),
            "ci.yml:1:7: malformed YAML: the referenced anchor is not defined");
}

TEST(ParseErrors, InvalidExpressionsAreLocated) {
  auto r = parse_workflow(R"(jobs:
  a:
    runs-on: x
    steps:
      - run: echo ${{ matrix.os = 1 }}
)",
                          "ci.yml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "ci.yml:5:14: invalid expression 'matrix.os = 1': unexpected character '=' at "
            "position 11\n"
            "    5 |       - run: echo ${{ matrix.os = 1 }}\n"
            "      |              ^");
  EXPECT_EQ(parse_error(R"(jobs:
  a:
    runs-on: x
    if: github.ref ==
    steps: [{run: x}]
)"),
            "ci.yml:4:9: invalid expression 'github.ref ==': unexpected end of expression");
  EXPECT_EQ(parse_error(R"(jobs:
  a:
    runs-on: x
    env:
      A: ${{ secret.TOKEN }}
    steps: [{run: x}]
)"),
            "ci.yml:5:10: invalid expression 'secret.TOKEN': unknown context 'secret' (did you "
            "mean 'secrets'?)");
  EXPECT_EQ(parse_error(R"(jobs:
  a:
    runs-on: x
    steps:
      - run: x
        with:
          key: ${{ hashFiles() }}
)"),
            "ci.yml:7:16: invalid expression 'hashFiles()': hashFiles() takes at least 1 "
            "argument, got 0");
  EXPECT_EQ(parse_error(R"(jobs:
  a:
    runs-on: x
    strategy:
      matrix: ${{ fromJSON(needs.a.outputs.m }}
    steps: [{run: x}]
)"),
            "ci.yml:5:15: invalid expression 'fromJSON(needs.a.outputs.m': unexpected end of "
            "expression");
  EXPECT_EQ(parse_error(R"(jobs:
  a:
    runs-on: x
    steps:
      - run: echo ${{ github.ref
)"),
            "ci.yml:5:14: '${{' at offset 5 has no closing '}}'");
}

TEST(ParseErrors, BangIsAYamlTag) {
  EXPECT_EQ(parse_error(R"(jobs:
  a:
    runs-on: x
    steps:
      - run: make
        if: !cancelled()
)"),
            "ci.yml:6:13: YAML reads '!cancelled()' as a tag; quote a value that starts with '!' "
            "or wrap it in ${{ }}");
  EXPECT_EQ(parse_error(R"(jobs:
  a:
    runs-on: x
    strategy:
      matrix:
        v: [!x 1]
    steps: [{run: x}]
)"),
            "ci.yml:6:13: YAML reads '!x' as a tag; quote a value that starts with '!' or wrap it "
            "in ${{ }}");
}

TEST(ParseErrors, VolumesAndPortsAreChecked) {
  EXPECT_EQ(parse_error(R"(jobs:
  a:
    runs-on: x
    services:
      db:
        image: postgres
        ports:
          - ${{ matrix.port }
    steps: [{run: x}]
)"),
            "ci.yml:8:13: '${{' at offset 0 has no closing '}}'");
  EXPECT_EQ(
      parse_error(R"(jobs:
  a:
    runs-on: x
    container:
      image: alpine
      volumes: /cache
    steps: [{run: x}]
)"),
      "ci.yml:6:16: expected a sequence for 'volumes' in 'container' of job 'a', got a string");
}

TEST(ParseErrors, ContainerOptionsAreChecked) {
  EXPECT_EQ(parse_error(R"(jobs:
  a:
    runs-on: x
    container:
      image: alpine
      options: --cpus 2 --privileged
    steps: [{run: x}]
)"),
            "ci.yml:6:16: unknown option '--privileged' in container options");
}

TEST(ParseErrors, TextThatIsNotUtf8IsRefusedInOneLine) {
  // A matrix key with a stray byte used to reach nlohmann::json and abort.
  auto r = parse_workflow(
      "jobs:\n  a:\n    runs-on: x\n    strategy:\n      matrix:\n        o\xC1s: [1]\n"
      "    steps: [{run: x}]\n",
      "ci.yml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::kWorkflow);
  EXPECT_EQ(r.error().message(), "ci.yml:6:10: invalid UTF-8 (byte 0xC1)");  // no quoted line
  EXPECT_EQ(parse_error("name: caf\xE9\njobs: {}\n"), "ci.yml:1:10: invalid UTF-8 (byte 0xE9)");
  EXPECT_EQ(parse_error("jobs: {}\n# \xED\xA0\x80\n"), "ci.yml:2:3: invalid UTF-8 (byte 0xED)");
  EXPECT_EQ(parse_error(std::string_view("\xFF\xFEj\0o\0", 6)),
            "ci.yml:1:1: invalid UTF-8 (byte 0xFF; the file looks like UTF-16)");
  // Found by fuzzing: yaml-cpp reads text with a NUL among its first bytes
  // as UTF-16, which made UTF-8 input into scalars that are not.
  EXPECT_EQ(parse_error(std::string_view("\x14\0v:\n \x0e\0\0\0\x1e[0, 2]{|\n", 20)),
            "ci.yml:1:1: control character U+0014 is not allowed in YAML");
  EXPECT_EQ(parse_error(std::string_view("jobs:\0\n", 7)),
            "ci.yml:1:6: control character U+0000 is not allowed in YAML");
  // Found by fuzzing: yaml-cpp writes the escapes \N and \_ as single bytes.
  EXPECT_EQ(parse_error("jobs:\n  a:\n    runs-on: x\n    strategy:\n      matrix:\n"
                        "        \"o\\Ns\": [1]\n    steps: [{run: x}]\n"),
            "ci.yml:6:9: this string is not UTF-8 after its escapes: lockstep cannot read \\N and "
            "\\_ (write \\u0085 and \\u00A0)");
  EXPECT_TRUE(
      parse_workflow("name: \"\\u0085 \\L \\x41\"\njobs:\n  a:\n    runs-on: x\n"
                     "    steps: [{run: x}]\n",
                     "ci.yml"));
  // UTF-8 text, and a byte order mark, are fine.
  EXPECT_TRUE(
      parse_workflow("\xEF\xBB\xBFname: caf\xC3\xA9\njobs:\n  a:\n    runs-on: x\n"
                     "    steps: [{run: echo \xE2\x82\xAC}]\n",
                     "ci.yml"));
}

TEST(ParseErrors, AStrayCommaIsAnErrorNotAnEndlessLoop) {
  // Found by fuzzing: yaml-cpp's LoadAll never returned on these, making
  // one empty document after another until memory ran out.
  EXPECT_EQ(parse_error(",obs:\n  a:\n    runs-on: x\n    steps: [{run: x}]\n"),
            "ci.yml:1:1: malformed YAML: unexpected ',' outside a flow sequence or mapping");
  EXPECT_EQ(parse_error("{jobs: {a: {runs-on: x, steps: [{run: x}]}}},\n"),
            "ci.yml:1:45: malformed YAML: unexpected ',' outside a flow sequence or mapping");
}

}  // namespace
}  // namespace lockstep::pipeline

namespace lockstep::pipeline {
namespace {

constexpr const char* kJobs = "jobs:\n  a:\n    runs-on: x\n    steps:\n      - run: make\n";

TEST(ParseErrors, ConcurrencyIsChecked) {
  auto with = [](const std::string& c) { return "concurrency:" + c + "\n" + kJobs; };
  EXPECT_EQ(parse_error(with("\n  cancel-in-progress: true")),
            "ci.yml:2:3: 'concurrency' needs a 'group'");
  EXPECT_EQ(parse_error(with("\n  group: g\n  queue: max")),
            "ci.yml:3:3: unknown key 'queue' in 'concurrency' (expected group, "
            "cancel-in-progress)");
  EXPECT_EQ(parse_error(with("\n  group: g\n  cancel-in-progress: sometimes")),
            "ci.yml:3:23: expected true, false or an expression for "
            "'concurrency.cancel-in-progress', got 'sometimes'");
  EXPECT_EQ(parse_error(with(" ${{ github.ref")).rfind("ci.yml:1:14: ", 0), 0u);
  EXPECT_EQ(parse_error(with(" [a, b]")),
            "ci.yml:1:14: expected a mapping for 'concurrency', got a sequence");
}

TEST(ParseConcurrency, GroupAndCancelInProgress) {
  auto wf = parse_workflow(std::string("concurrency: ci-${{ github.ref }}\n") + kJobs, "ci.yml");
  ASSERT_TRUE(wf) << wf.error().message();
  ASSERT_TRUE(wf->concurrency);
  EXPECT_EQ(wf->concurrency->group, "ci-${{ github.ref }}");
  EXPECT_EQ(wf->concurrency->cancel_in_progress, "false");
  wf = parse_workflow(std::string("concurrency:\n  group: g\n  cancel-in-progress: ${{ "
                                  "github.ref != 'refs/heads/main' }}\n") +
                          kJobs,
                      "ci.yml");
  ASSERT_TRUE(wf) << wf.error().message();
  EXPECT_EQ(wf->concurrency->group, "g");
  EXPECT_EQ(wf->concurrency->cancel_in_progress, "${{ github.ref != 'refs/heads/main' }}");
  // Still noted as not acted on by a local run.
  ASSERT_EQ(wf->ignored.size(), 1u);
  EXPECT_EQ(wf->ignored[0].key, "concurrency");
}

}  // namespace
}  // namespace lockstep::pipeline
