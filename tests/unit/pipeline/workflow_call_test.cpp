// Reusable workflows: parsing calling jobs and on.workflow_call, loading and
// checking the call graph (exact error text), binding typed inputs and
// secrets, outputs, and expanding calls into prefixed job instances.
#include "pipeline/workflow_call.hpp"

#include <gtest/gtest.h>

#include "common/digest.hpp"
#include "pipeline/diagnostic.hpp"
#include "pipeline/lock_inputs.hpp"
#include "pipeline/matrix.hpp"
#include "pipeline/parse.hpp"

namespace lockstep::pipeline {
namespace {

// Workflow files by name: "./.github/workflows/x.yml" for the run's own
// repository, "octo/lib/.github/workflows/x.yml@v1" for a remote one.
class Files {
 public:
  void add(const std::string& name, std::string text) { files_[name] = std::move(text); }

  WorkflowLoader loader() {
    return [this](const CalledWorkflow* from,
                  const ActionRef& ref) -> Result<std::shared_ptr<const CalledWorkflow>> {
      ++loads;
      auto cw = std::make_shared<CalledWorkflow>();
      if (ref.kind == ActionRef::Kind::kLocal) {
        cw->path = ref.local.substr(2);
        if (from) {
          cw->repository = from->repository;
          cw->ref = from->ref;
          cw->commit = from->commit;
        }
      } else {
        cw->repository = ref.repository();
        cw->ref = ref.ref;
        cw->path = ref.path;
        cw->commit = std::string(40, 'c');
      }
      auto it = files_.find(cw->name());
      if (it == files_.end())
        return fail("reusable workflow '" + cw->name() + "': no such file", ErrorKind::kNotFound);
      cw->digest = sha256_of(it->second).str();
      LS_TRY_ASSIGN(cw->workflow, parse_workflow(it->second, cw->name()));
      return std::shared_ptr<const CalledWorkflow>(std::move(cw));
    };
  }
  int loads = 0;

