// Hostile layers: whatever they contain, nothing outside the layer directory
// is created or changed. Each case either fails with an error or unpacks
// harmlessly inside the layer.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "cache/layer_unpack.hpp"
#include "common/fs.hpp"
#include "tests/integration/cache/tar_builder.hpp"

namespace lockstep::cache {
namespace {
namespace fs = std::filesystem;
using namespace lockstep::cache::testing;

// Everything under `root` except `skip`: path -> type/size/content/mtime.
std::map<std::string, std::string> snapshot(const fs::path& root, const fs::path& skip) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    if (it->path() == skip) {
      it.disable_recursion_pending();
      continue;
    }
    struct stat st {};
    ::lstat(it->path().c_str(), &st);
    std::string v = std::to_string(st.st_mode) + ":" + std::to_string(st.st_size) + ":" +
                    std::to_string(st.st_mtim.tv_sec) + ":" + std::to_string(st.st_mtim.tv_nsec);
    if (S_ISREG(st.st_mode)) v += ":" + read_file(it->path()).value_or("?");
    out[it->path().string()] = v;
  }
  return out;
}

struct Malicious : ::testing::Test {
  void SetUp() override {
    auto d = TempDir::create(fs::temp_directory_path(), "ls-evil-");
    ASSERT_TRUE(d);
    dir = std::move(*d);
    victim = dir.path() / "victim";
    layer = dir.path() / "layer";
    fs::create_directories(victim / "sub");
    ASSERT_TRUE(write_file_atomic(victim / "target", "original"));
    fs::create_directories(layer);
  }

  // Unpacks `entries` into the layer dir (over `lower` layer dirs, lowest
  // first) and checks nothing outside changed, the lower layers included;
  // returns the unpack error (empty when it succeeded).
  std::string unpack(const std::vector<TarEntry>& entries,
                     const std::vector<fs::path>& lower = {}) {
    auto before = snapshot(dir.path(), layer);
    BuiltTar t = build_tar(entries, Filter::kNone);
    int p[2];
    EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
    EXPECT_EQ(::write(p[1], t.tar.data(), t.tar.size()), static_cast<ssize_t>(t.tar.size()));
    ::close(p[1]);
    UnpackOptions o;
    o.name = "layer evil";
    o.lower_layers = lower;
    auto r = unpack_tar_fd(p[0], layer, o);
    ::close(p[0]);
    auto after = snapshot(dir.path(), layer);
    EXPECT_EQ(before, after) << "something outside the layer dir changed";
    EXPECT_EQ(*read_file(victim / "target"), "original");
    return r ? "" : r.error().message();
  }

  TempDir dir;
  fs::path victim, layer;
};

TEST_F(Malicious, DotDotPathIsRefused) {
  EXPECT_EQ(unpack({file("../victim/pwned", "x")}),
            "layer evil: entry '../victim/pwned' escapes the layer directory ('..')");
  EXPECT_EQ(unpack({file("a/../../victim/target", "x")}),
            "layer evil: entry 'a/../../victim/target' escapes the layer directory ('..')");
  EXPECT_FALSE(fs::exists(dir.path() / "victim/pwned"));
}

TEST_F(Malicious, AbsolutePathStaysInside) {
  std::string abs = (victim / "target").string();
  EXPECT_EQ(unpack({file(abs, "pwned")}), "");
  EXPECT_EQ(*read_file(layer / abs.substr(1)), "pwned");
}

TEST_F(Malicious, SymlinkThenWriteThroughIt) {
  // Relative and absolute escapes; a file written "through" them lands inside
  // the layer (RESOLVE_IN_ROOT) or fails, never in the victim.
  unpack({symlink("esc", "../victim"), file("esc/target", "pwned")});
  unpack({symlink("esc2", victim.string()), file("esc2/target", "pwned")});
  unpack({symlink("esc3", "/"), directory("esc3/victim/"),
          file("esc3" + victim.string() + "/target", "p")});
  unpack({symlink("esc4", "../../../../../../../../.."),
          file("esc4" + victim.string() + "/new", "p")});
  EXPECT_FALSE(fs::exists(victim / "new"));
}

TEST_F(Malicious, SymlinkReplacedByFileIsNotFollowed) {
  EXPECT_EQ(unpack({symlink("t", (victim / "target").string()), file("t", "pwned")}), "");
  EXPECT_EQ(*read_file(layer / "t"), "pwned");
  EXPECT_FALSE(fs::is_symlink(layer / "t"));
  // A symlink to outside followed by a hardlink and a device node of that name.
  EXPECT_EQ(
      unpack({symlink("u", (victim / "target").string()), file("v", "v"), hardlink("u", "v")}), "");
  EXPECT_EQ(*read_file(layer / "u"), "v");
}

TEST_F(Malicious, HardlinkEscapeFails) {
  EXPECT_EQ(unpack({hardlink("h", "../victim/target")}),
            "layer evil: entry '../victim/target' escapes the layer directory ('..')");
  std::string err = unpack({hardlink("h2", (victim / "target").string()), file("h2", "pwned")});
  EXPECT_TRUE(err.starts_with("layer evil: hardlink 'h2' to '")) << err;
  // A hardlink to an in-layer symlink that points out: links the symlink.
  EXPECT_EQ(unpack({symlink("s", (victim / "target").string()), hardlink("h3", "s")}), "");
  EXPECT_TRUE(fs::is_symlink(layer / "h3"));
}

