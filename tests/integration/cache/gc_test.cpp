// cache gc: unreferenced blobs and layers go, LRU images are evicted to meet
// --max-size, and an image a job holds a UseLock on is never touched.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "cache/gc.hpp"
#include "cache/gc_lock.hpp"
#include "cache/image_store.hpp"
#include "common/fs.hpp"

namespace lockstep::cache {
namespace {
namespace fs = std::filesystem;

struct Gc : ::testing::Test {
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (unpacking root-owned layers)";
    auto d = TempDir::create(fs::temp_directory_path(), "ls-gc-");
    ASSERT_TRUE(d);
    dir = std::move(*d);
    store.emplace(dir.path() / "state");
    // a: oldest use, b: middle, c: newest.
    long when = 1'000'000;
    for (std::string name : {"a", "b", "c"}) {
      fs::path root = dir.path() / ("root-" + name);
      fs::create_directories(root);
      ASSERT_TRUE(write_file_atomic(root / "id", std::string(100000, name[0])));
      auto d2 = store->import_rootfs(root, name);
      ASSERT_TRUE(d2) << d2.error().message();
      digests[name] = *d2;
      auto rec = store->resolve(name);
      ASSERT_TRUE(store->layer_dirs(*rec));
      timespec ts[2] = {{when, 0}, {when, 0}};
      ASSERT_EQ(::utimensat(AT_FDCWD, (dir.path() / "state/use" / d2->hex()).c_str(), ts, 0), 0);
      when += 1000;
    }
  }
  bool intact(const std::string& name) {
    auto rec = store->resolve(name);
    if (!rec) return false;
    for (const auto& l : rec->layers)
      if (!store->blobs().has(l.blob) ||
          !fs::exists(dir.path() / "state/layers" / l.diff_id.hex() / "id"))
        return false;
    return true;
  }
  TempDir dir;
  std::optional<ImageStore> store;
  std::map<std::string, Digest> digests;
};

TEST_F(Gc, RemovesOnlyUnreferenced) {
  auto b = store->resolve("b");
  ASSERT_TRUE(b);
  ASSERT_TRUE(store->remove("b"));
  auto rep = collect_garbage(*store, GcOptions{});
  ASSERT_TRUE(rep) << rep.error().message();
  EXPECT_TRUE(rep->evicted.empty());
  EXPECT_EQ(rep->blobs_removed, 3u);  // manifest, config, layer
  EXPECT_EQ(rep->layers_removed, 1u);
  EXPECT_GT(rep->bytes_freed, 100000u);
  EXPECT_FALSE(store->blobs().has(b->manifest));
  EXPECT_FALSE(fs::exists(dir.path() / "state/layers" / b->layers[0].diff_id.hex()));
  EXPECT_TRUE(intact("a"));
  EXPECT_TRUE(intact("c"));
  // A second run finds nothing more.
  auto again = collect_garbage(*store, GcOptions{});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->blobs_removed + again->layers_removed, 0u);
}

TEST_F(Gc, EvictsLeastRecentlyUsedButNeverInUse) {
  auto lock = UseLock::acquire(dir.path() / "state", digests["a"]);  // a job runs "a"
  ASSERT_TRUE(lock);
  GcOptions o;
  o.max_size = 1;
  auto rep = collect_garbage(*store, o);
  ASSERT_TRUE(rep) << rep.error().message();
  // "a" is the oldest but in use (acquiring the lock also made it the newest).
  EXPECT_EQ(rep->evicted, (std::vector<std::string>{"b:latest", "c:latest"}));
  EXPECT_EQ(rep->in_use, std::vector<Digest>{digests["a"]});
  EXPECT_TRUE(intact("a"));
  EXPECT_FALSE(store->resolve("b"));
  EXPECT_FALSE(store->blobs().has(digests["c"]));
}

TEST_F(Gc, LruOrderWithRoomForOne) {
  auto usage = cache_usage(*store);
  ASSERT_TRUE(usage);
  EXPECT_EQ(usage->blobs, 9u);
  EXPECT_EQ(usage->layers, 3u);
  auto imgs = cache_images(*store);
  ASSERT_TRUE(imgs);
  ASSERT_EQ(imgs->size(), 3u);
  EXPECT_EQ((*imgs)[0].tags, std::vector<std::string>{"a:latest"});
  EXPECT_EQ((*imgs)[2].tags, std::vector<std::string>{"c:latest"});
  GcOptions o;
  o.max_size = (*imgs)[2].bytes + (*imgs)[1].bytes;  // room for the two newest
  auto rep = collect_garbage(*store, o);
  ASSERT_TRUE(rep) << rep.error().message();
  EXPECT_EQ(rep->evicted, std::vector<std::string>{"a:latest"});
  EXPECT_LE(rep->size_after, *o.max_size);
  EXPECT_FALSE(store->resolve("a"));
  EXPECT_TRUE(intact("b"));
  EXPECT_TRUE(intact("c"));
}

TEST_F(Gc, UntaggedImageInUseIsKept) {
  auto lock = UseLock::acquire(dir.path() / "state", digests["b"]);
  ASSERT_TRUE(lock);
  ASSERT_TRUE(store->remove("b"));
  auto rep = collect_garbage(*store, GcOptions{});
  ASSERT_TRUE(rep);
  EXPECT_EQ(rep->blobs_removed, 0u);
  EXPECT_EQ(rep->layers_removed, 0u);
  EXPECT_TRUE(store->blobs().has(digests["b"]));
}

TEST(GcSize, ParseAndFormat) {
  EXPECT_EQ(*parse_size("1024"), 1024u);
  EXPECT_EQ(*parse_size("512K"), 512u << 10);
  EXPECT_EQ(*parse_size("100M"), 100ull << 20);
  EXPECT_EQ(*parse_size("2GiB"), 2ull << 30);
  EXPECT_EQ(*parse_size("1t"), 1ull << 40);
  auto bad = parse_size("lots");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(), "invalid size 'lots' (examples: 500M, 10G, 1073741824)");
  EXPECT_FALSE(parse_size("10X"));
  EXPECT_EQ(format_size(1536), "1.5 KiB");
  EXPECT_EQ(format_size(12), "12 B");
}

}  // namespace
}  // namespace lockstep::cache
