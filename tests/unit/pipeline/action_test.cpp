// Action references and action metadata (action.yml), with GitHub's rules
// and every error message pinned.
#include <gtest/gtest.h>

#include "pipeline/action.hpp"
#include "pipeline/diagnostic.hpp"
#include "pipeline/parse.hpp"

namespace lockstep::pipeline {
namespace {

std::string ref_error(std::string_view uses) {
  auto r = parse_action_ref(uses);
  EXPECT_FALSE(r) << uses;
  return r ? "" : r.error().message();
}

std::string action_error(std::string_view yaml) {
  auto r = parse_action(yaml, "o/r@v1/action.yml");
  EXPECT_FALSE(r) << yaml;
  if (r) return "";
  EXPECT_EQ(r.error().kind(), ErrorKind::kWorkflow);
  return std::string(first_line(r.error()));
}

TEST(ActionRef, RepositoryWithPathAndRef) {
  auto r = parse_action_ref("octo-org/mono.repo/tools/lint@v2.1");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->kind, ActionRef::Kind::kRepository);
  EXPECT_EQ(r->owner, "octo-org");
  EXPECT_EQ(r->repo, "mono.repo");
  EXPECT_EQ(r->path, "tools/lint");
  EXPECT_EQ(r->ref, "v2.1");
  EXPECT_EQ(r->repository(), "octo-org/mono.repo");
  EXPECT_EQ(r->name(), "octo-org/mono.repo/tools/lint");
  EXPECT_FALSE(r->builtin());
}

TEST(ActionRef, BuiltinsAreTheServiceBackedActionsOnly) {
  EXPECT_TRUE(parse_action_ref("actions/checkout@v4")->builtin());
  EXPECT_TRUE(parse_action_ref("actions/cache@main")->builtin());
  EXPECT_TRUE(parse_action_ref("actions/upload-artifact@v4")->builtin());
  EXPECT_TRUE(parse_action_ref("actions/download-artifact@v4")->builtin());
  EXPECT_FALSE(parse_action_ref("actions/setup-node@v4")->builtin());
  EXPECT_TRUE(parse_action_ref("actions/cache/save@v4")->builtin());
  EXPECT_TRUE(parse_action_ref("actions/cache/restore@v4")->builtin());
  EXPECT_FALSE(parse_action_ref("actions/cache/other@v4")->builtin());
}

TEST(ActionRef, LocalAndDocker) {
  auto l = parse_action_ref("./.github/actions/build");
  ASSERT_TRUE(l);
  EXPECT_EQ(l->kind, ActionRef::Kind::kLocal);
  EXPECT_EQ(l->local, "./.github/actions/build");
  auto d = parse_action_ref("docker://alpine:3.19");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->kind, ActionRef::Kind::kDocker);
  EXPECT_EQ(d->image, "alpine:3.19");
}

TEST(ActionRef, Errors) {
  EXPECT_EQ(ref_error("octo/hello"), "'octo/hello' needs a version, as in 'octo/hello@v1'");
  EXPECT_EQ(ref_error("octo/hello@"), "'octo/hello@' needs a version, as in 'octo/hello@v1'");
  EXPECT_EQ(ref_error("hello@v1"),
            "invalid reference 'hello@v1': expected OWNER/REPO[/PATH]@REF, ./PATH or "
            "docker://IMAGE");
  EXPECT_EQ(ref_error("octo//x@v1"),
            "invalid reference 'octo//x@v1': expected OWNER/REPO[/PATH]@REF, ./PATH or "
            "docker://IMAGE");
  EXPECT_EQ(ref_error("docker://"), "'docker://' needs an image, as in 'docker://alpine:3.19'");
  EXPECT_EQ(ref_error("a/b@v 1"), "invalid version 'v 1' in 'a/b@v 1'");
}

