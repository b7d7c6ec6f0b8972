// The workflow's own repository: dirty detection and the --dirty patch.
#include "cache/git_worktree.hpp"

#include <gtest/gtest.h>

#include "cache/git_checkout.hpp"
#include "common/fs.hpp"
#include "tests/integration/git/git_test_util.hpp"

namespace lockstep::cache {
namespace {
namespace fs = std::filesystem;
using lockstep::testing::commit_file;
using lockstep::testing::git;
using lockstep::testing::init_repo;
using lockstep::testing::slurp;
using lockstep::testing::write;

class WorktreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = TempDir::create(fs::temp_directory_path(), "lockstep-wt-");
    ASSERT_TRUE(t) << t.error().message();
    tmp_ = std::move(*t);
    repo_ = tmp_.path() / "repo";
    init_repo(repo_, "a.txt", "alpha\n");
    write(repo_ / ".gitignore", "build/\n");
    head_ = commit_file(repo_, "src/b.txt", "beta\n");
  }
  TempDir tmp_;
  fs::path repo_;
  std::string head_;
};

TEST_F(WorktreeTest, CleanTreeFromASubdirectory) {
  auto st = inspect_worktree(repo_ / "src");
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_EQ(st->root, repo_);
  EXPECT_EQ(st->head_commit, head_);
  EXPECT_EQ(st->head_tree, git(repo_, "rev-parse HEAD^{tree}"));
  EXPECT_EQ(st->branch, "main");
  EXPECT_FALSE(st->dirty);
  // Ignored files do not make a tree dirty.
  write(repo_ / "build/out.o", "obj");
  st = inspect_worktree(repo_);
  ASSERT_TRUE(st);
  EXPECT_FALSE(st->dirty);
  auto p = dirty_patch(repo_);
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(*p, "");
}

TEST_F(WorktreeTest, NotARepository) {
  auto st = inspect_worktree(tmp_.path());
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message(),
            "'" + tmp_.path().string() + "' is not inside a git working tree");
}

TEST_F(WorktreeTest, DirtyTreePatchRoundTrip) {
  write(repo_ / "a.txt", "alpha\nmore\n");                   // modified
  write(repo_ / "new/dir/c.txt", "gamma\n");                 // untracked, nested
  write(repo_ / "bin.dat", std::string("\0\1\2\3\xff", 5));  // untracked binary
  fs::remove(repo_ / "src/b.txt");                           // deleted
  write(repo_ / "staged.txt", "staged\n");
  git(repo_, "add staged.txt");  // staged

  auto st = inspect_worktree(repo_);
  ASSERT_TRUE(st) << st.error().message();
  EXPECT_TRUE(st->dirty);
  EXPECT_EQ(st->changed, (std::vector<std::string>{"a.txt", "bin.dat", "new/dir/c.txt", "src/b.txt",
                                                   "staged.txt"}));

  auto patch = dirty_patch(repo_);
  ASSERT_TRUE(patch) << patch.error().message();
  EXPECT_NE(patch->find("diff --git a/a.txt b/a.txt"), std::string::npos);

  // Apply to a fresh checkout of HEAD: the contents match the dirty tree.
  GitMirrors mirrors(tmp_.path() / "state");
  CheckoutRequest req{repo_.string(), head_, tmp_.path() / "ws"};
  auto co = checkout(mirrors, req);
  ASSERT_TRUE(co) << co.error().message();
  auto applied = apply_patch(req.path, *patch);
  ASSERT_TRUE(applied) << applied.error().message();
  EXPECT_EQ(slurp(req.path / "a.txt"), "alpha\nmore\n");
  EXPECT_EQ(slurp(req.path / "new/dir/c.txt"), "gamma\n");
  EXPECT_EQ(slurp(req.path / "bin.dat"), std::string("\0\1\2\3\xff", 5));
  EXPECT_EQ(slurp(req.path / "staged.txt"), "staged\n");
  EXPECT_FALSE(fs::exists(req.path / "src/b.txt"));

  // A patch that does not apply fails and changes nothing.
  auto again = apply_patch(req.path, *patch);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().message().find('\n'), std::string::npos);
  EXPECT_EQ(slurp(req.path / "a.txt"), "alpha\nmore\n");
}

}  // namespace
}  // namespace lockstep::cache
