// Layers that hard-link files of the layers below them: unpacked against
// their parent chain (the target copied up, then linked), stored by ChainID,
// checked on disk and through a real overlay mount; layers that stand alone
// keep their diff-id key; whiteouts in the same layer and below; gc; export
// and import.
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "cache/export_oci.hpp"
#include "cache/gc.hpp"
#include "cache/image_store.hpp"
#include "cache/import_archive.hpp"
#include "cache/layer_unpack.hpp"
#include "common/fs.hpp"
#include "tests/integration/cache/overlay_mount.hpp"
#include "tests/integration/cache/stored_image.hpp"
#include "tests/integration/cache/tar_builder.hpp"

namespace lockstep::cache {
namespace {
namespace fs = std::filesystem;
using namespace lockstep::cache::testing;

struct LayerChain : ::testing::Test {
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (ownership, whiteouts, overlay)";
    auto d = TempDir::create(fs::temp_directory_path(), "ls-chain-");
    ASSERT_TRUE(d);
    dir = std::move(*d);
    store.emplace(dir.path() / "state");
  }
  fs::path layers() const { return dir.path() / "state/layers"; }
  // The directory names under layers/ (no lock files).
  std::vector<std::string> layer_names() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(layers()))
      if (!e.path().filename().string().starts_with(".")) out.push_back(e.path().filename());
    std::sort(out.begin(), out.end());
    return out;
  }
  Result<std::vector<fs::path>> unpack(const std::string& tag) {
    auto rec = store->resolve(tag);
    if (!rec) return fail(rec.error());
    return store->layer_dirs(*rec);
  }
  TempDir dir;
  std::optional<ImageStore> store;
};

struct stat lstat_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st;
}

std::string xattr_of(const fs::path& p, const char* name) {
  char buf[256] = {};
  ssize_t n = ::lgetxattr(p.c_str(), name, buf, sizeof buf);
  return n < 0 ? "<none>" : std::string(buf, static_cast<size_t>(n));
}

// The OCI image-spec formula, spelled out here rather than taken from the code.
Digest chain_of(const Digest& below, const Digest& diff) {
  return sha256_of(below.str() + " " + diff.str());
}

std::vector<TarEntry> base_layer() {
  TarEntry etc = directory("etc/", 0751);
  etc.mtime = 1600000000;
  etc.uid = 7;
  TarEntry a = file("etc/a", "alpha\n", 0640);
  a.uid = 1000;
  a.gid = 2000;
  a.mtime = 1234567890;
  a.xattrs = {{"user.note", "kept"}, {"trusted.overlay.redirect", "/x"}};
  return {etc, a, file("etc/other", "other\n")};
}

TEST_F(LayerChain, LinkToALowerFileIsCopiedUpKeyedByChainAndSharesTheInode) {
  Built b = store_plain_image(*store, {base_layer(), {hardlink("etc/hl", "etc/a")}}, "hl");
  auto dirs = unpack("hl");
  ASSERT_TRUE(dirs) << dirs.error().message();
  ASSERT_EQ(dirs->size(), 2u);
  Digest chain = chain_of(b.diff_ids[0], b.diff_ids[1]);
  EXPECT_EQ((*dirs)[0], layers() / b.diff_ids[0].hex()) << "the base layer stands alone";
  EXPECT_EQ((*dirs)[1], layers() / ("chain-" + chain.hex()));
  EXPECT_FALSE(fs::exists(layers() / b.diff_ids[1].hex()));
  auto rec = store->resolve("hl");
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec->layers[0].chain_id, b.diff_ids[0]);
  EXPECT_EQ(rec->layers[1].chain_id, chain);

  // On disk: the target copied with its metadata, the link beside it.
  fs::path top = (*dirs)[1];
  struct stat a = lstat_of(top / "etc/a"), hl = lstat_of(top / "etc/hl");
  EXPECT_EQ(a.st_ino, hl.st_ino);
  EXPECT_EQ(a.st_nlink, 2u);
  EXPECT_EQ(*read_file(top / "etc/hl"), "alpha\n");
  EXPECT_EQ(a.st_uid, 1000u);
  EXPECT_EQ(a.st_gid, 2000u);
  EXPECT_EQ(a.st_mode & 07777, 0640u);
  EXPECT_EQ(a.st_mtim.tv_sec, 1234567890);
  EXPECT_EQ(xattr_of(top / "etc/a", "user.note"), "kept");
  EXPECT_EQ(xattr_of(top / "etc/a", "trusted.overlay.redirect"), "<none>");
  struct stat etc = lstat_of(top / "etc");
  EXPECT_EQ(etc.st_mode & 07777, 0751u) << "the directory keeps the metadata it has below";
  EXPECT_EQ(etc.st_uid, 7u);
  EXPECT_EQ(etc.st_mtim.tv_sec, 1600000000);
  EXPECT_FALSE(fs::exists(top / "etc/other")) << "only the target is copied up";
  EXPECT_EQ(lstat_of((*dirs)[0] / "etc/a").st_nlink, 1u) << "the layer below is not changed";

  // As a container sees it.
  ASSERT_TRUE(OverlayMount::enter_private_ns());
  fs::path merged = dir.path() / "merged";
  fs::create_directories(merged);
  OverlayMount m(merged, *dirs);
  ASSERT_TRUE(m.ok()) << "mount overlay: " << std::strerror(m.err());
  EXPECT_EQ(lstat_of(merged / "etc/a").st_ino, lstat_of(merged / "etc/hl").st_ino);
  EXPECT_EQ(*read_file(merged / "etc/hl"), "alpha\n");
  EXPECT_EQ(*read_file(merged / "etc/other"), "other\n");
  EXPECT_EQ(lstat_of(merged / "etc").st_mode & 07777, 0751u);
}

