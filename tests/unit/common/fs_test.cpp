#include "common/fs.hpp"

#include <sys/stat.h>

#include <filesystem>

#include <gtest/gtest.h>

namespace lockstep {
namespace {
namespace fs = std::filesystem;

TEST(Fs, AtomicWriteReplacesWholeFileAndLeavesNoTemp) {
  auto dir = TempDir::create(fs::temp_directory_path(), "lockstep-fs-");
  ASSERT_TRUE(dir) << dir.error().message();
  fs::path f = dir->path() / "out.txt";
  ASSERT_TRUE(write_file_atomic(f, "first"));
  ASSERT_TRUE(write_file_atomic(f, "second"));
  EXPECT_EQ(*read_file(f), "second");
  int entries = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(dir->path())) ++entries;
  EXPECT_EQ(entries, 1);
}

TEST(Fs, TempDirRemovesReadOnlyTrees) {
  fs::path p;
  {
    auto dir = TempDir::create(fs::temp_directory_path(), "lockstep-fs-");
    ASSERT_TRUE(dir);
    p = dir->path();
    fs::create_directories(p / "a/b");
    ASSERT_TRUE(write_file_atomic(p / "a/b/f", "x"));
    fs::create_symlink("/etc/passwd", p / "a/link");
    ::chmod((p / "a/b").c_str(), 0500);
    ::chmod((p / "a").c_str(), 0500);
  }
  EXPECT_FALSE(fs::exists(p));
  EXPECT_TRUE(fs::exists("/etc/passwd"));
}

TEST(Fs, ReadMissingFileNamesIt) {
  auto r = read_file("/nonexistent/lockstep-file");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "open /nonexistent/lockstep-file: No such file or directory");
  EXPECT_EQ(r.error().errnum(), ENOENT);
}

}  // namespace
}  // namespace lockstep
