// actions/cache's engine: lookups, saves, restores and eviction on real files.
#include "cache/depcache.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "common/fs.hpp"

namespace lockstep::cache {
namespace {
namespace fs = std::filesystem;

void write(const fs::path& p, const std::string& content) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class DepCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = TempDir::create(fs::temp_directory_path(), "lockstep-depcache-");
    ASSERT_TRUE(t) << t.error().message();
    tmp_ = std::move(*t);
    job1_ = {tmp_.path() / "job1/ws", tmp_.path() / "job1/home"};
    job2_ = {tmp_.path() / "job2/ws", tmp_.path() / "job2/home"};
    fs::create_directories(job1_.workspace);
    fs::create_directories(job1_.home);
    fs::create_directories(job2_.workspace);
    fs::create_directories(job2_.home);
  }
  TempDir tmp_;
  JobDirs job1_, job2_;
};

TEST_F(DepCacheTest, MissSaveHitRestoreIntoAnotherJob) {
  DepCache cache(tmp_.path() / "state");
  const std::vector<std::string> paths = {"~/.npm", "node_modules", "build/**/*.o", "!build/skip"};
  const std::string version = DepCache::version_of(paths);

  auto miss = cache.lookup("npm-linux-abc", {"npm-linux-"}, version);
  ASSERT_TRUE(miss) << miss.error().message();
  EXPECT_EQ(miss->kind, CacheLookup::Kind::kMiss);
  EXPECT_FALSE(miss->entry);

  write(job1_.home / ".npm/_cacache/index", "npm index\n");
  write(job1_.workspace / "node_modules/left-pad/index.js", "module.exports = 1;\n");
  write(job1_.workspace / "build/a/x.o", "object x");
  write(job1_.workspace / "build/a/b/y.o", "object y");
  write(job1_.workspace / "build/a/notes.txt", "not cached");
  write(job1_.workspace / "build/skip/z.o", "excluded");
  ::chmod((job1_.workspace / "build/a/x.o").c_str(), 0755);
  fs::last_write_time(job1_.workspace / "node_modules/left-pad/index.js",
                      fs::file_time_type(std::chrono::seconds(1700000000)));

  auto saved = cache.save("npm-linux-abc", paths, job1_);
  ASSERT_TRUE(saved) << saved.error().message();
  EXPECT_TRUE(saved->created);
  EXPECT_EQ(saved->entry.key, "npm-linux-abc");
  EXPECT_TRUE(fs::exists(cache.archive_path(saved->entry.digest)));
  auto on_disk = sha256_of_file(cache.archive_path(saved->entry.digest));
  ASSERT_TRUE(on_disk);
  EXPECT_EQ(*on_disk, saved->entry.digest);  // content-addressed
  EXPECT_EQ(fs::file_size(cache.archive_path(saved->entry.digest)), saved->entry.size);

  auto hit = cache.lookup("npm-linux-abc", {"npm-linux-"}, version);
  ASSERT_TRUE(hit) << hit.error().message();
  EXPECT_EQ(hit->kind, CacheLookup::Kind::kExact);
  EXPECT_TRUE(hit->hit());

  // Another job, another workspace and home.
  auto restored = cache.restore(*hit->entry, paths, job2_);
  ASSERT_TRUE(restored) << restored.error().message();
  EXPECT_EQ(slurp(job2_.home / ".npm/_cacache/index"), "npm index\n");
  EXPECT_EQ(slurp(job2_.workspace / "node_modules/left-pad/index.js"), "module.exports = 1;\n");
  EXPECT_EQ(slurp(job2_.workspace / "build/a/x.o"), "object x");
  EXPECT_EQ(slurp(job2_.workspace / "build/a/b/y.o"), "object y");
  EXPECT_FALSE(fs::exists(job2_.workspace / "build/a/notes.txt"));
  EXPECT_FALSE(fs::exists(job2_.workspace / "build/skip/z.o"));
  EXPECT_NE(fs::status(job2_.workspace / "build/a/x.o").permissions() & fs::perms::owner_exec,
            fs::perms::none);
  EXPECT_EQ(fs::last_write_time(job2_.workspace / "node_modules/left-pad/index.js"),
            fs::file_time_type(std::chrono::seconds(1700000000)));

  // A second save of the key stores nothing: keys are immutable.
  auto again = cache.save("npm-linux-abc", paths, job2_);
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_FALSE(again->created);

  // Other paths: another version, not seen by this lookup.
  auto other = cache.lookup("npm-linux-abc", {}, DepCache::version_of({"vendor"}));
  ASSERT_TRUE(other);
  EXPECT_EQ(other->kind, CacheLookup::Kind::kMiss);
}

