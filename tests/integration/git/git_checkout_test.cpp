// Checkout from bare mirrors, against real repositories made with the git CLI.
#include "cache/git_checkout.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "cache/git_mirror.hpp"
#include "common/fs.hpp"
#include "tests/integration/git/git_test_util.hpp"

// libgit2 1.5.1 (Debian 12) leaks the pcre2 match data of the regexps it
// runs when it creates a remote (git_remote_create_with_opts); the leak is in
// the library, per fetch, and not ours to fix. Read by LeakSanitizer only.
extern "C" const char* __lsan_default_suppressions() {  // NOLINT
  return "leak:libgit2.so\nleak:libpcre2-8.so\n";
}

namespace lockstep::cache {
namespace {
namespace fs = std::filesystem;
using lockstep::testing::commit_file;
using lockstep::testing::git;
using lockstep::testing::init_repo;
using lockstep::testing::sh;
using lockstep::testing::slurp;
using lockstep::testing::write;

class GitCheckoutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = TempDir::create(fs::temp_directory_path(), "lockstep-git-");
    ASSERT_TRUE(t) << t.error().message();
    tmp_ = std::move(*t);
    src_ = tmp_.path() / "src";
    // main: c1 (tag v1, annotated) -> c2; dev: c1 -> c3
    init_repo(src_, "README", "one\n");
    c1_ = git(src_, "rev-parse HEAD");
    git(src_, "tag -a v1 -m 'release 1'");
    git(src_, "checkout -q -b dev");
    c3_ = commit_file(src_, "dev.txt", "dev\n");
    git(src_, "checkout -q main");
    c2_ = commit_file(src_, "README", "two\n");
  }

  fs::path state() const { return tmp_.path() / "state"; }
  fs::path dest(const std::string& n) const { return tmp_.path() / "ws" / n; }

  TempDir tmp_;
  fs::path src_;
  std::string c1_, c2_, c3_;
};

TEST_F(GitCheckoutTest, BranchTagCommitAndAbbreviatedCommit) {
  GitMirrors mirrors(state());
  CheckoutRequest req;
  req.url = src_.string();
  req.ref = "main";
  req.path = dest("a");
  auto r = checkout(mirrors, req);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->commit, c2_);
  EXPECT_EQ(r->tree, git(src_, "rev-parse main^{tree}"));
  EXPECT_EQ(slurp(req.path / "README"), "two\n");
  EXPECT_FALSE(fs::exists(req.path / "dev.txt"));
  // A normal repository: git works in it, the tree is clean, origin is the source.
  EXPECT_EQ(git(req.path, "rev-parse HEAD"), c2_);
  EXPECT_EQ(git(req.path, "symbolic-ref --short HEAD"), "main");
  EXPECT_EQ(git(req.path, "status --porcelain"), "");
  EXPECT_EQ(git(req.path, "remote get-url origin"), src_.string());
  EXPECT_EQ(git(req.path, "log --format=%H"), c2_ + "\n" + c1_);

  req.ref = "v1";
  req.path = dest("b");
  r = checkout(mirrors, req);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->commit, c1_);
  EXPECT_EQ(r->ref.kind, ResolvedRef::Kind::kTag);
  EXPECT_EQ(slurp(req.path / "README"), "one\n");
  EXPECT_EQ(git(req.path, "describe --tags"), "v1");
  EXPECT_EQ(git(req.path, "status --porcelain"), "");

  req.ref = c3_.substr(0, 8);
  req.path = dest("c");
  r = checkout(mirrors, req);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->commit, c3_);
  EXPECT_EQ(slurp(req.path / "dev.txt"), "dev\n");
  EXPECT_EQ(git(req.path, "rev-parse HEAD"), c3_);

  req.ref = "";  // the source's HEAD: main
  req.path = dest("d");
  r = checkout(mirrors, req);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->commit, c2_);
}

