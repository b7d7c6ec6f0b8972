#include "cache/blob_store.hpp"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "common/fs.hpp"

namespace lockstep::cache {
namespace {
namespace fs = std::filesystem;

size_t count_entries(const fs::path& dir) {
  size_t n = 0;
  std::error_code ec;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(dir, ec)) ++n;
  return n;
}

TEST(BlobStore, PutThenReadBack) {
  auto dir = TempDir::create(fs::temp_directory_path(), "ls-blob-");
  ASSERT_TRUE(dir);
  BlobStore s(dir->path());
  auto d = s.put("hello");
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(d->str(), "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
  EXPECT_TRUE(s.has(*d));
  EXPECT_EQ(*s.read(*d), "hello");
  EXPECT_EQ(*s.size(*d), 5u);
  EXPECT_EQ(count_entries(dir->path() / "tmp"), 0u);
}

TEST(BlobStore, DigestMismatchStoresNothing) {
  auto dir = TempDir::create(fs::temp_directory_path(), "ls-blob-");
  ASSERT_TRUE(dir);
  BlobStore s(dir->path());
  Digest want = sha256_of("expected bytes");
  auto w = s.writer(want);
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->write("tampered bytes"));
  auto r = w->commit();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "blob " + want.str() + ": digest mismatch: content is " +
                                     sha256_of("tampered bytes").str());
  EXPECT_EQ(r.error().kind(), ErrorKind::kIntegrity);
  EXPECT_FALSE(s.has(want));
  EXPECT_FALSE(s.has(sha256_of("tampered bytes")));
  EXPECT_EQ(count_entries(dir->path() / "blobs/sha256"), 0u);
  EXPECT_EQ(count_entries(dir->path() / "tmp"), 0u);
}

// The digest read before commit is the bytes' own, and the one commit
// stores them under; writing is over once it is read.
TEST(BlobStore, DigestBeforeCommit) {
  auto dir = TempDir::create(fs::temp_directory_path(), "ls-blob-");
  ASSERT_TRUE(dir);
  BlobStore s(dir->path());
  auto w = s.writer();
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->write("hel"));
  ASSERT_TRUE(w->write("lo"));
  Digest d = w->digest();
  EXPECT_EQ(d, sha256_of("hello"));
  EXPECT_EQ(w->digest(), d);
  EXPECT_FALSE(s.has(d));
  auto late = w->write("more");
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().message(), "write to a blob whose digest was taken");
  auto c = w->commit();
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(*c, d);
  EXPECT_EQ(*s.read(d), "hello");
  EXPECT_EQ(w->digest(), d);
  EXPECT_EQ(count_entries(dir->path() / "tmp"), 0u);
}

// A writer whose digest was read and found wrong, never committed, leaves
// nothing (a pinned download that does not match its pin).
TEST(BlobStore, DigestReadThenAbandonedLeavesNothing) {
  auto dir = TempDir::create(fs::temp_directory_path(), "ls-blob-");
  ASSERT_TRUE(dir);
  BlobStore s(dir->path());
  {
    auto w = s.writer();
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->write("tampered bytes"));
    EXPECT_EQ(w->digest(), sha256_of("tampered bytes"));
  }
  EXPECT_FALSE(s.has(sha256_of("tampered bytes")));
  EXPECT_EQ(count_entries(dir->path() / "blobs/sha256"), 0u);
  EXPECT_EQ(count_entries(dir->path() / "tmp"), 0u);
}

TEST(BlobStore, AbandonedWriterLeavesNothing) {
  auto dir = TempDir::create(fs::temp_directory_path(), "ls-blob-");
  ASSERT_TRUE(dir);
  BlobStore s(dir->path());
  {
    auto w = s.writer();
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->write(std::string(100000, 'x')));
  }
  EXPECT_EQ(count_entries(dir->path() / "blobs/sha256"), 0u);
  EXPECT_EQ(count_entries(dir->path() / "tmp"), 0u);
}

// Two processes write the same 8 MB blob at once, interleaving their writes;
// both commit successfully and exactly one intact blob results.
TEST(BlobStore, TwoProcessesWriteTheSameBlob) {
  auto dir = TempDir::create(fs::temp_directory_path(), "ls-blob-");
  ASSERT_TRUE(dir);
  std::string chunk(1 << 16, '\0');
  for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = static_cast<char>(i * 31 + 7);
  std::string all;
  for (int i = 0; i < 128; ++i) all += chunk;
  Digest want = sha256_of(all);
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  pid_t kids[2];
  for (pid_t& k : kids) {
    k = ::fork();
    ASSERT_GE(k, 0);
    if (k == 0) {
      char c;
      if (::read(go[0], &c, 1) != 1) ::_exit(3);
      BlobStore s(dir->path());
      auto w = s.writer(want);
      if (!w) ::_exit(4);
      for (int i = 0; i < 128; ++i)
        if (!w->write(chunk)) ::_exit(5);
      auto d = w->commit();
      ::_exit(d && *d == want ? 0 : 6);
    }
  }
  ASSERT_EQ(::write(go[1], "xx", 2), 2);
  ::close(go[0]);
  ::close(go[1]);
  for (pid_t k : kids) {
    int st = 0;
    ASSERT_EQ(::waitpid(k, &st, 0), k);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  }
  BlobStore s(dir->path());
  auto back = s.read(want);
  ASSERT_TRUE(back);
  EXPECT_EQ(sha256_of(*back), want);
  EXPECT_EQ(count_entries(dir->path() / "blobs/sha256"), 1u);
  EXPECT_EQ(count_entries(dir->path() / "tmp"), 0u);
}

// A blob stored again: the first copy stays (the same inode, the same
// bytes), the second leaves no temp file.
TEST(BlobStore, StoringAStoredBlobAgainKeepsTheFirst) {
  auto dir = TempDir::create(fs::temp_directory_path(), "ls-blob-");
  ASSERT_TRUE(dir);
  BlobStore s(dir->path());
  auto first = s.put("same bytes");
  ASSERT_TRUE(first) << first.error().message();
  struct stat before {};
  ASSERT_EQ(::stat(s.path(*first).c_str(), &before), 0);
  auto w = s.writer(*first);
  ASSERT_TRUE(w);
  ASSERT_TRUE(w->write("same bytes"));
  auto again = w->commit();
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(*again, *first);
  struct stat after {};
  ASSERT_EQ(::stat(s.path(*first).c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino);
  EXPECT_EQ(*s.read(*first), "same bytes");
  EXPECT_EQ(count_entries(dir->path() / "blobs/sha256"), 1u);
  EXPECT_EQ(count_entries(dir->path() / "tmp"), 0u);
  // A mismatch is still refused when the expected blob is stored.
  auto bad = s.writer(*first);
  ASSERT_TRUE(bad);
  ASSERT_TRUE(bad->write("other bytes"));
  auto refused = bad->commit();
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind(), ErrorKind::kIntegrity);
  EXPECT_EQ(count_entries(dir->path() / "tmp"), 0u);
}

TEST(BlobStore, MissingBlobIsNotFound) {
  auto dir = TempDir::create(fs::temp_directory_path(), "ls-blob-");
  ASSERT_TRUE(dir);
  BlobStore s(dir->path());
  Digest d = sha256_of("absent");
  auto r = s.read(d);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind(), ErrorKind::kNotFound);
  EXPECT_EQ(r.error().message(),
            "blob " + d.str() + " is not in the store at " + dir->path().string());
}

}  // namespace
}  // namespace lockstep::cache
