#include "pipeline/matrix.hpp"

#include <gtest/gtest.h>

#include "pipeline/diagnostic.hpp"
#include "pipeline/parse.hpp"

namespace lockstep::pipeline {
namespace {

// Wraps a matrix (YAML, indented for `matrix:`) in a workflow.
std::string workflow_with(std::string_view matrix, std::string_view extra = "") {
  return "jobs:\n  test:\n    runs-on: x\n" + std::string(extra) +
         "    strategy:\n      matrix:\n" + std::string(matrix) + "    steps:\n      - run: make\n";
}

// The expansion as one compact JSON object per combination.
std::vector<std::string> expand(std::string_view matrix, const EvalContext& ctx = {}) {
  auto wf = parse_workflow(workflow_with(matrix), "ci.yml");
  EXPECT_TRUE(wf) << wf.error().message();
  if (!wf) return {};
  auto combos = expand_matrix(wf->jobs[0].strategy.matrix, ctx);
  EXPECT_TRUE(combos) << combos.error().message();
  std::vector<std::string> out;
  if (combos) {
    for (const auto& c : *combos) out.push_back(c.dump());
  }
  return out;
}

std::string expand_error(std::string_view matrix, const EvalContext& ctx = {}) {
  auto wf = parse_workflow(workflow_with(matrix), "ci.yml");
  EXPECT_TRUE(wf) << wf.error().message();
  if (!wf) return {};
  auto inst = expand_jobs(*wf, ctx);
  EXPECT_FALSE(inst);
  return inst ? std::string() : std::string(first_line(inst.error()));
}

using Combos = std::vector<std::string>;

// Docs: "Using a matrix strategy" — the first variable varies slowest.
TEST(MatrixDocs, OrderOfCombinations) {
  EXPECT_EQ(
      expand("        version: [10, 12, 14]\n        os: [ubuntu-latest, windows-latest]\n"),
      (Combos{R"({"version":10,"os":"ubuntu-latest"})", R"({"version":10,"os":"windows-latest"})",
              R"({"version":12,"os":"ubuntu-latest"})", R"({"version":12,"os":"windows-latest"})",
              R"({"version":14,"os":"ubuntu-latest"})",
              R"({"version":14,"os":"windows-latest"})"}));
}

// Docs: "Example: Using a single-dimension matrix".
TEST(MatrixDocs, SingleDimension) {
  EXPECT_EQ(expand("        version: [10, 12, 14]\n"),
            (Combos{R"({"version":10})", R"({"version":12})", R"({"version":14})"}));
}

// Docs: "Example: Using a multi-dimension matrix".
TEST(MatrixDocs, MultiDimension) {
  auto c = expand("        os: [ubuntu-22.04, ubuntu-20.04]\n        version: [10, 12, 14]\n");
  ASSERT_EQ(c.size(), 6u);
  EXPECT_EQ(c.front(), R"({"os":"ubuntu-22.04","version":10})");
  EXPECT_EQ(c.back(), R"({"os":"ubuntu-20.04","version":14})");
}

// Docs: a matrix variable can be an array of objects.
TEST(MatrixDocs, ObjectValues) {
  EXPECT_EQ(
      expand(R"(        os:
          - ubuntu-latest
          - macos-latest
        node:
          - version: 14
          - version: 20
            env: NODE_OPTIONS=--openssl-legacy-provider
)"),
      (Combos{
          R"({"os":"ubuntu-latest","node":{"version":14}})",
          R"({"os":"ubuntu-latest","node":{"version":20,"env":"NODE_OPTIONS=--openssl-legacy-provider"}})",
          R"({"os":"macos-latest","node":{"version":14}})",
          R"({"os":"macos-latest","node":{"version":20,"env":"NODE_OPTIONS=--openssl-legacy-provider"}})"}));
}

// Docs: "Using contexts to create matrices" (repository_dispatch payload).
TEST(MatrixDocs, AxisFromContext) {
  EvalContext ctx;
  ctx.contexts["github"] = Value::parse(R"({"event":{"client_payload":{"versions":[12,14,16]}}})");
  EXPECT_EQ(expand("        version: ${{ github.event.client_payload.versions }}\n", ctx),
            (Combos{R"({"version":12})", R"({"version":14})", R"({"version":16})"}));
}

// Docs: "Expanding or adding matrix configurations" (the fruit/animal example).
TEST(MatrixDocs, IncludeFruitAnimal) {
  EXPECT_EQ(expand(R"(        fruit: [apple, pear]
        animal: [cat, dog]
        include:
          - color: green
          - color: pink
            animal: cat
          - fruit: apple
            shape: circle
          - fruit: banana
          - fruit: banana
            animal: cat
)"),
            (Combos{R"({"fruit":"apple","animal":"cat","color":"pink","shape":"circle"})",
                    R"({"fruit":"apple","animal":"dog","color":"green","shape":"circle"})",
                    R"({"fruit":"pear","animal":"cat","color":"pink"})",
                    R"({"fruit":"pear","animal":"dog","color":"green"})", R"({"fruit":"banana"})",
                    R"({"fruit":"banana","animal":"cat"})"}));
}

// Docs: "Example: Expanding configurations".
TEST(MatrixDocs, IncludeExpandsOneCombination) {
  EXPECT_EQ(expand(R"(        os: [windows-latest, ubuntu-latest]
        node: [14, 16]
        include:
          - os: windows-latest
            node: 16
            npm: 6
)"),
            (Combos{R"({"os":"windows-latest","node":14})",
                    R"({"os":"windows-latest","node":16,"npm":6})",
                    R"({"os":"ubuntu-latest","node":14})", R"({"os":"ubuntu-latest","node":16})"}));
}

// Docs: "Example: Adding configurations" (10 jobs).
TEST(MatrixDocs, IncludeAddsACombination) {
  auto c = expand(R"(        os: [macos-latest, windows-latest, ubuntu-latest]
        version: [12, 14, 16]
        include:
          - os: windows-latest
            version: 17
)");
  ASSERT_EQ(c.size(), 10u);
  EXPECT_EQ(c.back(), R"({"os":"windows-latest","version":17})");
}

// Docs: only include, no variables: every include entry runs.
TEST(MatrixDocs, OnlyInclude) {
  EXPECT_EQ(expand(R"(        include:
          - site: "production"
            datacenter: "site-a"
          - site: "staging"
            datacenter: "site-b"
)"),
            (Combos{R"({"site":"production","datacenter":"site-a"})",
                    R"({"site":"staging","datacenter":"site-b"})"}));
}

// Docs: "Excluding matrix configurations" (12 - 3 = 9 jobs, partial matches).
TEST(MatrixDocs, Exclude) {
  auto c = expand(R"(        os: [macos-latest, windows-latest]
        version: [12, 14, 16]
        environment: [staging, production]
        exclude:
          - os: macos-latest
            version: 12
            environment: production
          - os: windows-latest
            version: 16
)");
  EXPECT_EQ(c, (Combos{R"({"os":"macos-latest","version":12,"environment":"staging"})",
                       R"({"os":"macos-latest","version":14,"environment":"staging"})",
                       R"({"os":"macos-latest","version":14,"environment":"production"})",
                       R"({"os":"macos-latest","version":16,"environment":"staging"})",
                       R"({"os":"macos-latest","version":16,"environment":"production"})",
                       R"({"os":"windows-latest","version":12,"environment":"staging"})",
                       R"({"os":"windows-latest","version":12,"environment":"production"})",
                       R"({"os":"windows-latest","version":14,"environment":"staging"})",
                       R"({"os":"windows-latest","version":14,"environment":"production"})"}));
}

// Docs: "Handling failures" — an include that changes an axis value is a new job.
TEST(MatrixDocs, ExperimentalInclude) {
  EXPECT_EQ(
      expand(R"(        version: [6, 7, 8]
        experimental: [false]
        include:
          - version: 9
            experimental: true
)"),
      (Combos{R"({"version":6,"experimental":false})", R"({"version":7,"experimental":false})",
              R"({"version":8,"experimental":false})", R"({"version":9,"experimental":true})"}));
}

// Docs: "Using an output to define two matrices" — fromJSON of a job output.
TEST(MatrixDocs, AxisFromJobOutput) {
  EvalContext ctx;
  ctx.contexts["needs"] =
      Value::parse(R"({"define-matrix":{"outputs":{"colors":"[\"red\", \"green\", \"blue\"]"}}})");
  EXPECT_EQ(expand("        color: ${{ fromJSON(needs.define-matrix.outputs.colors) }}\n", ctx),
            (Combos{R"({"color":"red"})", R"({"color":"green"})", R"({"color":"blue"})"}));
}