 private:
  std::map<std::string, std::string> files_;
};

Workflow parse(const std::string& yaml) {
  auto wf = parse_workflow(yaml, "ci.yml");
  EXPECT_TRUE(wf) << wf.error().message();
  return wf ? std::move(*wf) : Workflow{};
}

std::string parse_error(const std::string& yaml, const std::string& file = "ci.yml") {
  auto wf = parse_workflow(yaml, file);
  EXPECT_FALSE(wf) << yaml;
  return wf ? "" : std::string(first_line(wf.error()));
}

const char* const kBuild = R"(on:
  workflow_call:
    inputs:
      os: {type: string, required: true}
      fast: {type: boolean, default: false}
      level: {type: number, default: 2}
      tag: {type: string, default: "${{ github.ref_name }}-x"}
      quiet: {type: boolean}
    secrets:
      token: {required: true}
      extra:
    outputs:
      artifact:
        value: ${{ jobs.compile.outputs.art }}-${{ inputs.os }}
jobs:
  compile:
    runs-on: x
    strategy:
      matrix:
        cc: ${{ fromJSON(inputs.compilers) }}
    steps: [{run: make}]
  test:
    needs: compile
    runs-on: x
    steps: [{run: make check}]
)";

TEST(WorkflowCall, ParsesACallingJobWithTypedWithAndSecrets) {
  Workflow wf = parse(R"(jobs:
  call:
    name: Call ${{ matrix.os }}
    needs: [a]
    if: always()
    strategy:
      matrix: {os: [linux]}
    uses: ./.github/workflows/build.yml
    with:
      os: ${{ matrix.os }}
      fast: true
      level: 3
      label: 'true'
    secrets:
      token: ${{ secrets.T }}
  inherit:
    uses: octo/lib/.github/workflows/x.yml@v1
    secrets: inherit
  a: {runs-on: x, steps: [{run: x}]}
)");
  ASSERT_EQ(wf.jobs.size(), 3u);
  const Job& c = wf.jobs[0];
  ASSERT_TRUE(c.call);
  EXPECT_EQ(c.call->uses, "./.github/workflows/build.yml");
  EXPECT_EQ(c.call->uses_loc.line, 8);
  EXPECT_EQ(c.call->uses_loc.column, 11);
  ASSERT_EQ(c.call->with.size(), 4u);
  EXPECT_EQ(c.call->with[0].second, "${{ matrix.os }}");
  EXPECT_EQ(c.call->with[1].second, true);
  EXPECT_EQ(c.call->with[2].second, 3);
  EXPECT_EQ(c.call->with[3].second, "true");  // quoted: a string
  EXPECT_FALSE(c.call->inherit_secrets);
  ASSERT_EQ(c.call->secrets.size(), 1u);
  EXPECT_EQ(c.call->secrets[0].second, "${{ secrets.T }}");
  EXPECT_EQ(c.needs, std::vector<std::string>{"a"});
  EXPECT_EQ(c.if_expr, "always()");
  EXPECT_TRUE(c.steps.empty());
  EXPECT_TRUE(wf.jobs[1].call->inherit_secrets);
  EXPECT_FALSE(wf.jobs[2].call);
}

TEST(WorkflowCall, ParsesOnWorkflowCallInEveryForm) {
  Workflow wf = parse(kBuild);
  ASSERT_TRUE(wf.workflow_call);
  const auto& t = *wf.workflow_call;
  ASSERT_EQ(t.inputs.size(), 5u);
  EXPECT_EQ(t.inputs[0].name, "os");
  EXPECT_TRUE(t.inputs[0].required);
  EXPECT_EQ(t.inputs[1].type, InputType::kBoolean);
  EXPECT_EQ(*t.inputs[1].default_value, false);
  EXPECT_EQ(t.inputs[2].type, InputType::kNumber);
  EXPECT_EQ(*t.inputs[2].default_value, 2);
  EXPECT_FALSE(t.inputs[4].default_value);
  ASSERT_EQ(t.secrets.size(), 2u);
  EXPECT_TRUE(t.secrets[0].required);
  EXPECT_FALSE(t.secrets[1].required);
  ASSERT_EQ(t.outputs.size(), 1u);
  EXPECT_EQ(t.outputs[0].value, "${{ jobs.compile.outputs.art }}-${{ inputs.os }}");

  for (const char* on :
       {"on: workflow_call\n", "on: [push, workflow_call]\n", "on:\n  push:\n  workflow_call:\n"}) {
    Workflow w = parse(std::string(on) + "jobs:\n  a: {runs-on: x, steps: [{run: x}]}\n");
    EXPECT_TRUE(w.workflow_call) << on;
  }
  EXPECT_FALSE(parse("on: push\njobs:\n  a: {runs-on: x, steps: [{run: x}]}\n").workflow_call);
}

TEST(WorkflowCall, ParseErrorsAreOneLineAndLocated) {
  EXPECT_EQ(parse_error(R"(jobs:
  call:
    uses: ./.github/workflows/b.yml
    runs-on: x
)"),
            "ci.yml:4:5: 'runs-on' is not allowed in job 'call', which calls a reusable workflow "
            "(a calling job has only name, uses, with, secrets, strategy, needs, if, "
            "permissions and concurrency)");
  EXPECT_EQ(parse_error(R"(jobs:
  call:
    uses: ./.github/workflows/b.yml
    steps: [{run: x}]
)"),
            "ci.yml:4:5: 'steps' is not allowed in job 'call', which calls a reusable workflow "
            "(a calling job has only name, uses, with, secrets, strategy, needs, if, "
            "permissions and concurrency)");
  EXPECT_EQ(parse_error(R"(jobs:
  call:
    uses: ./.github/workflows/b.yml
    wiht: {a: 1}
)"),
            "ci.yml:4:5: unknown key 'wiht' in job 'call' (did you mean 'with'?)");
  EXPECT_EQ(parse_error(R"(jobs:
  call:
    uses: ./.github/workflows/b.yml
    with: {a: [1, 2]}
)"),
            "ci.yml:4:15: expected a string, number or boolean for input 'a' in 'with' in job "
            "'call', got a sequence");
  EXPECT_EQ(parse_error(R"(jobs:
  call:
    uses: ./.github/workflows/b.yml
    secrets: all
)"),
            "ci.yml:4:14: expected 'inherit' or a mapping of secrets for 'secrets' in job "
            "'call', got 'all'");
  EXPECT_EQ(parse_error(R"(jobs:
  call:
    uses: ./workflows/b.yml
)"),
            "ci.yml:3:11: invalid reusable workflow './workflows/b.yml': expected "
            "./.github/workflows/FILE.yml (a local workflow has no @REF)");
  EXPECT_EQ(parse_error(R"(jobs:
  call:
    uses: octo/lib/.github/workflows/b.yml@refs/heads/main
)"),
            "ci.yml:3:11: 'refs/heads/main' in 'octo/lib/.github/workflows/b.yml@refs/heads/main': "
            "GitHub refuses ref prefixes such as refs/heads/ and refs/tags/ (name the branch, tag "
            "or commit)");
  EXPECT_EQ(parse_error(R"(jobs:
  call:
    uses: octo/lib/.github/workflows/b.yml@${{ github.sha }}
)"),
            "ci.yml:3:11: 'uses' cannot hold an expression (GitHub resolves reusable workflows "
            "before the run starts)");
  EXPECT_EQ(parse_error(R"(on:
  workflow_call:
    inputs:
      a: {type: choice}
jobs:
  j: {runs-on: x, steps: [{run: x}]}
)"),
            "ci.yml:4:17: unknown type 'choice' of input 'a' of 'on.workflow_call' (a "
            "workflow_call input is a boolean, number or string)");
  EXPECT_EQ(parse_error(R"(on:
  workflow_call:
    inputs:
      a: {required: true}
jobs:
  j: {runs-on: x, steps: [{run: x}]}
)"),
            "ci.yml:4:7: input 'a' of 'on.workflow_call' has no 'type' (boolean, number or "
            "string)");
  EXPECT_EQ(parse_error(R"(on:
  workflow_call:
    inputs:
      a: {type: boolean, default: yes}
jobs:
  j: {runs-on: x, steps: [{run: x}]}
)"),
            "ci.yml:4:35: the default of input 'a' of 'on.workflow_call' is not a boolean");
  EXPECT_EQ(parse_error(R"(on:
  workflow_call:
    outputs:
      o: {description: x}
jobs:
  j: {runs-on: x, steps: [{run: x}]}
)"),
            "ci.yml:4:7: output 'o' of 'on.workflow_call' has no 'value'");
  EXPECT_EQ(parse_error(R"(on:
  workflow_call:
    secret:
      s:
jobs:
  j: {runs-on: x, steps: [{run: x}]}
)"),
            "ci.yml:3:5: unknown key 'secret' in 'on.workflow_call' (did you mean 'secrets'?)");
}

// The error of loading the graph of `yaml` with `files`.
std::string graph_error(Files& files, const std::string& yaml, const std::string& root_id = "") {
  Workflow wf = parse(yaml);
  auto g = load_call_graph(wf, files.loader(), root_id);
  EXPECT_FALSE(g) << yaml;
  return g ? "" : std::string(first_line(g.error()));
}

TEST(WorkflowCall, LoadsEveryCalledWorkflowOnceAndNests) {
  Files files;
  files.add("./.github/workflows/build.yml", kBuild);
  files.add("octo/lib/.github/workflows/outer.yml@v1", R"(on: workflow_call
jobs:
  inner:
    uses: ./.github/workflows/inner.yml
)");
  files.add("octo/lib/.github/workflows/inner.yml@v1", R"(on: workflow_call
jobs:
  j: {runs-on: x, steps: [{run: x}]}
)");
  Workflow wf = parse(R"(jobs:
  a:
    uses: ./.github/workflows/build.yml
    with: {os: linux}
    secrets: {token: x}
  b:
    uses: ./.github/workflows/build.yml
    with: {os: bsd}
    secrets: inherit
  c:
    uses: octo/lib/.github/workflows/outer.yml@v1
)");
  std::vector<std::string> warnings;
  auto g = load_call_graph(wf, files.loader(), "", &warnings);
  ASSERT_TRUE(g) << g.error().message();
  ASSERT_EQ(g->workflows.size(), 3u);
  EXPECT_EQ(g->workflows[0]->name(), "./.github/workflows/build.yml");
  EXPECT_EQ(g->workflows[1]->name(), "octo/lib/.github/workflows/outer.yml@v1");
  // A local workflow called from a remote one comes from that repository.
  EXPECT_EQ(g->workflows[2]->name(), "octo/lib/.github/workflows/inner.yml@v1");
  EXPECT_EQ(g->of(wf.jobs[0]), g->of(wf.jobs[1]));  // the same file: read and checked once
  EXPECT_FALSE(g->of(g->workflows[2]->workflow.jobs[0]));
  EXPECT_TRUE(warnings.empty());
}

TEST(WorkflowCall, CallErrorsNameTheJobTheWorkflowAndThePlace) {
  Files files;
  files.add("./.github/workflows/build.yml", kBuild);
  files.add("./.github/workflows/plain.yml",
            "on: push\njobs:\n  a: {runs-on: x, steps: [{run: x}]}\n");
  EXPECT_EQ(graph_error(files, "jobs:\n  c:\n    uses: ./.github/workflows/plain.yml\n"),
            "ci.yml:3:11: job 'c' calls ./.github/workflows/plain.yml, which is not a reusable "
            "workflow: it has no 'on: workflow_call'");
  EXPECT_EQ(graph_error(files, "jobs:\n  c:\n    uses: ./.github/workflows/gone.yml\n"),
            "ci.yml:3:11: job 'c': reusable workflow './.github/workflows/gone.yml': no such file");
  EXPECT_EQ(graph_error(files, R"(jobs:
  c:
    uses: ./.github/workflows/build.yml
    with: {os: x, fsat: true}
    secrets: inherit
)"),
            "ci.yml:4:19: input 'fsat' is not defined in ./.github/workflows/build.yml (did you "
            "mean 'fast'?)");
  EXPECT_EQ(graph_error(files, R"(jobs:
  c:
    uses: ./.github/workflows/build.yml
    with: {os: x, zzz: 1}
    secrets: inherit
)"),
            "ci.yml:4:19: input 'zzz' is not defined in ./.github/workflows/build.yml (its "
            "inputs: os, fast, level, tag, quiet)");
  EXPECT_EQ(graph_error(files, R"(jobs:
  c:
    uses: ./.github/workflows/build.yml
    with: {os: x, fast: 'yes'}
    secrets: inherit
)"),
            "ci.yml:4:19: input 'fast' of ./.github/workflows/build.yml expects a boolean, got "
            "'yes' (a string)");
  EXPECT_EQ(graph_error(files, R"(jobs:
  c:
    uses: ./.github/workflows/build.yml
    with: {os: x, level: high}
    secrets: inherit
)"),
            "ci.yml:4:19: input 'level' of ./.github/workflows/build.yml expects a number, got "
            "'high' (a string)");
  EXPECT_EQ(graph_error(files, R"(jobs:
  c:
    uses: ./.github/workflows/build.yml
    with: {fast: true}
    secrets: inherit
)"),
            "ci.yml:3:11: job 'c' does not give input 'os', which ./.github/workflows/build.yml "
            "requires");
  EXPECT_EQ(graph_error(files, R"(jobs:
  c:
    uses: ./.github/workflows/build.yml
    with: {os: x}
)"),
            "ci.yml:3:11: job 'c' does not pass secret 'token', which "
            "./.github/workflows/build.yml requires (pass it under 'secrets:' or use 'secrets: "
            "inherit')");
  EXPECT_EQ(graph_error(files, R"(jobs:
  c:
    uses: ./.github/workflows/build.yml
    with: {os: x}
    secrets: {token: a, tokn: b}
)"),
            "ci.yml:5:25: secret 'tokn' is not defined in ./.github/workflows/build.yml (its "
            "secrets: token, extra)");
  EXPECT_EQ(graph_error(files, R"(jobs:
  c:
    uses: ./.github/workflows/build.yml
    with: {os: "${{ env.OS }}"}
    secrets: inherit
)"),
            "ci.yml:4:12: 'env' is not available in input 'os' in 'with' of job 'c' (it may read "
            "github, inputs, vars, needs, strategy, matrix)");
  EXPECT_EQ(graph_error(files, R"(jobs:
  c:
    uses: ./.github/workflows/build.yml
    with: {os: "${{ secrets.OS }}"}
    secrets: inherit
)"),
            "ci.yml:4:12: 'secrets' is not available in input 'os' in 'with' of job 'c' (it may "
            "read github, inputs, vars, needs, strategy, matrix)");
}

TEST(WorkflowCall, ErrorsInsideACalledWorkflowPointIntoIt) {
  Files files;
  files.add("./.github/workflows/bad.yml",
            "on: workflow_call\njobs:\n  a:\n    runs-on: x\n    step: []\n");
  files.add("./.github/workflows/needs.yml",
            "on: workflow_call\njobs:\n  a: {needs: zzz, runs-on: x, steps: [{run: x}]}\n");
  EXPECT_EQ(graph_error(files, "jobs:\n  c:\n    uses: ./.github/workflows/bad.yml\n"),
            "./.github/workflows/bad.yml:5:5: unknown key 'step' in job 'a' (did you mean "
            "'steps'?)");
  EXPECT_EQ(graph_error(files, "jobs:\n  c:\n    uses: ./.github/workflows/needs.yml\n"),
            "./.github/workflows/needs.yml:3:14: job 'a' needs unknown job 'zzz'");
}

TEST(WorkflowCall, ACycleIsNamedWhereItCloses) {
  Files files;
  files.add("./.github/workflows/a.yml",
            "on: workflow_call\njobs:\n  to-b:\n    uses: ./.github/workflows/b.yml\n");
  files.add("./.github/workflows/b.yml",
            "on: workflow_call\njobs:\n  to-a:\n    uses: ./.github/workflows/a.yml\n");
  files.add("./.github/workflows/self.yml",
            "on: workflow_call\njobs:\n  me:\n    uses: ./.github/workflows/self.yml\n");
  EXPECT_EQ(graph_error(files, "jobs:\n  c:\n    uses: ./.github/workflows/a.yml\n"),
            "./.github/workflows/b.yml:4:11: reusable workflow cycle: ./.github/workflows/a.yml "
            "-> ./.github/workflows/b.yml -> ./.github/workflows/a.yml");
  EXPECT_EQ(graph_error(files, "jobs:\n  c:\n    uses: ./.github/workflows/self.yml\n"),
            "./.github/workflows/self.yml:4:11: reusable workflow cycle: "
            "./.github/workflows/self.yml -> ./.github/workflows/self.yml");
  // The run's own workflow, called back from what it calls.
  files.add("./.github/workflows/back.yml",
            "on: workflow_call\njobs:\n  up:\n    uses: ./.github/workflows/ci.yml\n");
  files.add("./.github/workflows/ci.yml",
            "on: workflow_call\njobs:\n  c:\n    uses: ./.github/workflows/back.yml\n");
  EXPECT_EQ(
      graph_error(files, "on: workflow_call\njobs:\n  c:\n    uses: ./.github/workflows/back.yml\n",
                  "@:.github/workflows/ci.yml"),
      "./.github/workflows/back.yml:4:11: reusable workflow cycle: ci.yml -> "
      "./.github/workflows/back.yml -> ./.github/workflows/ci.yml");
}

TEST(WorkflowCall, TenLevelsOfWorkflowsAndNoMore) {
  // ci.yml -> l1.yml -> ... -> lN.yml: N + 1 levels of workflows.
  auto chain = [](int n) {
    Files files;
    for (int i = 1; i <= n; ++i) {
      std::string next = i < n ? "jobs:\n  down:\n    uses: ./.github/workflows/l" +
                                     std::to_string(i + 1) + ".yml\n"
                               : "jobs:\n  leaf: {runs-on: x, steps: [{run: x}]}\n";
      files.add("./.github/workflows/l" + std::to_string(i) + ".yml", "on: workflow_call\n" + next);
    }
    return files;
  };
  const std::string root = "jobs:\n  top:\n    uses: ./.github/workflows/l1.yml\n";
  Files nine = chain(kMaxWorkflowLevels - 1);
  Workflow wf = parse(root);
  auto g = load_call_graph(wf, nine.loader());
  ASSERT_TRUE(g) << g.error().message();
  EXPECT_EQ(g->workflows.size(), 9u);
  Files ten = chain(kMaxWorkflowLevels);
  EXPECT_EQ(graph_error(ten, root),
            "./.github/workflows/l9.yml:4:11: reusable workflows nested more than 10 levels deep "
            "(GitHub's limit: the top-level workflow and 9 levels of reusable workflows): ci.yml "
            "-> ./.github/workflows/l1.yml -> ./.github/workflows/l2.yml -> "
            "./.github/workflows/l3.yml -> ./.github/workflows/l4.yml -> "
            "./.github/workflows/l5.yml -> ./.github/workflows/l6.yml -> "
            "./.github/workflows/l7.yml -> ./.github/workflows/l8.yml -> "
            "./.github/workflows/l9.yml -> ./.github/workflows/l10.yml");
}

TEST(WorkflowCall, MoreThanFiftyUniqueWorkflowsIsAWarning) {
  Files files;
  std::string root = "jobs:\n";
  for (int i = 0; i < 51; ++i) {
    files.add("./.github/workflows/w" + std::to_string(i) + ".yml",
              "on: workflow_call\njobs:\n  a: {runs-on: x, steps: [{run: x}]}\n");
    root += "  j" + std::to_string(i) + ":\n    uses: ./.github/workflows/w" + std::to_string(i) +
            ".yml\n";
  }
  Workflow wf = parse(root);
  std::vector<std::string> warnings;
  auto g = load_call_graph(wf, files.loader(), "", &warnings);
  ASSERT_TRUE(g) << g.error().message();
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0],
            "ci.yml calls 51 unique reusable workflows; GitHub refuses more than 50, lockstep "
            "runs them all");
}