TEST_F(LayerChain, LayersThatStandAloneKeepTheirDiffIdAndAreShared) {
  std::vector<TarEntry> own = {file("x", "x"), hardlink("y", "x")};
  Built one = store_plain_image(*store, {{file("base", "1")}, own}, "one");
  Built two = store_plain_image(*store, {{file("base", "2")}, own}, "two");
  ASSERT_EQ(one.diff_ids[1], two.diff_ids[1]);
  auto d1 = unpack("one");
  auto d2 = unpack("two");
  ASSERT_TRUE(d1) << d1.error().message();
  ASSERT_TRUE(d2) << d2.error().message();
  EXPECT_EQ((*d1)[1], layers() / one.diff_ids[1].hex());
  EXPECT_EQ((*d1)[1], (*d2)[1]);
  EXPECT_EQ(layer_names().size(), 3u);  // two bases, one shared top
  for (const auto& n : layer_names()) EXPECT_FALSE(n.starts_with("chain-")) << n;
}

TEST_F(LayerChain, OneLayerOnTwoParentsIsTwoChains) {
  std::vector<TarEntry> link = {hardlink("etc/hl", "etc/a")};
  Built one = store_plain_image(*store, {{file("etc/a", "one\n")}, link}, "one");
  Built two = store_plain_image(*store, {{file("etc/a", "two\n")}, link}, "two");
  auto d1 = unpack("one");
  auto d2 = unpack("two");
  ASSERT_TRUE(d1) << d1.error().message();
  ASSERT_TRUE(d2) << d2.error().message();
  EXPECT_NE((*d1)[1], (*d2)[1]);
  EXPECT_EQ((*d1)[1].filename(), "chain-" + chain_of(one.diff_ids[0], one.diff_ids[1]).hex());
  EXPECT_EQ((*d2)[1].filename(), "chain-" + chain_of(two.diff_ids[0], two.diff_ids[1]).hex());
  EXPECT_EQ(*read_file((*d1)[1] / "etc/hl"), "one\n");
  EXPECT_EQ(*read_file((*d2)[1] / "etc/hl"), "two\n");
  // Prepared once: the second time is the same directory, not unpacked again.
  ino_t before = lstat_of((*d1)[1]).st_ino;
  auto again = unpack("one");
  ASSERT_TRUE(again);
  EXPECT_EQ((*again)[1], (*d1)[1]);
  EXPECT_EQ(lstat_of((*again)[1]).st_ino, before);
}