TEST_F(GitCheckoutTest, SecondUpdateOfUnchangedSourceFetchesNothing) {
  GitMirrors mirrors(state());
  auto first = mirrors.update(src_.string());
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_TRUE(first->created);
  EXPECT_GT(first->stats.received_objects, 0u);
  EXPECT_EQ(first->path, mirrors.mirror_path(src_.string()));
  EXPECT_EQ(first->head_ref, "refs/heads/main");
  const std::string refs_before = sh("git --git-dir=" + first->path.string() + " show-ref");

  auto second = mirrors.update(src_.string());
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_FALSE(second->created);
  EXPECT_EQ(second->stats.received_objects, 0u);
  EXPECT_EQ(second->stats.received_bytes, 0u);
  EXPECT_EQ(sh("git --git-dir=" + first->path.string() + " show-ref"), refs_before);

  // New work upstream is fetched, and only it.
  std::string c4 = commit_file(src_, "new.txt", "new\n");
  auto third = mirrors.update(src_.string());
  ASSERT_TRUE(third) << third.error().message();
  EXPECT_GT(third->stats.received_objects, 0u);
  EXPECT_LT(third->stats.received_objects, first->stats.received_objects + 3);
  auto resolved = mirrors.resolve(*third, "main");
  ASSERT_TRUE(resolved) << resolved.error().message();
  EXPECT_EQ(*resolved, c4);

  // A deleted branch disappears from the mirror (pruned).
  git(src_, "branch -q -D dev");
  auto fourth = mirrors.update(src_.string());
  ASSERT_TRUE(fourth) << fourth.error().message();
  EXPECT_FALSE(mirrors.resolve(*fourth, "dev"));
}

TEST_F(GitCheckoutTest, UnknownRefIsOneLineErrorNamingRepository) {
  GitMirrors mirrors(state());
  CheckoutRequest req{src_.string(), "v9", dest("x")};
  auto r = checkout(mirrors, req);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "unknown ref 'v9' in " + src_.string() + " (branches: main, dev; tags: v1)");
  EXPECT_EQ(r.error().kind(), ErrorKind::kNotFound);

  std::string missing(40, 'a');
  req.ref = missing;
  r = checkout(mirrors, req);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "commit '" + missing + "' not found in " + src_.string() +
                                     " (not reachable from any branch or tag)");
}

TEST_F(GitCheckoutTest, UnreachableRepositoryIsOneLineErrorAndLeavesNoMirror) {
  GitMirrors mirrors(state());
  const fs::path gone = tmp_.path() / "no-such-repo";
  CheckoutRequest req{gone.string(), "main", dest("x")};
  auto r = checkout(mirrors, req);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "cannot fetch repository '" + gone.string() + "': no such directory");
  EXPECT_EQ(r.error().kind(), ErrorKind::kUnavailable);
  EXPECT_FALSE(fs::exists(mirrors.mirror_path(gone.string())));
  // Nothing half-made is left in the mirrors dir besides the lock file.
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(state() / "git", ec))
    EXPECT_EQ(e.path().extension(), ".lock") << e.path();

  auto u = mirrors.update("file://" + gone.string());
  ASSERT_FALSE(u);
  EXPECT_EQ(u.error().message(),
            "cannot fetch repository 'file://" + gone.string() + "': no such directory");
  // A remote that refuses the connection: libgit2's reason, on one line.
  u = mirrors.update("https://127.0.0.1:1/repo.git");
  ASSERT_FALSE(u);
  EXPECT_EQ(u.error().message(),
            "cannot fetch repository 'https://127.0.0.1:1/repo.git': failed to connect to "
            "127.0.0.1: Connection refused");
  for (const auto& e : fs::directory_iterator(state() / "git", ec))
    EXPECT_EQ(e.path().extension(), ".lock") << e.path();
}

TEST_F(GitCheckoutTest, FileUrlWorks) {
  GitMirrors mirrors(state());
  CheckoutRequest req{"file://" + src_.string(), "dev", dest("f")};
  auto r = checkout(mirrors, req);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->commit, c3_);
  EXPECT_EQ(git(req.path, "remote get-url origin"), "file://" + src_.string());
}

TEST_F(GitCheckoutTest, ReusedDestinationCleanRemovesUntracked) {
  GitMirrors mirrors(state());
  CheckoutRequest req{src_.string(), "main", dest("p")};
  ASSERT_TRUE(checkout(mirrors, req));
  write(req.path / "junk.txt", "junk\n");
  write(req.path / "README", "edited\n");

  req.clean = false;
  req.ref = "dev";
  auto r = checkout(mirrors, req);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(slurp(req.path / "README"), "one\n");
  EXPECT_TRUE(fs::exists(req.path / "junk.txt"));
  EXPECT_EQ(git(req.path, "rev-parse HEAD"), c3_);

  req.clean = true;
  req.ref = "main";
  r = checkout(mirrors, req);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_FALSE(fs::exists(req.path / "junk.txt"));
  EXPECT_FALSE(fs::exists(req.path / "dev.txt"));
  EXPECT_EQ(git(req.path, "status --porcelain --ignored"), "");
  EXPECT_EQ(git(req.path, "rev-parse HEAD"), c2_);

  // A destination holding something else is emptied first.
  const fs::path other = dest("other");
  write(other / "stale.txt", "stale\n");
  req.path = other;
  ASSERT_TRUE(checkout(mirrors, req));
  EXPECT_FALSE(fs::exists(other / "stale.txt"));
  EXPECT_EQ(git(other, "status --porcelain"), "");
}