struct Called {
  Files files;
  Workflow wf;
  CallGraph graph;
};

std::unique_ptr<Called> load(const std::string& root, const std::string& callee = kBuild) {
  auto c = std::make_unique<Called>();
  c->files.add("./.github/workflows/build.yml", callee);
  c->wf = parse(root);
  auto g = load_call_graph(c->wf, c->files.loader());
  EXPECT_TRUE(g) << g.error().message();
  if (g) c->graph = std::move(*g);
  return c;
}

EvalContext context() {
  EvalContext ctx;
  ctx.contexts["github"] = {{"ref_name", "main"}, {"workflow", "CI"}};
  ctx.contexts["inputs"] = Value::object();
  ctx.contexts["vars"] = Value::object();
  ctx.contexts["secrets"] = {{"T", "s3cret"}, {"OTHER", "o"}};
  ctx.contexts["needs"] = {
      {"setup", {{"result", "success"}, {"outputs", {{"n", "5"}, {"on", "true"}}}}}};
  ctx.contexts["matrix"] = {{"os", "linux"}};
  return ctx;
}

TEST(WorkflowCall, InputsAreTypedAsDeclaredWithDefaults) {
  auto c = load(R"(jobs:
  call:
    uses: ./.github/workflows/build.yml
    with:
      os: ${{ matrix.os }}
      fast: ${{ needs.setup.outputs.on == 'true' }}
      level: ${{ fromJSON(needs.setup.outputs.n) }}
    secrets: inherit
)");
  const CalledWorkflow& cw = *c->graph.workflows[0];
  auto in = bind_inputs(c->wf, c->wf.jobs[0], cw, context());
  ASSERT_TRUE(in) << in.error().message();
  EXPECT_EQ(in->dump(), R"({"fast":true,"level":5,"os":"linux","quiet":false,"tag":"main-x"})");

  // A string input takes numbers and booleans as their text.
  c = load(R"(jobs:
  call:
    uses: ./.github/workflows/build.yml
    with: {os: 3.10, fast: false}
    secrets: inherit
)");
  in = bind_inputs(c->wf, c->wf.jobs[0], *c->graph.workflows[0], context());
  ASSERT_TRUE(in) << in.error().message();
  EXPECT_EQ((*in)["os"], "3.1");
  EXPECT_EQ((*in)["fast"], false);
  EXPECT_EQ((*in)["level"], 2);
}