TEST(Matrix, WholeMatrixFromJsonKeepsKeyOrder) {
  EvalContext ctx;
  ctx.contexts["needs"] = Value::parse(
      R"({"setup":{"outputs":{"m":"{\"zeta\":[1,2],\"alpha\":[\"a\"],\"include\":[{\"zeta\":3}]}"}}})");
  auto wf = parse_workflow(
      "jobs:\n  t:\n    runs-on: x\n    strategy:\n      matrix: ${{ "
      "fromJSON(needs.setup.outputs.m) "
      "}}\n    steps: [{run: x}]\n",
      "ci.yml");
  ASSERT_TRUE(wf) << wf.error().message();
  auto combos = expand_matrix(wf->jobs[0].strategy.matrix, ctx);
  ASSERT_TRUE(combos) << combos.error().message();
  std::vector<std::string> got;
  for (const auto& c : *combos) got.push_back(c.dump());
  EXPECT_EQ(got,
            (Combos{R"({"zeta":1,"alpha":"a"})", R"({"zeta":2,"alpha":"a"})", R"({"zeta":3})"}));
}

TEST(Matrix, IncludeAndExcludeFromExpressions) {
  EvalContext ctx;
  ctx.contexts["vars"] =
      Value::parse(R"({"inc":"[{\"os\":\"a\",\"x\":1}]","exc":"[{\"os\":\"b\"}]"})");
  EXPECT_EQ(expand("        os: [a, b]\n        include: ${{ fromJSON(vars.inc) }}\n"
                   "        exclude: ${{ fromJSON(vars.exc) }}\n",
                   ctx),
            (Combos{R"({"os":"a","x":1})"}));
}

TEST(Matrix, ElementExpressionsAreEvaluated) {
  EvalContext ctx;
  ctx.contexts["github"] = Value::parse(R"({"ref_name":"main"})");
  EXPECT_EQ(
      expand("        branch: ['${{ github.ref_name }}', 'release-${{ github.ref_name }}']\n", ctx),
      (Combos{R"({"branch":"main"})", R"({"branch":"release-main"})"}));
}

TEST(Matrix, FiltersMatchAsExpressionEquality) {
  // Strings ignore case, '14' equals 14, objects match leaf by leaf.
  EXPECT_EQ(expand(R"(        os: [Ubuntu, macos]
        node:
          - {version: 14, env: x}
          - {version: 16}
        exclude:
          - os: ubuntu
            node: {version: '14'}
        include:
          - os: MACOS
            node: {version: 16}
            extra: 1
)"),
            (Combos{R"({"os":"Ubuntu","node":{"version":16}})",
                    R"({"os":"macos","node":{"version":14,"env":"x"}})",
                    R"({"os":"macos","node":{"version":16},"extra":1})"}));
}

TEST(Matrix, NewIncludeCombinationsPutAxisKeysFirst) {
  EXPECT_EQ(
      expand("        os: [a]\n        include:\n          - color: red\n            os: b\n"),
      (Combos{R"({"os":"a"})", R"({"os":"b","color":"red"})"}));
}

// GitHub's template reader: a key that is an expression is the string it
// evaluates to, at every level of the matrix.
TEST(Matrix, ExpressionKeysAreEvaluated) {
  EvalContext ctx;
  ctx.contexts["vars"] = Value::parse(R"({"axis":"os","n":2})");
  EXPECT_EQ(expand(R"(        ${{ vars.axis }}: [a, b]
        include:
          - ${{ vars.axis }}: b
            "${{ format('{0}tra', 'ex') }}": 1
          - os: c
            v${{ vars.n }}: {"${{ vars.axis }}-nested": true}
)",
                   ctx),
            (Combos{R"({"os":"a"})", R"({"os":"b","extra":1})",
                    R"({"os":"c","v2":{"os-nested":true}})"}));
}