TEST_F(GitCheckoutTest, FullCommitAlreadyMirroredSkipsTheFetch) {
  GitMirrors mirrors(state());
  ASSERT_TRUE(mirrors.update(src_.string()));
  // The source goes away: a commit already in the mirror still checks out.
  ASSERT_TRUE(remove_tree(src_));
  CheckoutRequest req{src_.string(), c1_, dest("s")};
  auto r = checkout(mirrors, req);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_FALSE(r->mirror.fetched);
  EXPECT_EQ(slurp(req.path / "README"), "one\n");
}

TEST_F(GitCheckoutTest, ContentFiltersTakeLibgit2Path) {
  // A .gitattributes with eol=crlf changes bytes on checkout: the fast
  // writer must not be used, and the result must match git's.
  write(src_ / ".gitattributes", "*.txt text eol=crlf\n");
  commit_file(src_, "a.txt", "x\ny\n");
  GitMirrors mirrors(state());
  CheckoutRequest req{src_.string(), "main", dest("attr")};
  auto r = checkout(mirrors, req);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(slurp(req.path / "a.txt"), "x\r\ny\r\n");
  EXPECT_EQ(git(req.path, "status --porcelain"), "");
}

TEST_F(GitCheckoutTest, ExecutableBitsAndSymlinksAreKept) {
  write(src_ / "run.sh", "#!/bin/sh\n");
  git(src_, "update-index --add --chmod=+x run.sh");
  sh("ln -s README " + lockstep::testing::quote((src_ / "link").string()));
  git(src_, "add link");
  git(src_, "commit -q -m modes");
  GitMirrors mirrors(state());
  CheckoutRequest req{src_.string(), "main", dest("modes")};
  auto r = checkout(mirrors, req);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_NE(fs::status(req.path / "run.sh").permissions() & fs::perms::owner_exec, fs::perms::none);
  EXPECT_EQ(fs::status(req.path / "README").permissions() & fs::perms::owner_exec, fs::perms::none);
  ASSERT_TRUE(fs::is_symlink(req.path / "link"));
  EXPECT_EQ(fs::read_symlink(req.path / "link"), "README");
  EXPECT_EQ(git(req.path, "status --porcelain"), "");
}

TEST_F(GitCheckoutTest, ConcurrentUpdatesOfOneMirrorAreSerialised) {
  GitMirrors mirrors(state());
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (size_t i = 0; i < ok.size(); ++i)
    threads.emplace_back([&, i] { ok[i] = mirrors.update(src_.string()) ? 1 : 0; });
  for (auto& t : threads) t.join();
  for (int v : ok) EXPECT_EQ(v, 1);
  auto m = mirrors.open(src_.string());
  ASSERT_TRUE(m);
  EXPECT_EQ(*mirrors.resolve(*m, "main"), c2_);
  EXPECT_EQ(sh("git --git-dir=" + m->path.string() + " fsck --no-progress 2>&1"), "");
}

class SubmoduleTest : public GitCheckoutTest {
 protected:
  void SetUp() override {
    GitCheckoutTest::SetUp();
    // app -> lib (relative URL) -> lib2 (absolute path)
    lib2_ = tmp_.path() / "lib2";
    init_repo(lib2_, "deep.txt", "deep\n");
    lib_ = tmp_.path() / "lib";
    init_repo(lib_, "lib.txt", "lib\n");
    git(lib_, "-c protocol.file.allow=always submodule add -q " + lib2_.string() + " vendor/lib2");
    git(lib_, "commit -q -m 'add lib2'");
    app_ = tmp_.path() / "app";
    init_repo(app_, "app.txt", "app\n");
    git(app_, "-c protocol.file.allow=always submodule add -q ../lib lib");
    git(app_, "commit -q -m 'add lib'");
  }
  fs::path lib2_, lib_, app_;
};