TEST(WorkflowCall, AnExpressionOfTheWrongTypeIsALocatedError) {
  auto c = load(R"(jobs:
  call:
    uses: ./.github/workflows/build.yml
    with:
      os: x
      fast: ${{ needs.setup.outputs.on }}
    secrets: inherit
)");
  auto in = bind_inputs(c->wf, c->wf.jobs[0], *c->graph.workflows[0], context());
  ASSERT_FALSE(in);
  EXPECT_EQ(first_line(in.error()),
            "ci.yml:6:7: input 'fast' of ./.github/workflows/build.yml expects a boolean, got "
            "'true' (a string)");
}

TEST(WorkflowCall, SecretsInheritedOrMapped) {
  auto c = load(R"(jobs:
  mapped:
    uses: ./.github/workflows/build.yml
    with: {os: x}
    secrets:
      TOKEN: ${{ secrets.T }}-v2
  inherited:
    uses: ./.github/workflows/build.yml
    with: {os: x}
    secrets: inherit
)");
  const CalledWorkflow& cw = *c->graph.workflows[0];
  auto mapped = bind_secrets(c->wf, c->wf.jobs[0], cw, context());
  ASSERT_TRUE(mapped) << mapped.error().message();
  EXPECT_EQ(mapped->dump(), R"({"token":"s3cret-v2"})");  // the callee's spelling
  auto inherited = bind_secrets(c->wf, c->wf.jobs[1], cw, context());
  ASSERT_FALSE(inherited);  // `token` is required and the run has no such secret
  EXPECT_EQ(first_line(inherited.error()),
            "ci.yml:8:11: secret 'token', which ./.github/workflows/build.yml requires, is not "
            "among the secrets job 'inherited' inherits");
  EvalContext ctx = context();
  ctx.contexts["secrets"]["Token"] = "t";
  inherited = bind_secrets(c->wf, c->wf.jobs[1], cw, ctx);
  ASSERT_TRUE(inherited) << inherited.error().message();
  EXPECT_EQ(inherited->dump(), R"({"OTHER":"o","T":"s3cret","Token":"t"})");
  // GITHUB_TOKEN reaches every called workflow, passed or not.
  ctx.contexts["secrets"]["GITHUB_TOKEN"] = "gh";
  mapped = bind_secrets(c->wf, c->wf.jobs[0], cw, ctx);
  ASSERT_TRUE(mapped) << mapped.error().message();
  EXPECT_EQ(mapped->dump(), R"({"GITHUB_TOKEN":"gh","token":"s3cret-v2"})");
}