// ... and a sequence item that evaluates to a sequence is spliced into its
// parent: in an axis, in include, and deeper.
TEST(Matrix, SequenceItemsThatEvaluateToSequencesAreSpliced) {
  EvalContext ctx;
  ctx.contexts["vars"] =
      Value::parse(R"({"more":"[\"b\", \"c\"]","inc":"[{\"os\": \"x\"}, {\"os\": \"y\"}]"})");
  EXPECT_EQ(expand(R"(        os: [a, "${{ fromJSON(vars.more) }}"]
        include:
          - "${{ fromJSON(vars.inc) }}"
          - os: a
            flags: [-O2, "${{ fromJSON('[\"-g\", \"-Wall\"]') }}", "${{ 'not-a-list' }}"]
)",
                   ctx),
            (Combos{R"({"os":"a","flags":["-O2","-g","-Wall","not-a-list"]})", R"({"os":"b"})",
                    R"({"os":"c"})", R"({"os":"x"})", R"({"os":"y"})"}));
}

TEST(MatrixErrors, KeyExpressionsAreCheckedWhereTheyAre) {
  EvalContext ctx;
  ctx.contexts["vars"] = Value::parse(R"({"list":"[1]","empty":"","axis":"os"})");
  EXPECT_EQ(expand_error("        os: [a]\n        ${{ fromJSON(vars.list) }}: [b]\n", ctx),
            "ci.yml:7:9: the key '${{ fromJSON(vars.list) }}' evaluates to a sequence; a key is a "
            "string (job 'test')");
  EXPECT_EQ(expand_error("        os: [a]\n        ${{ vars.axis }}: [b]\n", ctx),
            "ci.yml:7:9: duplicate matrix key 'os' (from '${{ vars.axis }}') (job 'test')");
  EXPECT_EQ(expand_error("        os: [a]\n        include:\n          - x${{ vars.empty }}: 1\n"
                         "            ${{ vars.empty }}: 2\n",
                         ctx),
            "ci.yml:9:13: the key '${{ vars.empty }}' evaluates to an empty string (job 'test')");
  EXPECT_EQ(
      expand_error("        os: [a]\n        include:\n          - ${{ fromJSON('x') }}: 1\n", ctx),
      "ci.yml:8:13: fromJSON(): 'x' is not valid JSON (job 'test')");
}