TEST(WorkflowRef, LocalAndRemote) {
  auto l = parse_workflow_ref("./.github/workflows/build.yml");
  ASSERT_TRUE(l) << l.error().message();
  EXPECT_EQ(l->kind, ActionRef::Kind::kLocal);
  auto r = parse_workflow_ref("octo/ci/.github/workflows/build.yaml@v1");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->repository(), "octo/ci");
  EXPECT_EQ(r->path, ".github/workflows/build.yaml");
  EXPECT_EQ(r->ref, "v1");
  EXPECT_FALSE(parse_workflow_ref("./build.yml"));
  EXPECT_FALSE(parse_workflow_ref("octo/ci/build.yml@v1"));
  EXPECT_FALSE(parse_workflow_ref("octo/ci/.github/workflows/sub/x.yml@v1"));
}

TEST(InputEnvName, AsGitHubDerivesIt) {
  // The runner: "INPUT_" + name.Replace(' ', '_').ToUpperInvariant().
  EXPECT_EQ(input_env_name("node-version"), "INPUT_NODE-VERSION");
  EXPECT_EQ(input_env_name("my input"), "INPUT_MY_INPUT");
  EXPECT_EQ(input_env_name("who_to_greet"), "INPUT_WHO_TO_GREET");
}

TEST(ActionManifest, NodeActionWithPreAndPost) {
  auto a = parse_action(R"(name: Hello
description: says hello
author: octo
branding: {icon: check, color: green}
inputs:
  who-to-greet:
    description: who
    required: true
    default: World
  level:
    deprecationMessage: use verbosity
outputs:
  time:
    description: when
runs:
  using: node20
  main: dist/index.js
  pre: dist/pre.js
  post: dist/post.js
  post-if: success()
)",
                        "action.yml");
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(a->kind, ActionKind::kNode);
  EXPECT_EQ(a->node_major, 20);
  EXPECT_EQ(a->main, "dist/index.js");
  EXPECT_EQ(a->pre, "dist/pre.js");
  EXPECT_EQ(a->post, "dist/post.js");
  EXPECT_EQ(a->post_if, "success()");
  ASSERT_EQ(a->inputs.size(), 2u);
  EXPECT_TRUE(a->inputs[0].required);
  EXPECT_EQ(*a->inputs[0].default_value, "World");
  EXPECT_EQ(a->inputs[1].deprecation, "use verbosity");
  EXPECT_FALSE(a->inputs[1].default_value);
  ASSERT_EQ(a->outputs.size(), 1u);
}

TEST(ActionManifest, CompositeStepsNeedShellAndHaveNoSecrets) {
  auto a = parse_action(R"(name: c
inputs:
  x: {default: '${{ github.repository }}'}
outputs:
  y:
    value: ${{ steps.one.outputs.y }}
runs:
  using: composite
  steps:
    - id: one
      run: echo "y=${{ inputs.x }}" >> $GITHUB_OUTPUT
      shell: bash
    - uses: actions/checkout@v4
    - uses: ./local
      with: {a: b}
)",
                        "action.yml");
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(a->kind, ActionKind::kComposite);
  ASSERT_EQ(a->steps.size(), 3u);
  EXPECT_EQ(a->steps[0].shell, "bash");
  EXPECT_EQ(a->outputs[0].value, "${{ steps.one.outputs.y }}");

  EXPECT_EQ(action_error(R"(name: c
runs:
  using: composite
  steps:
    - run: echo hi
)"),
            "o/r@v1/action.yml:5:7: step 1 of the composite action has 'run' without 'shell' (a "
            "composite action's run steps name their shell)");
  EXPECT_EQ(action_error(R"(name: c
runs:
  using: composite
  steps:
    - run: echo ${{ secrets.TOKEN }}
      shell: sh
)"),
            "o/r@v1/action.yml:5:12: 'secrets' is not available in a composite action ('run' of "
            "step 1); pass the value in as an input");
  EXPECT_EQ(action_error(R"(name: c
runs:
  using: composite
  steps:
    - run: x
      shell: sh
      timeout-minutes: 3
)"),
            "o/r@v1/action.yml:7:7: unknown key 'timeout-minutes' in step 1 of the composite "
            "action");
}