TEST(WorkflowCall, OutputsAreEvaluatedOverTheCalledJobs) {
  auto c = load(R"(jobs:
  call:
    uses: ./.github/workflows/build.yml
    with: {os: x}
    secrets: inherit
)");
  EvalContext ctx = context();
  ctx.contexts["inputs"] = {{"os", "bsd"}};
  Value jobs = {{"compile", {{"result", "success"}, {"outputs", {{"art", "app.tar"}}}}}};
  auto out = call_outputs(*c->graph.workflows[0], jobs, ctx);
  ASSERT_TRUE(out) << out.error().message();
  EXPECT_EQ(out->at("artifact"), "app.tar-bsd");
}

TEST(WorkflowCall, PreviewNamesCalledJobsThroughTheirCallers) {
  auto c = load(R"(jobs:
  setup: {runs-on: x, steps: [{run: x}]}
  call:
    strategy:
      matrix: {os: [linux, bsd]}
    uses: ./.github/workflows/build.yml
    with:
      os: ${{ matrix.os }}
      compilers: '["gcc", "clang"]'
    secrets: inherit
  later:
    needs: setup
    uses: ./.github/workflows/build.yml
    with:
      os: ${{ needs.setup.outputs.os }}
      compilers: '["cc"]'
    secrets: inherit
)",
                R"(on:
  workflow_call:
    inputs:
      os: {type: string}
      compilers: {type: string}
jobs:
  compile:
    runs-on: x
    container: img:${{ inputs.os }}
    strategy:
      matrix:
        cc: ${{ fromJSON(inputs.compilers) }}
    steps: [{run: make}]
  test:
    needs: compile
    runs-on: x
    steps: [{run: make check}]
)");
  EvalContext base;
  base.contexts["github"] = Value::object();
  base.contexts["inputs"] = Value::object();
  std::vector<JobInstance> top;
  for (const Job& j : c->wf.jobs) {
    auto one = expand_job(c->wf, j, base);
    ASSERT_TRUE(one) << one.error().message();
    for (auto& i : *one) top.push_back(std::move(i));
  }
  auto all = preview_instances(top, c->wf, c->graph, base);
  ASSERT_TRUE(all) << all.error().message();
  std::vector<std::string> names;
  for (const auto& i : *all) names.push_back(i.display_name);
  EXPECT_EQ(names, (std::vector<std::string>{
                       "setup",
                       "call (linux) / compile (gcc)",
                       "call (linux) / compile (clang)",
                       "call (linux) / test",
                       "call (bsd) / compile (gcc)",
                       "call (bsd) / compile (clang)",
                       "call (bsd) / test",
                       // Inputs from needs outputs: known at run time only.
                       "later / compile (matrix from inputs)",
                       "later / test",
                   }));
  EXPECT_EQ((*all)[1].scope->inputs.dump(), R"({"compilers":"[\"gcc\", \"clang\"]","os":"linux"})");
  EXPECT_EQ((*all)[1].scope->caller_ids(), std::vector<std::string>{"call"});
  EXPECT_EQ((*all)[1].scope->levels(), 2);
  EXPECT_FALSE((*all)[7].scope->inputs_known);

  // What lockstep.lock pins per called instance; what reads unknown inputs is not.
  auto uses = collect_inputs(c->wf, base, {}, &c->graph);
  ASSERT_TRUE(uses) << uses.error().message();
  std::vector<std::string> got;
  for (const auto& u : *uses) got.push_back(u.instance + "|" + u.reference + "|" + u.unlockable);
  EXPECT_EQ(got, (std::vector<std::string>{
                     "call (linux) / compile (gcc)|img:linux|",
                     "call (linux) / compile (clang)|img:linux|",
                     "call (bsd) / compile (gcc)|img:bsd|",
                     "call (bsd) / compile (clang)|img:bsd|",
                     "later / compile (matrix from inputs)||reads 'inputs', given from needs "
                     "outputs at run time",
                 }));
}