TEST(Matrix, NullMatrixIsOneEmptyCombination) {
  auto combos = expand_matrix(OrderedValue(), {});
  ASSERT_TRUE(combos);
  ASSERT_EQ(combos->size(), 1u);
  EXPECT_EQ((*combos)[0].dump(), "{}");
}

TEST(Matrix, WarnsAbove256ButExpandsAll) {
  std::vector<std::string> warnings;
  OrderedValue m = OrderedValue::parse(R"({"a":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17],
                                           "b":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]})");
  auto combos = expand_matrix(m, {}, &warnings);
  ASSERT_TRUE(combos);
  EXPECT_EQ(combos->size(), 272u);
  EXPECT_EQ(warnings, std::vector<std::string>{
                          "the matrix expands to 272 jobs; GitHub refuses more than 256, lockstep "
                          "runs them all"});
  warnings.clear();
  m["b"].erase(15);
  ASSERT_TRUE(expand_matrix(m, {}, &warnings));
  EXPECT_TRUE(warnings.empty());  // 17 x 15 = 255
}

TEST(MatrixErrors, EmptyIncludeOrExcludeEntries) {
  EXPECT_EQ(expand_error("        os: [a]\n        include:\n          - {}\n"),
            "ci.yml:6:9: an entry of matrix 'include' is empty (job 'test')");
  EXPECT_EQ(expand_error("        os: [a]\n        exclude:\n          - {}\n"),
            "ci.yml:6:9: an entry of matrix 'exclude' is empty (job 'test')");
}

