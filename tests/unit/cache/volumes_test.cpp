#include "cache/volumes.hpp"

#include <sys/stat.h>
#include <utime.h>

#include <fstream>

#include <gtest/gtest.h>

#include "common/fs.hpp"

namespace lockstep::cache {
namespace {
namespace fs = std::filesystem;

// Makes `name` look unused since `seconds` ago.
void age(const fs::path& state, const std::string& name, int seconds) {
  fs::path f = state / "volumes" / name / "last-use";
  struct utimbuf t;
  t.actime = t.modtime = ::time(nullptr) - seconds;
  ASSERT_EQ(::utime(f.c_str(), &t), 0);
}

TEST(Volumes, NamesFollowDocker) {
  for (const char* ok : {"ab", "my_volume", "v1.2-x", "9lives"}) EXPECT_TRUE(valid_volume_name(ok));
  for (const char* bad : {"", "a", "_x", ".x", "a/b", "a b", "../x", "x:y"})
    EXPECT_FALSE(valid_volume_name(bad)) << bad;
}

TEST(Volumes, KeptAcrossUsesUntilUnusedLongEnough) {
  auto dir = TempDir::create(fs::temp_directory_path(), "ls-vol-");
  ASSERT_TRUE(dir);
  VolumeStore store(dir->path());
  {
    auto use = store.use("cache_vol");
    ASSERT_TRUE(use) << use.error().message();
    std::ofstream(use->data / "file") << "kept\n";
  }
  {
    auto again = store.use("cache_vol");
    ASSERT_TRUE(again);
    std::ifstream in(again->data / "file");
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(line, "kept");
  }
  auto list = store.list();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].name, "cache_vol");
  EXPECT_GT((*list)[0].bytes, 0u);

  // Used a minute ago: a day's age keeps it, no age removes it.
  age(dir->path(), "cache_vol", 60);
  auto removed = store.remove_unused(std::chrono::hours(24));
  ASSERT_TRUE(removed);
  EXPECT_TRUE(removed->empty());
  removed = store.remove_unused(std::chrono::seconds(0));
  ASSERT_TRUE(removed);
  ASSERT_EQ(removed->size(), 1u);
  EXPECT_EQ((*removed)[0].name, "cache_vol");
  EXPECT_FALSE(fs::exists(dir->path() / "volumes" / "cache_vol"));
}

TEST(Volumes, AVolumeInUseIsNeverRemoved) {
  auto dir = TempDir::create(fs::temp_directory_path(), "ls-vol-");
  ASSERT_TRUE(dir);
  VolumeStore store(dir->path());
  auto held = store.use("busy");
  ASSERT_TRUE(held);
  ASSERT_TRUE(store.use("idle"));
  age(dir->path(), "busy", 3600);
  age(dir->path(), "idle", 3600);
  auto removed = store.remove_unused(std::chrono::seconds(0));
  ASSERT_TRUE(removed);
  ASSERT_EQ(removed->size(), 1u);
  EXPECT_EQ((*removed)[0].name, "idle");
  EXPECT_TRUE(fs::exists(held->data));
}

TEST(Volumes, InvalidNameIsAnError) {
  auto dir = TempDir::create(fs::temp_directory_path(), "ls-vol-");
  ASSERT_TRUE(dir);
  auto r = VolumeStore(dir->path()).use("../escape");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "invalid volume name '../escape': a name is at least two of [a-zA-Z0-9_.-], starting "
            "with a letter or digit");
}

}  // namespace
}  // namespace lockstep::cache
