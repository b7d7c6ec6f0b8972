// Which workflows a push or pull request starts, as GitHub evaluates `on:`.
#include "pipeline/triggers.hpp"

#include <gtest/gtest.h>

namespace lockstep::pipeline {
namespace {

TriggerEvent push_branch(std::string branch, std::vector<std::string> paths = {}) {
  TriggerEvent ev;
  ev.name = "push";
  ev.branch = std::move(branch);
  ev.changed_paths = std::move(paths);
  return ev;
}

TriggerEvent push_tag(std::string tag) {
  TriggerEvent ev;
  ev.name = "push";
  ev.tag = std::move(tag);
  return ev;
}

TriggerEvent pull_request(std::string base, std::string action) {
  TriggerEvent ev;
  ev.name = "pull_request";
  ev.branch = std::move(base);
  ev.action = std::move(action);
  return ev;
}

bool runs(const std::string& yaml, const TriggerEvent& ev) {
  auto r = workflow_triggered(yaml, "ci.yml", ev);
  EXPECT_TRUE(r) << r.error().message();
  return r && *r;
}

TEST(Triggers, EventNamesAsAStringAListOrAMapping) {
  EXPECT_TRUE(runs("on: push\n", push_branch("main")));
  EXPECT_FALSE(runs("on: pull_request\n", push_branch("main")));
  EXPECT_TRUE(runs("on: [pull_request, push]\n", push_branch("main")));
  EXPECT_TRUE(runs("on:\n  push:\n", push_branch("main")));
  EXPECT_FALSE(runs("on:\n  workflow_dispatch:\n", push_branch("main")));
  EXPECT_FALSE(runs("jobs: {}\n", push_branch("main")));
}

TEST(Triggers, BranchFiltersWithGlobsAndNegation) {
  const std::string wf =
      "on:\n  push:\n    branches: [main, 'releases/**', '!releases/**-alpha']\n";
  EXPECT_TRUE(runs(wf, push_branch("main")));
  EXPECT_TRUE(runs(wf, push_branch("releases/v1/x")));
  EXPECT_FALSE(runs(wf, push_branch("releases/v1-alpha")));
  EXPECT_FALSE(runs(wf, push_branch("feature")));
  const std::string ignore = "on:\n  push:\n    branches-ignore: ['feature/*']\n";
  EXPECT_FALSE(runs(ignore, push_branch("feature/a")));
  EXPECT_TRUE(runs(ignore, push_branch("feature/a/b")));  // '*' stops at '/'
  EXPECT_TRUE(runs(ignore, push_branch("main")));
}

TEST(Triggers, OnlyBranchFiltersSkipTagsAndTheOtherWayRound) {
  EXPECT_FALSE(runs("on:\n  push:\n    branches: ['**']\n", push_tag("v1")));
  EXPECT_FALSE(runs("on:\n  push:\n    tags: ['v*']\n", push_branch("main")));
  EXPECT_TRUE(runs("on:\n  push:\n    tags: ['v*']\n", push_tag("v1.2")));
  EXPECT_FALSE(runs("on:\n  push:\n    tags: ['v*']\n", push_tag("release-1")));
  EXPECT_TRUE(runs("on:\n  push:\n    branches: [main]\n    tags: ['v*']\n", push_tag("v1")));
}

TEST(Triggers, PathFilters) {
  const std::string wf = "on:\n  push:\n    paths: ['src/**', '!src/docs/**']\n";
  EXPECT_TRUE(runs(wf, push_branch("main", {"README", "src/a.c"})));
  EXPECT_FALSE(runs(wf, push_branch("main", {"README", "src/docs/x.md"})));
  const std::string ignore = "on:\n  push:\n    paths-ignore: ['**.md']\n";
  EXPECT_FALSE(runs(ignore, push_branch("main", {"a.md", "docs/b.md"})));
  EXPECT_TRUE(runs(ignore, push_branch("main", {"a.md", "main.c"})));
  // Without a change set (a new branch) the workflow runs.
  TriggerEvent unknown = push_branch("new");
  unknown.paths_known = false;
  EXPECT_TRUE(runs(wf, unknown));
}

TEST(Triggers, PullRequestTypesAndBaseBranches) {
  EXPECT_TRUE(runs("on: pull_request\n", pull_request("main", "opened")));
  EXPECT_TRUE(runs("on:\n  pull_request:\n", pull_request("main", "synchronize")));
  EXPECT_FALSE(runs("on:\n  pull_request:\n", pull_request("main", "closed")));
  EXPECT_TRUE(runs("on:\n  pull_request:\n    types: [closed]\n", pull_request("main", "closed")));
  EXPECT_FALSE(runs("on:\n  pull_request:\n    branches: [main]\n", pull_request("dev", "opened")));
}

TEST(Triggers, BadFiltersAreWorkflowErrorsWithTheirLocation) {
  auto r = workflow_triggered("on:\n  push:\n    branches: {a: b}\n", "ci.yml", push_branch("x"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "ci.yml:3:15: 'branches' must be a string or a list of strings");
  auto both = workflow_triggered("on:\n  push:\n    branches: [a]\n    branches-ignore: [b]\n",
                                 "ci.yml", push_branch("x"));
  ASSERT_FALSE(both);
  EXPECT_EQ(both.error().message(),
            "ci.yml:3:5: 'push' cannot have both 'branches' and 'branches-ignore'");
}

}  // namespace
}  // namespace lockstep::pipeline