// A layer below (unpacked beside the layer dir, inside the snapshot, so it
// must not change either) holding `entries`.
fs::path lower_layer(const fs::path& dir, const std::string& name,
                     const std::vector<TarEntry>& entries) {
  fs::path d = dir / name;
  fs::create_directories(d);
  BuiltTar t = build_tar(entries, Filter::kNone);
  int p[2];
  EXPECT_EQ(::pipe2(p, O_CLOEXEC), 0);
  EXPECT_EQ(::write(p[1], t.tar.data(), t.tar.size()), static_cast<ssize_t>(t.tar.size()));
  ::close(p[1]);
  auto r = unpack_tar_fd(p[0], d, UnpackOptions{});
  ::close(p[0]);
  EXPECT_TRUE(r) << r.error().message();
  return d;
}

TEST_F(Malicious, HardlinkToALowerLayerThroughASymlinkIsRefused) {
  fs::path low = lower_layer(dir.path(), "lower",
                             {symlink("abs", victim.string()), symlink("rel", "../victim"),
                              symlink("root", "/"), directory("d/"), file("d/f", "f")});
  EXPECT_EQ(unpack({hardlink("h", "abs/target")}, {low}),
            "layer evil: hardlink 'h' to 'abs/target': 'abs' is a symlink; a hard link's target "
            "is not looked up through symlinks in the layers below");
  EXPECT_EQ(unpack({hardlink("h", "rel/target")}, {low}),
            "layer evil: hardlink 'h' to 'rel/target': 'rel' is a symlink; a hard link's target "
            "is not looked up through symlinks in the layers below");
  std::string through_root = "root" + victim.string() + "/target";
  EXPECT_EQ(unpack({hardlink("h", through_root)}, {low}),
            "layer evil: hardlink 'h' to '" + through_root +
                "': 'root' is a symlink; a hard link's target is not looked up through symlinks "
                "in the layers below");
  // A symlink in this layer over a directory of the layer below.
  EXPECT_EQ(unpack({symlink("d", victim.string()), hardlink("h", "d/f")}, {low}),
            "layer evil: hardlink 'h' to 'd/f': 'd' is a symlink; a hard link's target is not "
            "looked up through symlinks in the layers below");
  EXPECT_FALSE(fs::exists(fs::symlink_status(layer / "h")));
}

TEST_F(Malicious, HardlinkToAPathOutsideEveryLayerIsRefused) {
  fs::path low = lower_layer(dir.path(), "lower", {file("inside", "i")});
  std::string abs = (victim / "target").string();
  EXPECT_EQ(unpack({hardlink("h", abs)}, {low}),
            "layer evil: hardlink 'h' to '" + abs.substr(1) +
                "': no such file in this layer or the layers below");
  EXPECT_EQ(unpack({hardlink("h", "../victim/target")}, {low}),
            "layer evil: entry '../victim/target' escapes the layer directory ('..')");
  EXPECT_EQ(unpack({hardlink("h", "inside/../../victim/target")}, {low}),
            "layer evil: entry 'inside/../../victim/target' escapes the layer directory ('..')");
}

TEST_F(Malicious, HardlinkToALowerSymlinkCopiesTheLinkNotItsTarget) {
  fs::path low = lower_layer(dir.path(), "lower", {symlink("s", (victim / "target").string())});
  EXPECT_EQ(unpack({hardlink("h", "s")}, {low}), "");
  EXPECT_TRUE(fs::is_symlink(layer / "h"));
  EXPECT_EQ(fs::read_symlink(layer / "h"), victim / "target");
  EXPECT_TRUE(fs::is_symlink(layer / "s"));
}

TEST_F(Malicious, WhiteoutOfDotDot) {
  EXPECT_EQ(unpack({directory("a/"), file("a/.wh..", "")}),
            "layer evil: whiteout 'a/.wh..' names no file in its directory");
  EXPECT_EQ(unpack({file(".wh..", "")}),
            "layer evil: whiteout '.wh..' names no file in its directory");
  // A whiteout through a symlink to outside lands inside.
  unpack({symlink("w", victim.string()), file("w/.wh.target", "")});
  EXPECT_TRUE(fs::exists(victim / "target"));
}

TEST_F(Malicious, SymlinkDirectoryReplacement) {
  // A directory, then a symlink of the same name to outside, then files
  // under it: the symlink is resolved inside the layer.
  unpack({directory("d/"), file("d/a", "a"), symlink("d", victim.string()),
          file("d/target", "pwned"), file("d/sub/x", "pwned")});
  EXPECT_FALSE(fs::exists(victim / "sub/x"));
  unpack({directory("e/"), symlink("e", "../victim"), directory("e/sub/", 0777)});
  struct stat st {};
  ASSERT_EQ(::stat((victim / "sub").c_str(), &st), 0);
  EXPECT_NE(st.st_mode & 0777, 0777u);
}

TEST_F(Malicious, OverlayXattrsFromTheArchiveAreDropped) {
  TarEntry d = directory("o/");
  d.xattrs = {{"trusted.overlay.redirect", "/etc"}, {"user.ok", "1"}};
  EXPECT_EQ(unpack({d}), "");
  char buf[16];
  EXPECT_LT(::getxattr((layer / "o").c_str(), "trusted.overlay.redirect", buf, sizeof buf), 0);
  EXPECT_EQ(::getxattr((layer / "o").c_str(), "user.ok", buf, sizeof buf), 1);
}

}  // namespace
}  // namespace lockstep::cache
