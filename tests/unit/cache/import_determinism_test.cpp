// The same rootfs gives the same image digest: twice, from a copy made in
// another order with other mtimes and owners, and against a pinned digest so
// that any drift of the output format fails here first.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cache/image_store.hpp"
#include "common/fs.hpp"

namespace lockstep::cache {
namespace {
namespace fs = std::filesystem;

void put(const fs::path& p, const std::string& s, mode_t mode) {
  fs::create_directories(p.parent_path());
  ASSERT_TRUE(write_file_atomic(p, s, static_cast<int>(mode)));
  ASSERT_EQ(::chmod(p.c_str(), mode), 0);
}

// Builds the fixed tree; `reverse` creates entries in the opposite order (so
// inode numbers and directory order differ), `stamp` sets odd mtimes/owners.
void build_tree(const fs::path& root, bool reverse, bool stamp) {
  std::vector<std::function<void()>> steps = {
      [&] { fs::create_directories(root / "bin"); },
      [&] { fs::create_directories(root / "etc/conf.d"); },
      [&] { put(root / "bin/tool", "#!/bin/sh\necho tool\n", 04755); },
      [&] { put(root / "etc/hostname", "lockstep\n", 0644); },
      [&] { put(root / "etc/conf.d/secret", "s3cr3t", 0600); },
      [&] {
        fs::create_directories(root / "tmp");
        ::chmod((root / "tmp").c_str(), 01777);
      },
      [&] { fs::create_directories(root / ("long/" + std::string(120, 'd'))); },
      [&] {
        put(root / ("long/" + std::string(120, 'd') + "/" + std::string(110, 'f')), "deep", 0644);
      },
  };
  if (reverse) std::reverse(steps.begin(), steps.end());
  for (auto& s : steps) s();
  fs::create_symlink("../bin/tool", root / "etc/tool-link");
  fs::create_hard_link(root / "bin/tool", root / "bin/tool-hard");
  ASSERT_EQ(::lsetxattr((root / "etc/hostname").c_str(), "user.lockstep", "v1", 2, 0), 0);
  if (stamp) {
    for (auto& e : fs::recursive_directory_iterator(root)) {
      timespec ts[2] = {{123456789, 42}, {987654321, 7}};
      ::utimensat(AT_FDCWD, e.path().c_str(), ts, AT_SYMLINK_NOFOLLOW);
      if (::geteuid() == 0) ::lchown(e.path().c_str(), 1234, 5678);
    }
  }
  // After chown (which clears setuid) and before nothing that moves mtimes.
  ::chmod((root / "bin/tool").c_str(), 04755);
  ::chmod((root / "tmp").c_str(), 01777);
  ::chmod((root / "bin").c_str(), 0755);
  ::chmod((root / "etc").c_str(), 0755);
  ::chmod((root / "etc/conf.d").c_str(), 0700);
  ::chmod((root / "long").c_str(), 0755);
  ::chmod((root / ("long/" + std::string(120, 'd'))).c_str(), 0755);
}

struct Fixture : ::testing::Test {
  void SetUp() override {
    auto d = TempDir::create(fs::temp_directory_path(), "ls-import-");
    ASSERT_TRUE(d);
    dir = std::move(*d);
  }
  TempDir dir;
};

TEST_F(Fixture, SameTreeSameDigestPinned) {
  build_tree(dir.path() / "a", false, false);
  build_tree(dir.path() / "b", true, true);
  ImageStore s1(dir.path() / "state1"), s2(dir.path() / "state2");
  auto d1 = s1.import_rootfs(dir.path() / "a", "test/one");
  ASSERT_TRUE(d1) << d1.error().message();
  auto d1again = s1.import_rootfs(dir.path() / "a", "test/one:again");
  ASSERT_TRUE(d1again);
  auto d2 = s2.import_rootfs(dir.path() / "b", "test/two");
  ASSERT_TRUE(d2) << d2.error().message();
  EXPECT_EQ(*d1, *d1again);
  EXPECT_EQ(*d1, *d2);
  // Pinned: changes only when the import format changes on purpose.
  EXPECT_EQ(d1->str(), "sha256:0a695e1eba93b116c001bcd2934ac02769a7fa2742302fdc42f256e1446d207d");
}

TEST_F(Fixture, LayerIsNormalisedTarAndGzipHasNoTimestamp) {
  build_tree(dir.path() / "a", false, true);
  ImageStore s(dir.path() / "state");
  auto d = s.import_rootfs(dir.path() / "a", "t");
  ASSERT_TRUE(d) << d.error().message();
  auto rec = s.resolve("t");
  ASSERT_TRUE(rec) << rec.error().message();
  ASSERT_EQ(rec->layers.size(), 1u);
  EXPECT_EQ(rec->manifest, *d);
  EXPECT_EQ(rec->manifest_media_type, "application/vnd.oci.image.manifest.v1+json");
  EXPECT_EQ(rec->config_json["architecture"], "amd64");
  EXPECT_EQ(rec->config_json["os"], "linux");
  EXPECT_FALSE(rec->config_json.contains("created"));
  EXPECT_EQ(rec->config_json["rootfs"]["diff_ids"][0], rec->layers[0].diff_id.str());
  auto blob = s.blobs().read(rec->layers[0].blob);
  ASSERT_TRUE(blob);
  ASSERT_GT(blob->size(), 10u);
  EXPECT_EQ(static_cast<unsigned char>((*blob)[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>((*blob)[1]), 0x8b);
  EXPECT_EQ((*blob)[3], 0) << "no FNAME/FCOMMENT/FEXTRA";
  EXPECT_EQ(blob->substr(4, 4), std::string(4, '\0')) << "gzip mtime must be 0";

  archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_all(a);
  ASSERT_EQ(archive_read_open_memory(a, blob->data(), blob->size()), ARCHIVE_OK);
  archive_entry* e;
  std::vector<std::string> names;
  bool hard = false;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    std::string n = archive_entry_pathname(e);
    names.push_back(n);
    EXPECT_EQ(archive_entry_uid(e), 0) << n;
    EXPECT_EQ(archive_entry_gid(e), 0) << n;
    EXPECT_EQ(archive_entry_mtime(e), 0) << n;
    EXPECT_EQ(archive_entry_mtime_nsec(e), 0) << n;
    EXPECT_FALSE(archive_entry_atime_is_set(e)) << n;
    EXPECT_FALSE(archive_entry_ctime_is_set(e)) << n;
    EXPECT_STREQ(archive_entry_uname(e) ? archive_entry_uname(e) : "", "") << n;
    EXPECT_STREQ(archive_entry_gname(e) ? archive_entry_gname(e) : "", "") << n;
    if (n == "bin/tool") {
      EXPECT_EQ(archive_entry_perm(e), 04755);
    }
    if (n == "tmp/") {
      EXPECT_EQ(archive_entry_perm(e), 01777);
    }
    if (n == "bin/tool-hard") {
      ASSERT_NE(archive_entry_hardlink(e), nullptr);
      EXPECT_STREQ(archive_entry_hardlink(e), "bin/tool");
      hard = true;
    }
    if (n == "etc/hostname") {
      archive_entry_xattr_reset(e);
      const char* xn;
      const void* xv;
      size_t xs;
      ASSERT_EQ(archive_entry_xattr_next(e, &xn, &xv, &xs), ARCHIVE_OK);
      EXPECT_STREQ(xn, "user.lockstep");
      EXPECT_EQ(std::string(static_cast<const char*>(xv), xs), "v1");
    }
    if (n == "etc/tool-link") {
      EXPECT_STREQ(archive_entry_symlink(e), "../bin/tool");
    }
  }
  archive_read_free(a);
  EXPECT_TRUE(hard);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_EQ(names.size(), 12u);
}

TEST_F(Fixture, ImportFromTarMatchesImportFromDir) {
  build_tree(dir.path() / "a", false, false);
  fs::path tar = dir.path() / "rootfs.tar";
  std::string cmd = "tar --xattrs --xattrs-include=user.* --format=pax -C " +
                    (dir.path() / "a").string() + " -cf " + tar.string() + " .";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  ImageStore s(dir.path() / "state");
  auto from_dir = s.import_rootfs(dir.path() / "a", "x:dir");
  auto from_tar = s.import_rootfs(tar, "x:tar");
  ASSERT_TRUE(from_dir) << from_dir.error().message();
  ASSERT_TRUE(from_tar) << from_tar.error().message();
  EXPECT_EQ(from_dir->str(), from_tar->str());
}

}  // namespace
}  // namespace lockstep::cache