TEST_F(SubmoduleTest, RecursiveChecksOutNestedSubmodulesThroughTheirOwnMirrors) {
  GitMirrors mirrors(state());
  CheckoutRequest req{app_.string(), "main", dest("app")};
  req.submodules = SubmoduleMode::kRecursive;
  auto r = checkout(mirrors, req);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(slurp(req.path / "app.txt"), "app\n");
  EXPECT_EQ(slurp(req.path / "lib/lib.txt"), "lib\n");
  EXPECT_EQ(slurp(req.path / "lib/vendor/lib2/deep.txt"), "deep\n");
  ASSERT_EQ(r->submodules.size(), 2u);
  EXPECT_EQ(r->submodules[0].path, "lib");
  EXPECT_EQ(r->submodules[0].url, lib_.string());
  EXPECT_EQ(r->submodules[0].commit, git(lib_, "rev-parse HEAD"));
  EXPECT_EQ(r->submodules[1].path, "lib/vendor/lib2");
  EXPECT_EQ(r->submodules[1].commit, git(lib2_, "rev-parse HEAD"));
  EXPECT_TRUE(fs::exists(mirrors.mirror_path(lib_.string())));
  EXPECT_TRUE(fs::exists(mirrors.mirror_path(lib2_.string())));
  EXPECT_EQ(git(req.path, "status --porcelain"), "");
  EXPECT_EQ(git(req.path / "lib", "status --porcelain"), "");
}

TEST_F(SubmoduleTest, TopLevelOnlyLeavesNestedEmpty) {
  GitMirrors mirrors(state());
  CheckoutRequest req{app_.string(), "main", dest("app")};
  req.submodules = SubmoduleMode::kTopLevel;
  auto r = checkout(mirrors, req);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(slurp(req.path / "lib/lib.txt"), "lib\n");
  EXPECT_FALSE(fs::exists(req.path / "lib/vendor/lib2/deep.txt"));
  EXPECT_EQ(r->submodules.size(), 1u);

  req.submodules = SubmoduleMode::kNone;
  req.path = dest("none");
  r = checkout(mirrors, req);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_FALSE(fs::exists(req.path / "lib/lib.txt"));
}

}  // namespace
}  // namespace lockstep::cache

namespace lockstep::cache {
namespace {

TEST_F(GitCheckoutTest, ManyFetchesAreRepackedIntoOnePack) {
  GitMirrors mirrors(state());
  ASSERT_TRUE(mirrors.update(src_.string()));
  std::string last;
  for (size_t i = 0; i <= GitMirrors::kMaxPacks; ++i) {
    last = commit_file(src_, "n.txt", std::to_string(i) + "\n");
    auto u = mirrors.update(src_.string());
    ASSERT_TRUE(u) << u.error().message();
    EXPECT_LE(mirrors.pack_count(src_.string()), GitMirrors::kMaxPacks);
  }
  EXPECT_LT(mirrors.pack_count(src_.string()), GitMirrors::kMaxPacks);
  const fs::path m = mirrors.mirror_path(src_.string());
  EXPECT_EQ(sh("git --git-dir=" + m.string() + " fsck --no-progress 2>&1"), "");
  EXPECT_EQ(sh("git --git-dir=" + m.string() + " cat-file -t v1"), "tag");
  CheckoutRequest req{src_.string(), "main", dest("after-repack")};
  req.fetch_depth = 0;
  auto r = checkout(mirrors, req);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->commit, last);
  EXPECT_EQ(git(req.path, "describe --tags --abbrev=0"), "v1");
  EXPECT_EQ(git(req.path, "status --porcelain"), "");
}

TEST_F(GitCheckoutTest, FetchDepthZeroWritesAllBranchesAndTags) {
  GitMirrors mirrors(state());
  CheckoutRequest req{src_.string(), "main", dest("depth1")};
  ASSERT_TRUE(checkout(mirrors, req));
  EXPECT_EQ(git(req.path, "tag"), "");
  EXPECT_EQ(git(req.path, "branch -r --format='%(refname:short)'"), "origin/main");
  req.path = dest("depth0");
  req.fetch_depth = 0;
  ASSERT_TRUE(checkout(mirrors, req));
  EXPECT_EQ(git(req.path, "tag"), "v1");
  EXPECT_EQ(git(req.path, "branch -r --format='%(refname:short)'"), "origin/dev\norigin/main");
  EXPECT_EQ(git(req.path, "rev-parse origin/dev"), c3_);
  EXPECT_EQ(git(req.path, "describe --tags"), "v1-1-g" + c2_.substr(0, 7));
  EXPECT_EQ(git(req.path, "status --porcelain"), "");
}

}  // namespace
}  // namespace lockstep::cache