// Scopes (docs/actions.md, "Cache scopes"): a key is unique within its
// scope; a lookup searches its scopes in order, each wholly (exact key, then
// restore keys) before the next, as GitHub searches the run's branch before
// the default branch; a scope not listed is never seen.
TEST_F(DepCacheTest, ScopesAreSearchedInOrderAndOthersAreNeverSeen) {
  DepCache cache(tmp_.path() / "state");
  const std::vector<std::string> paths = {"deps"};
  const std::string version = DepCache::version_of(paths);
  const std::string repo = "repo o/r", pr = "repo o/r refs/pull/7/merge", other = "repo o/x";
  write(job1_.workspace / "deps/v", "repository's");
  ASSERT_TRUE(cache.save("deps-linux-1", paths, job1_, repo));
  write(job1_.workspace / "deps/v", "pull request's");
  auto pr_saved = cache.save("deps-linux-1", paths, job1_, pr);  // the same key, its own scope
  ASSERT_TRUE(pr_saved) << pr_saved.error().message();
  EXPECT_TRUE(pr_saved->created);
  write(job1_.workspace / "deps/v", "pull request's newer");
  ASSERT_TRUE(cache.save("deps-linux-2", paths, job1_, pr));

  auto from_repo = cache.lookup("deps-linux-2", {"deps-linux-"}, version, {repo});
  ASSERT_TRUE(from_repo);
  EXPECT_EQ(from_repo->kind, CacheLookup::Kind::kRestoreKey);  // not the pull request's exact key
  EXPECT_EQ(from_repo->entry->scope, repo);
  EXPECT_EQ(from_repo->entry->key, "deps-linux-1");

  auto from_pr = cache.lookup("deps-linux-1", {"deps-linux-"}, version, {pr, repo});
  ASSERT_TRUE(from_pr);
  EXPECT_EQ(from_pr->kind, CacheLookup::Kind::kExact);
  EXPECT_EQ(from_pr->entry->scope, pr);
  ASSERT_TRUE(cache.restore(*from_pr->entry, paths, job2_));
  EXPECT_EQ(slurp(job2_.workspace / "deps/v"), "pull request's");
  // A restore key in the first scope wins over the exact key in the next.
  auto order = cache.lookup("deps-linux-9", {"deps-linux-"}, version, {pr, repo});
  ASSERT_TRUE(order);
  EXPECT_EQ(order->kind, CacheLookup::Kind::kRestoreKey);
  EXPECT_EQ(order->entry->key, "deps-linux-2");

  auto elsewhere = cache.lookup("deps-linux-1", {"deps-"}, version, {other});
  ASSERT_TRUE(elsewhere);
  EXPECT_EQ(elsewhere->kind, CacheLookup::Kind::kMiss);

  // remove(key) takes the key out of every scope; the index is still whole.
  ASSERT_TRUE(cache.remove("deps-linux-1"));
  auto listed = cache.list();
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].key, "deps-linux-2");
  EXPECT_EQ((*listed)[0].scope, pr);
  EXPECT_FALSE(
      cache.save("a\x1f"
                 "b",
                 paths, job1_, repo));
}