TEST_F(LayerChain, LinksToLinksSymlinksAndRepeatedTargets) {
  std::vector<TarEntry> lower = {directory("etc/"), file("etc/a", "a\n"), symlink("etc/s", "a"),
                                 hardlink("etc/a2", "etc/a")};
  std::vector<TarEntry> top = {hardlink("hl1", "etc/a"), hardlink("hl2", "hl1"),
                               hardlink("hl3", "etc/a"), hardlink("sl", "etc/s"),
                               hardlink("b2", "etc/a2")};
  store_plain_image(*store, {lower, top}, "links");
  auto dirs = unpack("links");
  ASSERT_TRUE(dirs) << dirs.error().message();
  fs::path t = (*dirs)[1];
  EXPECT_TRUE(t.filename().string().starts_with("chain-"));
  ino_t a = lstat_of(t / "etc/a").st_ino;
  for (const char* n : {"hl1", "hl2", "hl3"}) EXPECT_EQ(lstat_of(t / n).st_ino, a) << n;
  EXPECT_EQ(lstat_of(t / "etc/a").st_nlink, 4u);
  struct stat sl = lstat_of(t / "sl");
  EXPECT_TRUE(S_ISLNK(sl.st_mode)) << "a link to a symlink links the symlink itself";
  EXPECT_EQ(sl.st_ino, lstat_of(t / "etc/s").st_ino);
  EXPECT_EQ(fs::read_symlink(t / "sl"), "a");
  EXPECT_EQ(lstat_of(t / "b2").st_ino, lstat_of(t / "etc/a2").st_ino);
  EXPECT_EQ(*read_file(t / "b2"), "a\n");
}

TEST_F(LayerChain, TargetFromADeeperLayerTakesDirectoryMetadataFromTheTopmost) {
  TarEntry d_low = directory("d/", 0755);
  TarEntry d_mid = directory("d/", 0710);
  d_mid.mtime = 1500000000;
  store_plain_image(*store,
                    {{d_low, directory("d/e/", 0750), file("d/e/f", "f\n")},
                     {d_mid, file("d/g", "g\n")},
                     {hardlink("hl", "d/e/f")}},
                    "deep");
  auto dirs = unpack("deep");
  ASSERT_TRUE(dirs) << dirs.error().message();
  fs::path t = (*dirs)[2];
  EXPECT_EQ(lstat_of(t / "d").st_mode & 07777, 0710u);
  EXPECT_EQ(lstat_of(t / "d").st_mtim.tv_sec, 1500000000);
  EXPECT_EQ(lstat_of(t / "d/e").st_mode & 07777, 0750u);
  EXPECT_EQ(lstat_of(t / "hl").st_ino, lstat_of(t / "d/e/f").st_ino);
  EXPECT_FALSE(fs::exists(t / "d/g"));
}

// Each failing image: the error names the layer and the reason, and nothing
// of the failed layer is kept.
struct Refusal {
  std::vector<std::vector<TarEntry>> layers;
  std::string reason;
};

TEST_F(LayerChain, WhiteoutsAndMissingTargetsAreRefused) {
  std::vector<TarEntry> base = {directory("etc/"), file("etc/a", "a\n")};
  std::vector<Refusal> cases = {
      {{base, {file("etc/.wh.a", ""), hardlink("etc/hl", "etc/a")}},
       "hardlink 'etc/hl' to 'etc/a': the target was removed by a whiteout earlier in this layer"},
      {{base, {file(".wh.etc", ""), hardlink("hl", "etc/a")}},
       "hardlink 'hl' to 'etc/a': 'etc' was removed by a whiteout in this layer"},
      {{base, {file("etc/.wh..wh..opq", ""), hardlink("etc/hl", "etc/a")}},
       "hardlink 'etc/hl' to 'etc/a': no such file in this layer or the layers below"},
      {{base, {file("etc/.wh.a", "")}, {hardlink("etc/hl", "etc/a")}},
       "hardlink 'etc/hl' to 'etc/a': 'etc/a' was removed by a layer below"},
      {{base, {hardlink("hl", "etc/nope")}},
       "hardlink 'hl' to 'etc/nope': no such file in this layer or the layers below"},
      {{base, {hardlink("hl", "etc")}}, "hardlink 'hl' to 'etc': the target is a directory"},
      {{{hardlink("hl", "etc/a")}}, "hardlink 'hl' to 'etc/a': no such file in this layer"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    std::string tag = "bad" + std::to_string(i);
    Built b = store_plain_image(*store, cases[i].layers, tag);
    auto dirs = unpack(tag);
    ASSERT_FALSE(dirs) << tag;
    auto rec = store->resolve(tag);
    ASSERT_TRUE(rec);
    const LayerRef& bad = rec->layers.back();
    EXPECT_EQ(dirs.error().message(), "layer " + bad.blob.str() + ": " + cases[i].reason) << tag;
    EXPECT_FALSE(unpacked_layer_dir(store->state_dir(), bad.diff_id, bad.chain_id)) << tag;
    EXPECT_TRUE(fs::is_empty(dir.path() / "state/tmp")) << tag;
  }
}

TEST_F(LayerChain, TargetRemovedAndAddedAgainInTheLayerStandsAlone) {
  Built b = store_plain_image(
      *store, {{file("a", "old\n")}, {file(".wh.a", ""), file("a", "new\n"), hardlink("hl", "a")}},
      "re");
  auto dirs = unpack("re");
  ASSERT_TRUE(dirs) << dirs.error().message();
  EXPECT_EQ((*dirs)[1], layers() / b.diff_ids[1].hex());
  EXPECT_EQ(*read_file((*dirs)[1] / "hl"), "new\n");
}

TEST_F(LayerChain, WithoutParentsTheLinkIsAnError) {
  BuiltTar t = build_tar({hardlink("etc/hl", "etc/a")}, Filter::kGzip);
  Digest blob = *store->blobs().put(t.blob);
  auto r = ensure_layer_from_blob(store->state_dir(), store->blobs(), blob, sha256_of(t.tar));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "layer " + blob.str() + ": hardlink 'etc/hl' to 'etc/a': no such file in this layer");
}

