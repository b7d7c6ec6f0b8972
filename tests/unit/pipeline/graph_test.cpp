#include "pipeline/graph.hpp"

#include <gtest/gtest.h>

#include "pipeline/diagnostic.hpp"
#include "pipeline/parse.hpp"

namespace lockstep::pipeline {
namespace {

// jobs: "id:need1,need2 id2: ..." -> a workflow with those jobs and needs.
std::string workflow(const std::vector<std::pair<std::string, std::string>>& jobs) {
  std::string y = "jobs:\n";
  for (const auto& [id, needs] : jobs) {
    y += "  " + id + ":\n    runs-on: x\n";
    if (!needs.empty()) y += "    needs: [" + needs + "]\n";
    y += "    steps: [{run: x}]\n";
  }
  return y;
}

std::vector<std::string> order(const std::vector<std::pair<std::string, std::string>>& jobs) {
  auto wf = parse_workflow(workflow(jobs), "ci.yml");
  EXPECT_TRUE(wf) << wf.error().message();
  auto g = build_graph(*wf);
  EXPECT_TRUE(g) << g.error().message();
  std::vector<std::string> out;
  if (g) {
    for (size_t i : g->order) out.push_back(wf->jobs[i].id);
  }
  return out;
}

std::string graph_error(const std::vector<std::pair<std::string, std::string>>& jobs) {
  auto wf = parse_workflow(workflow(jobs), "ci.yml");
  EXPECT_TRUE(wf) << wf.error().message();
  auto g = build_graph(*wf);
  EXPECT_FALSE(g);
  return g ? std::string() : std::string(first_line(g.error()));
}

using Jobs = std::vector<std::pair<std::string, std::string>>;
using Ids = std::vector<std::string>;

TEST(JobGraph, IndependentJobsKeepDeclarationOrder) {
  EXPECT_EQ(order(Jobs{{"c", ""}, {"a", ""}, {"b", ""}}), (Ids{"c", "a", "b"}));
}

TEST(JobGraph, NeedsComeFirstStableByDeclaration) {
  // test needs build; lint is independent and declared before build.
  EXPECT_EQ(order(Jobs{{"test", "build"}, {"lint", ""}, {"build", ""}, {"deploy", "test, lint"}}),
            (Ids{"lint", "build", "test", "deploy"}));
  EXPECT_EQ(order(Jobs{{"d", "b, c"}, {"c", "a"}, {"b", "a"}, {"a", ""}}),
            (Ids{"a", "c", "b", "d"}));
}

TEST(JobGraph, EdgesBothWays) {
  auto wf = parse_workflow(workflow(Jobs{{"a", ""}, {"b", "a"}, {"c", "a, b"}}), "ci.yml");
  ASSERT_TRUE(wf);
  auto g = build_graph(*wf);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->needs[2], (std::vector<size_t>{0, 1}));
  EXPECT_EQ(g->dependents[0], (std::vector<size_t>{1, 2}));
  EXPECT_EQ(g->dependents[2], std::vector<size_t>{});
  EXPECT_EQ(job_index(*wf, "c"), 2);
  EXPECT_EQ(job_index(*wf, "zz"), -1);
}

TEST(JobGraphErrors, UnknownNeedWithSuggestion) {
  auto wf = parse_workflow(R"(jobs:
  build:
    runs-on: x
    steps: [{run: x}]
  test:
    runs-on: x
    needs: [build, biuld]
    steps: [{run: x}]
)",
                           "ci.yml");
  ASSERT_TRUE(wf);
  auto g = build_graph(*wf);
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().kind(), ErrorKind::kWorkflow);
  EXPECT_EQ(g.error().message(),
            "ci.yml:7:20: job 'test' needs unknown job 'biuld' (did you mean 'build'?)\n"
            "    7 |     needs: [build, biuld]\n"
            "      |                    ^");
  EXPECT_EQ(graph_error(Jobs{{"a", "zzz"}}), "ci.yml:4:13: job 'a' needs unknown job 'zzz'");
}

TEST(JobGraphErrors, SelfAndDuplicateNeeds) {
  EXPECT_EQ(graph_error(Jobs{{"a", "a"}}), "ci.yml:4:13: job 'a' needs itself");
  EXPECT_EQ(graph_error(Jobs{{"a", ""}, {"b", "a, a"}}),
            "ci.yml:7:16: job 'b' lists 'a' twice in needs");
}

TEST(JobGraphErrors, CyclesAreNamed) {
  EXPECT_EQ(graph_error(Jobs{{"a", "b"}, {"b", "a"}}),
            "ci.yml:4:13: dependency cycle: a -> b -> a");
  // a needs c, b needs a, c needs b; x is fine and comes first.
  EXPECT_EQ(graph_error(Jobs{{"x", ""}, {"a", "c, x"}, {"b", "a"}, {"c", "b"}}),
            "ci.yml:7:13: dependency cycle: a -> b -> c -> a");
  // A cycle behind a job that is merely blocked by it.
  EXPECT_EQ(graph_error(Jobs{{"blocked", "p"}, {"p", "q"}, {"q", "p"}}),
            "ci.yml:8:13: dependency cycle: p -> q -> p");
}

}  // namespace
}  // namespace lockstep::pipeline