TEST(MatrixErrors, AreLocatedAtTheMatrix) {
  EXPECT_EQ(expand_error("        os: [a]\n        exclude:\n          - os: a\n"),
            "ci.yml:6:9: the matrix has no combinations left after exclude (job 'test')");
  EXPECT_EQ(
      expand_error("        os: [a]\n        exclude:\n          - arch: x\n"),
      "ci.yml:6:9: matrix exclude key 'arch' is not an axis (the matrix has: os) (job 'test')");
  EvalContext ctx;
  ctx.contexts["vars"] = Value::parse(R"({"empty":"[]","obj":"{}","str":"\"x\""})");
  EXPECT_EQ(expand_error("        os: ${{ fromJSON(vars.empty) }}\n", ctx),
            "ci.yml:6:9: matrix axis 'os' has no values (job 'test')");
  EXPECT_EQ(expand_error("        os: ${{ fromJSON(vars.str) }}\n", ctx),
            "ci.yml:6:9: matrix axis 'os' must be a sequence, got string (job 'test')");
  // An evaluation error points at the expression that failed.
  EXPECT_EQ(expand_error("        os: ${{ fromJSON(vars.missing) }}\n", ctx),
            "ci.yml:6:13: fromJSON(): '' is not valid JSON (job 'test')");
  auto wf = parse_workflow(
      "jobs:\n  t:\n    runs-on: x\n    strategy:\n      matrix: ${{ fromJSON(vars.obj) }}\n"
      "    steps: [{run: x}]\n",
      "ci.yml");
  ASSERT_TRUE(wf);
  auto r = expand_jobs(*wf, ctx);
  ASSERT_FALSE(r);
  EXPECT_EQ(first_line(r.error()), "ci.yml:5:15: the matrix has no axes and no include (job 't')");
}

TEST(ExpandJobs, DisplayNamesAsGitHub) {
  auto wf = parse_workflow(R"(jobs:
  build:
    runs-on: x
    strategy:
      matrix:
        compiler: [gcc, clang]
        build_type: [Release]
    steps: [{run: make}]
  named:
    name: Test
    runs-on: x
    strategy:
      matrix:
        version: [1.10, 2]
        flag: [true]
    steps: [{run: make}]
  templated:
    name: Build on ${{ matrix.os }} for ${{ github.ref_name }}
    runs-on: x
    strategy:
      matrix:
        os: [linux]
    steps: [{run: make}]
  plain:
    runs-on: x
    steps: [{run: make}]
)",
                           "ci.yml");
  ASSERT_TRUE(wf) << wf.error().message();
  EvalContext ctx;
  ctx.contexts["github"] = Value::parse(R"({"ref_name":"main"})");
  auto inst = expand_jobs(*wf, ctx);
  ASSERT_TRUE(inst) << inst.error().message();
  std::vector<std::string> names;
  for (const auto& i : *inst) names.push_back(i.display_name);
  EXPECT_EQ(names, (std::vector<std::string>{"build (gcc, Release)", "build (clang, Release)",
                                             "Test (1.1, true)", "Test (2, true)",
                                             "Build on linux for main", "plain"}));
  EXPECT_EQ((*inst)[0].job, &wf->jobs[0]);
  EXPECT_EQ((*inst)[5].job, &wf->jobs[3]);
  EXPECT_EQ((*inst)[1].matrix.dump(), R"({"compiler":"clang","build_type":"Release"})");
  EXPECT_EQ((*inst)[5].matrix.dump(), "{}");
}

TEST(ExpandJobs, NamesLeaveOutIncludedExtrasAndFlattenObjects) {
  auto wf = parse_workflow(R"(jobs:
  test:
    runs-on: x
    strategy:
      matrix:
        os: [windows-latest, ubuntu-latest]
        node:
          - {version: 16}
          - {version: 20, env: ''}
        include:
          - os: windows-latest
            npm: 6
          - os: macos-latest
            node: {version: 18}
            npm: 9
    steps: [{run: make}]
)",
                           "ci.yml");
  ASSERT_TRUE(wf) << wf.error().message();
  auto inst = expand_jobs(*wf, {});
  ASSERT_TRUE(inst) << inst.error().message();
  std::vector<std::string> names;
  for (const auto& i : *inst) names.push_back(i.display_name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"test (windows-latest, 16)", "test (windows-latest, 20)",
                                      "test (ubuntu-latest, 16)", "test (ubuntu-latest, 20)",
                                      "test (macos-latest, 18, 9)"}));
  EXPECT_EQ((*inst)[0].matrix.dump(), R"({"os":"windows-latest","node":{"version":16},"npm":6})");
}