TEST(ActionManifest, DockerAction) {
  auto a = parse_action(R"(name: d
inputs:
  greeting: {default: hi}
runs:
  using: docker
  image: docker://alpine:3.19
  entrypoint: /entry.sh
  args: [--greeting, '${{ inputs.greeting }}']
  env:
    MODE: fast
  post-entrypoint: /cleanup.sh
)",
                        "action.yml");
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(a->kind, ActionKind::kDocker);
  EXPECT_EQ(a->image, "docker://alpine:3.19");
  ASSERT_EQ(a->args.size(), 2u);
  EXPECT_EQ(a->args[1], "${{ inputs.greeting }}");
  EXPECT_EQ(a->post_entrypoint, "/cleanup.sh");
  ASSERT_EQ(a->env.size(), 1u);
}

TEST(ActionManifest, Errors) {
  EXPECT_EQ(action_error("name: x\nruns:\n  using: node12x\n  main: a.js\n"),
            "o/r@v1/action.yml:3:10: unknown 'using: node12x' (expected node16, node20, node24, "
            "composite or docker)");
  EXPECT_EQ(action_error("name: x\nruns:\n  using: node20\n"),
            "o/r@v1/action.yml:2:1: 'runs' with 'using: node20' has no 'main'");
  EXPECT_EQ(action_error("name: x\n"), "o/r@v1/action.yml:1:1: the action has no 'runs'");
  EXPECT_EQ(action_error("name: x\nruns:\n  using: node20\n  main: a.js\n  mian: b.js\n"),
            "o/r@v1/action.yml:5:3: unknown key 'mian' in 'runs' (did you mean 'main'?)");
  EXPECT_EQ(action_error("name: [x\n"),
            "o/r@v1/action.yml:2:1: malformed YAML: end of sequence flow not found");
  EXPECT_EQ(action_error("inputs:\n  a:\n    required: maybe\nruns: {using: node20, main: a}\n"),
            "o/r@v1/action.yml:3:15: expected true or false for 'required' of input 'a', got "
            "'maybe'");
  EXPECT_EQ(action_error("outputs:\n  o: {value: x}\nruns: {using: node20, main: a}\n"),
            "o/r@v1/action.yml:2:3: output 'o' has a 'value', which only composite actions use");
}

TEST(WorkflowUses, AnyActionReferenceParsesAndBadOnesAreLocated) {
  auto wf = parse_workflow(R"(on: push
jobs:
  a:
    runs-on: x
    steps:
      - uses: actions/setup-node@v4
      - uses: ./.github/actions/x
      - uses: docker://busybox
)",
                           "ci.yml");
  ASSERT_TRUE(wf) << wf.error().message();
  auto bad = parse_workflow(R"(on: push
jobs:
  a:
    runs-on: x
    steps:
      - uses: octo/hello
)",
                            "ci.yml");
  ASSERT_FALSE(bad);
  EXPECT_EQ(std::string(first_line(bad.error())),
            "ci.yml:6:15: 'octo/hello' needs a version, as in 'octo/hello@v1'");
  auto expr = parse_workflow(R"(on: push
jobs:
  a:
    runs-on: x
    steps:
      - uses: octo/hello@${{ matrix.v }}
)",
                             "ci.yml");
  ASSERT_FALSE(expr);
  EXPECT_EQ(std::string(first_line(expr.error())),
            "ci.yml:6:15: 'uses' cannot hold an expression (GitHub resolves actions before the "
            "job runs)");
}

TEST(ActionManifest, TextThatIsNotUtf8IsRefusedInOneLine) {
  // Metadata comes from another repository: a stray byte must not reach
  // nlohmann::json (inputs become the job's env and the record).
  EXPECT_EQ(action_error("name: a\ninputs:\n  w\xC1ho: {}\nruns: {using: node20, main: i.js}\n"),
            "o/r@v1/action.yml:3:4: invalid UTF-8 (byte 0xC1)");
  EXPECT_EQ(action_error("name: \"a\\_b\"\nruns: {using: node20, main: i.js}\n"),
            "o/r@v1/action.yml:1:7: this string is not UTF-8 after its escapes: lockstep cannot "
            "read \\N and \\_ (write \\u0085 and \\u00A0)");
  EXPECT_EQ(action_error(std::string("name: a") + '\0' + "\nruns: {using: node20, main: i.js}\n"),
            "o/r@v1/action.yml:1:8: control character U+0000 is not allowed in YAML");
}

}  // namespace
}  // namespace lockstep::pipeline