TEST(WorkflowCall, ExpandingACallAtRunTimeUsesItsInputsAndKeepsNeedsStandIns) {
  auto c = load(R"(jobs:
  call:
    uses: ./.github/workflows/build.yml
    with: {os: linux, compilers: '["a", "b"]'}
    secrets: inherit
)",
                R"(on:
  workflow_call:
    inputs:
      os: {type: string}
      compilers: {type: string}
jobs:
  one:
    runs-on: x
    strategy:
      matrix: {cc: "${{ fromJSON(inputs.compilers) }}"}
    steps: [{run: x}]
  two:
    needs: one
    runs-on: x
    strategy:
      matrix: ${{ fromJSON(needs.one.outputs.m) }}
    steps: [{run: x}]
)");
  EvalContext ctx = context();
  JobInstance caller{&c->wf.jobs[0], OrderedValue::object(), "call"};
  auto scope = make_call_scope(caller, c->wf, c->graph, ctx);
  ASSERT_TRUE(scope) << scope.error().message();
  EXPECT_TRUE((*scope)->inputs_known);
  auto jobs = expand_call(*scope, ctx);
  ASSERT_TRUE(jobs) << jobs.error().message();
  ASSERT_EQ(jobs->size(), 3u);
  EXPECT_EQ((*jobs)[0].display_name, "call / one (a)");
  EXPECT_EQ((*jobs)[1].display_name, "call / one (b)");
  EXPECT_EQ((*jobs)[2].display_name, "call / two (matrix from needs)");
  EXPECT_TRUE(is_stand_in((*jobs)[2]));
  EXPECT_EQ(&workflow_of((*jobs)[0], c->wf), &c->graph.workflows[0]->workflow);
  Json doc = call_document(*(*jobs)[0].scope);
  EXPECT_EQ(doc["workflow"], "./.github/workflows/build.yml");
  EXPECT_EQ(doc["callers"], Json::array({"call"}));
  EXPECT_EQ(doc["digest"], c->graph.workflows[0]->digest);
  EXPECT_EQ(doc["inputs"]["os"], "linux");
}

}  // namespace
}  // namespace lockstep::pipeline