TEST_F(LayerChain, GcKeepsChainDirsOfRecordedImagesAndRemovesThemWithTheImage) {
  Built keep = store_plain_image(*store, {{file("k", "k")}}, "keep");
  Built b = store_plain_image(*store, {base_layer(), {hardlink("etc/hl", "etc/a")}}, "hl");
  ASSERT_TRUE(unpack("keep"));
  auto dirs = unpack("hl");
  ASSERT_TRUE(dirs) << dirs.error().message();
  auto rep = collect_garbage(*store, GcOptions{});
  ASSERT_TRUE(rep) << rep.error().message();
  EXPECT_EQ(rep->layers_removed, 0u);
  EXPECT_TRUE(fs::exists((*dirs)[1] / "etc/hl"));
  auto usage = cache_usage(*store);
  ASSERT_TRUE(usage);
  EXPECT_EQ(usage->layers, 3u);

  ASSERT_TRUE(store->remove("hl"));
  rep = collect_garbage(*store, GcOptions{});
  ASSERT_TRUE(rep) << rep.error().message();
  EXPECT_EQ(rep->layers_removed, 2u);
  EXPECT_FALSE(fs::exists((*dirs)[0]));
  EXPECT_FALSE(fs::exists((*dirs)[1]));
  EXPECT_FALSE(fs::exists(layers() / (".lock-" + b.diff_ids[1].hex())));
  EXPECT_TRUE(fs::exists(layers() / (".lock-" + keep.diff_ids[0].hex())));
  EXPECT_EQ(layer_names(), std::vector<std::string>{keep.diff_ids[0].hex()});
}

TEST_F(LayerChain, ExportedAndImportedImageUnpacksTheSame) {
  store_plain_image(*store, {base_layer(), {hardlink("etc/hl", "etc/a")}}, "hl");
  auto rec = store->resolve("hl");
  ASSERT_TRUE(rec);
  fs::path out = dir.path() / "export";
  ASSERT_TRUE(export_oci_dir(*store, *rec, std::string("hl"), out));
  ImageStore other(dir.path() / "other");
  auto imported = import_oci_layout(other, out, std::string("back"));
  ASSERT_TRUE(imported) << imported.error().message();
  auto back = other.resolve("back");
  ASSERT_TRUE(back);
  EXPECT_EQ(back->manifest, rec->manifest);
  auto dirs = other.layer_dirs(*back);
  ASSERT_TRUE(dirs) << dirs.error().message();
  EXPECT_EQ((*dirs)[1].filename(), "chain-" + rec->layers[1].chain_id.hex());
  EXPECT_EQ(lstat_of((*dirs)[1] / "etc/hl").st_ino, lstat_of((*dirs)[1] / "etc/a").st_ino);
}

}  // namespace
}  // namespace lockstep::cache
