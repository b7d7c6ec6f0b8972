// Where a workflow's project files are found: repository root, .lockstep.yml,
// lockstep.lock, and the state dir's precedence.
#include <gtest/gtest.h>

#include <cstdlib>

#include "common/fs.hpp"
#include "runner/engine/project.hpp"

namespace lockstep::runner {
namespace {
namespace fs = std::filesystem;

class ProjectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = TempDir::create(fs::temp_directory_path(), "project-test");
    ASSERT_TRUE(d);
    dir_.emplace(std::move(*d));
    fs::create_directories(repo() / ".git");
    fs::create_directories(repo() / ".github/workflows");
    ASSERT_TRUE(write_file(workflow(), "on: push\n"));
    if (const char* h = std::getenv("LOCKSTEP_HOME")) saved_home_ = h;
  }
  void TearDown() override {
    if (saved_home_)
      ::setenv("LOCKSTEP_HOME", saved_home_->c_str(), 1);
    else
      ::unsetenv("LOCKSTEP_HOME");
  }
  fs::path repo() const { return dir_->path() / "repo"; }
  fs::path workflow() const { return repo() / ".github/workflows/ci.yml"; }

  std::optional<TempDir> dir_;
  std::optional<std::string> saved_home_;
};

TEST_F(ProjectTest, RepositoryRootHoldsTheLockAndTheConfig) {
  EXPECT_EQ(repository_root(workflow()), repo());
  EXPECT_EQ(default_lock_path(workflow()), repo() / "lockstep.lock");

  // No config: no settings.
  auto c = load_config_for(workflow(), "");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->platforms.empty());
  // Next to the workflow.
  ASSERT_TRUE(write_file(repo() / ".github/workflows/.lockstep.yml", "runs-on:\n  a: near\n"));
  c = load_config_for(workflow(), "");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->platforms.at("a"), "near");
  // The repository root's comes first.
  ASSERT_TRUE(write_file(repo() / ".lockstep.yml", "runs-on:\n  a: root\n"));
  c = load_config_for(workflow(), "");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->platforms.at("a"), "root");
  // --config wins; a missing one is a usage error.
  ASSERT_TRUE(write_file(dir_->path() / "x.yml", "runs-on:\n  a: explicit\n"));
  c = load_config_for(workflow(), dir_->path() / "x.yml");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->platforms.at("a"), "explicit");
  c = load_config_for(workflow(), dir_->path() / "missing.yml");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().kind(), ErrorKind::kUsage);
}

TEST_F(ProjectTest, OutsideARepositoryTheWorkflowsDirectory) {
  fs::path loose = dir_->path() / "loose" / "ci.yml";
  fs::create_directories(loose.parent_path());
  ASSERT_TRUE(write_file(loose, "on: push\n"));
  // (A .git further up, as on a developer machine, would make that the root.)
  if (repository_root(loose)) GTEST_SKIP() << "the temp dir is inside a git repository";
  EXPECT_EQ(default_lock_path(loose), loose.parent_path() / "lockstep.lock");
}

TEST_F(ProjectTest, StateDirPrecedence) {
  pipeline::ProjectConfig cfg;
  cfg.file = (repo() / ".lockstep.yml").string();
  cfg.state_dir = "state";
  ::unsetenv("LOCKSTEP_HOME");
  EXPECT_EQ(choose_state_dir("", cfg), repo() / "state");
  cfg.state_dir = "/abs/state";
  EXPECT_EQ(choose_state_dir("", cfg), "/abs/state");
  ::setenv("LOCKSTEP_HOME", "/from/env", 1);
  EXPECT_EQ(choose_state_dir("", cfg), "/from/env");
  EXPECT_EQ(choose_state_dir("/from/flag", cfg), "/from/flag");
}

}  // namespace
}  // namespace lockstep::runner
