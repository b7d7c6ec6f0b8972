// Layers built here with libarchive (gzip, zstd, plain), stored as an image,
// unpacked through ImageStore::layer_dirs and checked file by file through a
// real read-only overlay mount of the unpacked layers.
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "cache/image_store.hpp"
#include "cache/layer_unpack.hpp"
#include "cache/oci_json.hpp"
#include "common/fs.hpp"
#include "tests/integration/cache/overlay_mount.hpp"
#include "tests/integration/cache/stored_image.hpp"
#include "tests/integration/cache/tar_builder.hpp"

namespace lockstep::cache {
namespace {
namespace fs = std::filesystem;
using namespace lockstep::cache::testing;

// security.capability v2 granting cap_net_bind_service (bit 10), effective.
std::string cap_xattr() {
  uint32_t v[5] = {0x02000001, 1u << 10, 0, 0, 0};
  return std::string(reinterpret_cast<const char*>(v), sizeof v);
}

struct Unpack : ::testing::Test {
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (ownership, device nodes, whiteouts)";
    auto d = TempDir::create(fs::temp_directory_path(), "ls-unpack-");
    ASSERT_TRUE(d);
    dir = std::move(*d);
  }
  TempDir dir;
};

std::vector<TarEntry> lower_layer() {
  TarEntry owned = file("a/owned", "by 1000\n", 0640);
  owned.uid = 1000;
  owned.gid = 2000;
  owned.mtime = 1234567890;
  TarEntry capped = file("bin/ping", "ELF?", 0755);
  capped.xattrs = {{"security.capability", cap_xattr()}, {"user.note", "kept"}};
  TarEntry null;
  null.path = "dev/null";
  null.type = S_IFCHR;
  null.mode = 0666;
  null.rdev_major = 1;
  null.rdev_minor = 3;
  TarEntry suid = file("bin/su", "su", 04755);
  return {directory("a/"),
          file("a/keep", "keep\n"),
          file("a/gone", "gone\n"),
          owned,
          directory("b/"),
          file("b/x", "x"),
          file("b/y", "y"),
          directory("bin/"),
          capped,
          suid,
          directory("dev/"),
          null,
          symlink("link", "a/keep"),
          hardlink("a/keep-hard", "a/keep"),
          directory("sealed/", 0700)};
}

std::vector<TarEntry> middle_layer() {
  return {directory("a/"),
          file("a/.wh.gone", ""),
          directory("b/"),
          file("b/.wh..wh..opq", ""),
          file("b/z", "z"),
          directory("d/"),
          file("d/new", "new\n", 0600)};
}

std::vector<TarEntry> top_layer() {
  return {file("a/keep", "changed on top\n"), file("top", std::string(300000, 't'))};
}

TEST_F(Unpack, MultiLayerImageThroughOverlay) {
  ImageStore s(dir.path() / "state");
  Built b =
      store_image(s,
                  {{build_tar(lower_layer(), Filter::kGzip), std::string(oci::kOciLayerGzip)},
                   {build_tar(middle_layer(), Filter::kZstd), std::string(oci::kOciLayerZstd)},
                   {build_tar(top_layer(), Filter::kNone), std::string(oci::kOciLayerTar)}},
                  "multi");
  auto rec = s.resolve("multi");
  ASSERT_TRUE(rec) << rec.error().message();
  auto dirs = s.layer_dirs(*rec);
  ASSERT_TRUE(dirs) << dirs.error().message();
  ASSERT_EQ(dirs->size(), 3u);
  for (size_t i = 0; i < 3; ++i)
    EXPECT_EQ((*dirs)[i], dir.path() / "state/layers" / b.diff_ids[i].hex());

  // What overlayfs needs, on disk in the middle layer.
  struct stat st {};
  ASSERT_EQ(::lstat(((*dirs)[1] / "a/gone").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  char v[8] = {};
  ASSERT_EQ(::getxattr(((*dirs)[1] / "b").c_str(), "trusted.overlay.opaque", v, sizeof v), 1);
  EXPECT_EQ(v[0], 'y');
  EXPECT_FALSE(fs::exists((*dirs)[1] / "b/.wh..wh..opq"));

  ASSERT_TRUE(OverlayMount::enter_private_ns());
  fs::create_directories(dir.path() / "merged");
  OverlayMount m(dir.path() / "merged", *dirs);
  ASSERT_TRUE(m.ok()) << "mount overlay: " << std::strerror(m.err());
  fs::path r = dir.path() / "merged";
  EXPECT_EQ(*read_file(r / "a/keep"), "changed on top\n");
  EXPECT_FALSE(fs::exists(fs::symlink_status(r / "a/gone")));
  EXPECT_FALSE(fs::exists(r / "b/x"));
  EXPECT_FALSE(fs::exists(r / "b/y"));
  EXPECT_EQ(*read_file(r / "b/z"), "z");
  EXPECT_EQ(*read_file(r / "d/new"), "new\n");
  EXPECT_EQ(fs::read_symlink(r / "link"), "a/keep");
  EXPECT_EQ(*read_file(r / "top"), std::string(300000, 't'));

  ASSERT_EQ(::lstat((r / "a/owned").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_gid, 2000u);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1234567890);
  ASSERT_EQ(::lstat((r / "bin/su").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 04755u);
  ASSERT_EQ(::lstat((r / "sealed").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1700000000) << "directory mtimes are set after their children";
  ASSERT_EQ(::lstat((r / "dev/null").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(1, 3));

  struct stat k1 {
  }, k2{};
  ASSERT_EQ(::lstat(((*dirs)[0] / "a/keep").c_str(), &k1), 0);
  ASSERT_EQ(::lstat(((*dirs)[0] / "a/keep-hard").c_str(), &k2), 0);
  EXPECT_EQ(k1.st_ino, k2.st_ino);
  EXPECT_EQ(k1.st_nlink, 2u);

  std::string cap(64, '\0');
  ssize_t n = ::getxattr((r / "bin/ping").c_str(), "security.capability", cap.data(), cap.size());
  ASSERT_GT(n, 0);
  cap.resize(static_cast<size_t>(n));
  EXPECT_EQ(cap, cap_xattr());
  char note[8] = {};
  EXPECT_EQ(::getxattr((r / "bin/ping").c_str(), "user.note", note, sizeof note), 4);
  EXPECT_STREQ(note, "kept");
}

TEST_F(Unpack, WarmPathReusesLayers) {
  ImageStore s(dir.path() / "state");
  store_image(s,
              {{build_tar(lower_layer(), Filter::kGzip), std::string(oci::kOciLayerGzip)},
               {build_tar(top_layer(), Filter::kNone), std::string(oci::kOciLayerTar)}},
              "warm");
  auto rec = s.resolve("warm");
  ASSERT_TRUE(rec);
  auto first = s.layer_dirs(*rec);
  ASSERT_TRUE(first) << first.error().message();
  struct stat before {};
  ASSERT_EQ(::stat((*first)[1].c_str(), &before), 0);
  auto second = s.layer_dirs(*rec);
  ASSERT_TRUE(second);
  EXPECT_EQ(*first, *second);
  struct stat after {};
  ASSERT_EQ(::stat((*second)[1].c_str(), &after), 0);
  EXPECT_EQ(before.st_ino, after.st_ino) << "a prepared layer is not unpacked again";
}

TEST_F(Unpack, DiffIdMismatchKeepsNothing) {
  ImageStore s(dir.path() / "state");
  BuiltTar t = build_tar(top_layer(), Filter::kGzip);
  Digest blob = *s.blobs().put(t.blob);
  Digest wrong = sha256_of("not the layer");
  auto r = ensure_layer_from_blob(s.state_dir(), s.blobs(), blob, wrong);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "layer " + blob.str() +
                                     ": diff id mismatch: the image config says " + wrong.str() +
                                     ", the content is " + sha256_of(t.tar).str());
  EXPECT_FALSE(fs::exists(dir.path() / "state/layers" / wrong.hex()));
  EXPECT_FALSE(fs::exists(dir.path() / "state/layers" / sha256_of(t.tar).hex()));
  EXPECT_TRUE(fs::is_empty(dir.path() / "state/tmp"));
}

TEST_F(Unpack, CorruptStreamIsAnErrorAndKeepsNothing) {
  ImageStore s(dir.path() / "state");
  BuiltTar t = build_tar(top_layer(), Filter::kGzip);
  std::string cut = t.blob.substr(0, t.blob.size() / 2);
  Digest blob = *s.blobs().put(cut);
  auto r = ensure_layer_from_blob(s.state_dir(), s.blobs(), blob, sha256_of(t.tar));
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().message().starts_with("layer " + blob.str() + ": ")) << r.error().message();
  EXPECT_FALSE(fs::exists(dir.path() / "state/layers" / sha256_of(t.tar).hex()));
  EXPECT_TRUE(fs::is_empty(dir.path() / "state/tmp"));
}

// The pull path: the compressed stream is stored and unpacked in one pass.
TEST_F(Unpack, TeeStoresBlobAndUnpacksOnce) {
  ImageStore s(dir.path() / "state");
  BuiltTar t = build_tar(lower_layer(), Filter::kZstd);
  for (int round = 0; round < 2; ++round) {  // second round: layer exists already
    size_t off = 0;
    StreamReader net = [&](void* buf, size_t len) -> Result<size_t> {
      size_t n = std::min<size_t>({len, t.blob.size() - off, 777});  // odd chunk sizes
      std::memcpy(buf, t.blob.data() + off, n);
      off += n;
      return n;
    };
    auto w = s.blobs().writer(sha256_of(t.blob));
    ASSERT_TRUE(w);
    auto d = ensure_layer_tee(s.state_dir(), sha256_of(t.tar), "layer tee", net, *w);
    ASSERT_TRUE(d) << d.error().message();
    EXPECT_EQ(*read_file(*d / "a/keep"), "keep\n");
    auto committed = w->commit();
    ASSERT_TRUE(committed) << committed.error().message();
    EXPECT_EQ(*s.blobs().read(*committed), t.blob);
  }
}

// Two processes prepare the same layer at once: both succeed, one unpacks.
TEST_F(Unpack, ConcurrentUnpackOfOneLayer) {
  ImageStore s(dir.path() / "state");
  std::vector<TarEntry> big;
  for (int i = 0; i < 200; ++i)
    big.push_back(file("f" + std::to_string(i), std::string(20000, 'a' + i % 26)));
  BuiltTar t = build_tar(big, Filter::kGzip);
  Digest blob = *s.blobs().put(t.blob);
  Digest diff = sha256_of(t.tar);
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  pid_t kids[2];
  for (pid_t& k : kids) {
    k = ::fork();
    ASSERT_GE(k, 0);
    if (k == 0) {
      char c;
      if (::read(go[0], &c, 1) != 1) ::_exit(3);
      ImageStore mine(dir.path() / "state");
      auto r = ensure_layer_from_blob(mine.state_dir(), mine.blobs(), blob, diff);
      ::_exit(r && fs::exists(*r / "f199") ? 0 : 4);
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
  size_t layer_dirs = 0;
  for (auto& e : fs::directory_iterator(dir.path() / "state/layers"))
    if (!e.path().filename().string().starts_with(".")) ++layer_dirs;
  EXPECT_EQ(layer_dirs, 1u);
  EXPECT_TRUE(fs::is_empty(dir.path() / "state/tmp"));
}

}  // namespace
}  // namespace lockstep::cache