TEST(ExpandJobs, MatrixFromNeedsIsCheckedAfterExpansion) {
  auto wf = parse_workflow(R"(jobs:
  setup:
    runs-on: x
    outputs:
      m: ${{ steps.gen.outputs.m }}
    steps:
      - id: gen
        run: echo m=... >> "$GITHUB_OUTPUT"
  build:
    needs: setup
    runs-on: x
    strategy:
      matrix: ${{ fromJSON(needs.setup.outputs.m) }}
    steps:
      - run: make CC=${{ matrix.cc }}
)",
                           "ci.yml");
  ASSERT_TRUE(wf) << wf.error().message();
  const Job& build = wf->jobs[1];
  ASSERT_EQ(build.expressions.size(), 2u);
  EXPECT_TRUE(build.expressions[0].in_matrix);
  EXPECT_EQ(build.expressions[0].what, "'matrix'");
  EXPECT_FALSE(build.expressions[1].in_matrix);
  EXPECT_EQ(build.expressions[1].what, "'run' of step 1");
  EXPECT_TRUE(matrix_depends_on_needs(build));
  EXPECT_FALSE(matrix_depends_on_needs(wf->jobs[0]));
  auto early = expand_jobs(*wf, {});
  ASSERT_FALSE(early);
  EXPECT_EQ(first_line(early.error()),
            "ci.yml:13:15: fromJSON(): '' is not valid JSON (job 'build', whose matrix reads "
            "outputs of the jobs it needs)");
  EvalContext ctx;
  ctx.contexts["needs"] =
      Value::parse(R"({"setup":{"outputs":{"m":"{\"cc\":[\"gcc\",\"clang\"]}"}}})");
  auto inst = expand_job(*wf, build, ctx);
  ASSERT_TRUE(inst) << inst.error().message();
  ASSERT_EQ(inst->size(), 2u);
  EXPECT_EQ((*inst)[1].display_name, "build (clang)");
  ctx.contexts["needs"] = Value::parse(R"({"setup":{"outputs":{"m":"{\"os\":[\"linux\"]}"}}})");
  auto bad = expand_job(*wf, build, ctx);
  ASSERT_FALSE(bad);
  EXPECT_EQ(first_line(bad.error()),
            "ci.yml:15:14: undefined matrix key 'cc' (the matrix has: os)");
}

TEST(ExpandJobs, UndefinedMatrixKeyIsAnError) {
  auto wf = parse_workflow(R"(jobs:
  build:
    runs-on: x
    strategy:
      matrix:
        os: [a]
        version: [1]
        include:
          - os: a
            extra: yes
    steps:
      - run: echo ${{ matrix.extra }}
      - run: make CC=${{ matrix.compiler }}
)",
                           "ci.yml");
  ASSERT_TRUE(wf) << wf.error().message();
  auto r = expand_jobs(*wf, {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "ci.yml:13:14: undefined matrix key 'compiler' (the matrix has: os, version, extra)\n"
            "   13 |       - run: make CC=${{ matrix.compiler }}\n"
            "      |              ^");
  auto wf2 = parse_workflow(R"(jobs:
  build:
    runs-on: x
    if: matrix.os == 'linux'
    steps: [{run: make}]
)",
                            "ci.yml");
  ASSERT_TRUE(wf2);
  auto r2 = expand_jobs(*wf2, {});
  ASSERT_FALSE(r2);
  EXPECT_EQ(first_line(r2.error()),
            "ci.yml:4:9: undefined matrix key 'os' (job 'build' has no matrix)");
}

}  // namespace
}  // namespace lockstep::pipeline