TEST_F(DepCacheTest, RestoreKeysArePrefixesNewestFirst) {
  DepCache cache(tmp_.path() / "state");
  const std::vector<std::string> paths = {"deps"};
  write(job1_.workspace / "deps/v", "old");
  ASSERT_TRUE(cache.save("deps-linux-111", paths, job1_));
  write(job1_.workspace / "deps/v", "newer");
  ASSERT_TRUE(cache.save("deps-linux-222", paths, job1_));
  write(job1_.workspace / "deps/v", "other os");
  ASSERT_TRUE(cache.save("deps-mac-333", paths, job1_));

  auto r = cache.lookup("deps-linux-999", {"deps-linux-", "deps-"});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->kind, CacheLookup::Kind::kRestoreKey);
  ASSERT_TRUE(r->entry);
  EXPECT_EQ(r->entry->key, "deps-linux-222");
  ASSERT_TRUE(cache.restore(*r->entry, paths, job2_));
  EXPECT_EQ(slurp(job2_.workspace / "deps/v"), "newer");

  // The first restore key that matches anything wins, even if older.
  r = cache.lookup("x", {"deps-mac-", "deps-linux-"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->entry->key, "deps-mac-333");
  r = cache.lookup("x", {"nothing-", "deps-"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->entry->key, "deps-mac-333");  // newest of all deps-*
  r = cache.lookup("x", {"nothing-"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, CacheLookup::Kind::kMiss);
}

TEST_F(DepCacheTest, PathOutsideWorkspaceAndHomeIsAnError) {
  DepCache cache(tmp_.path() / "state");
  auto r = cache.save("k", {"deps", "/etc"}, job1_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "cache path '/etc' is outside the workspace and home");
  EXPECT_EQ(r.error().kind(), ErrorKind::kUsage);
  r = cache.save("k", {"../../elsewhere/**"}, job1_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "cache path '../../elsewhere/**' is outside the workspace and home");
  DepCacheEntry e;
  auto st = cache.restore(e, {"~/../../x"}, job1_);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message(), "cache path '~/../../x' is outside the workspace and home");
}

TEST_F(DepCacheTest, NothingMatchedIsNotFound) {
  DepCache cache(tmp_.path() / "state");
  auto r = cache.save("k", {"missing", "nope/**"}, job1_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::kNotFound);
  EXPECT_EQ(r.error().message(),
            "no files match the cache paths (missing, nope/**); nothing saved for key 'k'");
  auto l = cache.list();
  ASSERT_TRUE(l);
  EXPECT_TRUE(l->empty());
}

TEST_F(DepCacheTest, SymlinksAreStoredAsLinks) {
  DepCache cache(tmp_.path() / "state");
  write(job1_.workspace / "tool/bin/real", "bin");
  fs::create_symlink("real", job1_.workspace / "tool/bin/alias");
  fs::create_symlink("/etc/passwd", job1_.workspace / "tool/abs");
  auto s = cache.save("t", {"tool"}, job1_);
  ASSERT_TRUE(s) << s.error().message();
  ASSERT_TRUE(cache.restore(s->entry, {"tool"}, job2_));
  EXPECT_EQ(fs::read_symlink(job2_.workspace / "tool/bin/alias"), "real");
  EXPECT_EQ(fs::read_symlink(job2_.workspace / "tool/abs"), "/etc/passwd");
}

TEST_F(DepCacheTest, ListRemoveAndEvictLeastRecentlyUsed) {
  DepCache cache(tmp_.path() / "state");
  write(job1_.workspace / "a/f", std::string(1000, 'a'));
  auto a = cache.save("a", {"a"}, job1_);
  write(job1_.workspace / "b/f", std::string(1000, 'b'));
  auto b = cache.save("b", {"b"}, job1_);
  write(job1_.workspace / "c/f", std::string(1000, 'c'));
  auto c = cache.save("c", {"c"}, job1_);
  ASSERT_TRUE(a && b && c);
  // Using "a" makes "b" the least recently used.
  ASSERT_TRUE(cache.restore(a->entry, {"a"}, job2_));

  auto l = cache.list();
  ASSERT_TRUE(l);
  ASSERT_EQ(l->size(), 3u);
  EXPECT_EQ((*l)[0].key, "b");
  EXPECT_EQ((*l)[2].key, "a");

  const uint64_t keep = a->entry.size + c->entry.size;
  auto evicted = cache.evict_to(keep);
  ASSERT_TRUE(evicted) << evicted.error().message();
  ASSERT_EQ(evicted->size(), 1u);
  EXPECT_EQ((*evicted)[0].key, "b");
  EXPECT_FALSE(fs::exists(cache.archive_path(b->entry.digest)));
  EXPECT_EQ(cache.lookup("b", {})->kind, CacheLookup::Kind::kMiss);

  ASSERT_TRUE(cache.remove("c"));
  EXPECT_FALSE(fs::exists(cache.archive_path(c->entry.digest)));
  auto gone = cache.remove("c");
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().message(), "no cache entry with key 'c'");
  EXPECT_EQ(cache.list()->size(), 1u);
}

}  // namespace
}  // namespace lockstep::cache
