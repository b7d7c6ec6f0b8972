// Air-gapped transfer: export to an OCI layout (dir or tar) and import back
// gives the same manifest digest; docker-save tarballs (hand-built legacy
// layout, and one written by skopeo) import and unpack to the same files.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "cache/export_oci.hpp"
#include "cache/image_store.hpp"
#include "cache/import_archive.hpp"
#include "cache/tar_writer.hpp"
#include "common/fs.hpp"
#include "tests/integration/cache/tar_builder.hpp"

namespace lockstep::cache {
namespace {
namespace fs = std::filesystem;
using namespace lockstep::cache::testing;

struct ImportExport : ::testing::Test {
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (unpacking root-owned layers)";
    auto d = TempDir::create(fs::temp_directory_path(), "ls-impexp-");
    ASSERT_TRUE(d);
    dir = std::move(*d);
    fs::create_directories(dir.path() / "rootfs/bin");
    fs::create_directories(dir.path() / "rootfs/etc");
    ASSERT_TRUE(write_file_atomic(dir.path() / "rootfs/etc/motd", "hello from lockstep\n"));
    ASSERT_TRUE(write_file_atomic(dir.path() / "rootfs/bin/app", "#!/bin/sh\n", 0755));
    fs::create_symlink("app", dir.path() / "rootfs/bin/alias");
  }
  fs::path p(const std::string& s) const { return dir.path() / s; }
  TempDir dir;
};

TEST_F(ImportExport, OciDirRoundTripKeepsDigest) {
  ImageStore a(p("state-a"));
  auto d = a.import_rootfs(p("rootfs"), "team/app:1.0");
  ASSERT_TRUE(d) << d.error().message();
  auto rec = a.resolve("team/app:1.0");
  ASSERT_TRUE(rec);
  ASSERT_TRUE(export_oci_dir(a, *rec, std::string("team/app:1.0"), p("layout")));
  EXPECT_TRUE(fs::exists(p("layout/oci-layout")));
  EXPECT_TRUE(fs::exists(p("layout/blobs/sha256") / d->hex()));

  ImageStore b(p("state-b"));
  auto src = detect_import_source(p("layout"));
  ASSERT_TRUE(src);
  EXPECT_EQ(*src, ImportSource::kOciLayoutDir);
  auto imported = import_any(b, p("layout"), std::nullopt);
  ASSERT_TRUE(imported) << imported.error().message();
  ASSERT_EQ(imported->size(), 1u);
  EXPECT_EQ((*imported)[0].manifest, *d);
  auto back = b.resolve("team/app:1.0");  // the tag travelled in the annotations
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->manifest, *d);
  auto dirs = b.layer_dirs(*back);
  ASSERT_TRUE(dirs) << dirs.error().message();
  EXPECT_EQ(*read_file((*dirs)[0] / "etc/motd"), "hello from lockstep\n");

  auto busy = export_oci_dir(a, *rec, std::nullopt, p("layout"));
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.error().message(), "export: " + p("layout").string() + " exists and is not empty");
}

TEST_F(ImportExport, OciTarRoundTripIsDeterministic) {
  ImageStore a(p("state-a"));
  auto d = a.import_rootfs(p("rootfs"), "app");
  ASSERT_TRUE(d);
  auto rec = a.resolve("app");
  ASSERT_TRUE(export_oci_tar(a, *rec, std::string("app"), p("one.tar")));
  ASSERT_TRUE(export_oci_tar(a, *rec, std::string("app"), p("two.tar")));
  EXPECT_EQ(*read_file(p("one.tar")), *read_file(p("two.tar")));
  EXPECT_EQ(*detect_import_source(p("one.tar")), ImportSource::kImageArchive);
  ImageStore b(p("state-b"));
  auto imported = import_any(b, p("one.tar"), std::string("copy:v1"));
  ASSERT_TRUE(imported) << imported.error().message();
  EXPECT_EQ((*imported)[0].manifest, *d);
  EXPECT_EQ(b.resolve("copy:v1")->manifest, *d);
  // And the reverse: that store exports the very same bytes.
  auto rec_b = b.resolve("copy:v1");
  ASSERT_TRUE(export_oci_tar(b, *rec_b, std::string("app"), p("three.tar")));
  EXPECT_EQ(*read_file(p("one.tar")), *read_file(p("three.tar")));
}

// The legacy `docker save` layout: <id>/layer.tar, a config file named by its
// id, manifest.json, and a symlinked duplicate layer.
TEST_F(ImportExport, LegacyDockerSaveTarball) {
  BuiltTar l1 = build_tar({directory("etc/"), file("etc/motd", "legacy\n")}, Filter::kNone);
  BuiltTar l2 = build_tar({file("etc/extra", "x\n")}, Filter::kNone);
  std::string cfg = R"({"architecture":"amd64","os":"linux","config":{"Cmd":["sh"]},)"
                    R"("rootfs":{"type":"layers","diff_ids":[")" +
                    sha256_of(l1.tar).str() + R"(",")" + sha256_of(l2.tar).str() + R"(",")" +
                    sha256_of(l1.tar).str() + R"("]}})";
  std::string cfg_name = sha256_of(cfg).hex() + ".json";
  std::string manifest = R"([{"Config":")" + cfg_name +
                         R"(","RepoTags":["legacy/app:old","legacy/app:latest"],)"
                         R"("Layers":["aaa/layer.tar","bbb/layer.tar","ccc/layer.tar"]}])";
  std::vector<TarEntry> entries = {directory("aaa/"),
                                   file("aaa/VERSION", "1.0"),
                                   file("aaa/layer.tar", l1.tar),
                                   directory("bbb/"),
                                   file("bbb/layer.tar", l2.tar),
                                   directory("ccc/"),
                                   symlink("ccc/layer.tar", "../aaa/layer.tar"),
                                   file(cfg_name, cfg),
                                   file("manifest.json", manifest),
                                   file("repositories", "{}")};
  std::string tarball = write_archive(entries, Filter::kNone);
  ASSERT_TRUE(write_file_atomic(p("save.tar"), tarball));
  EXPECT_EQ(*detect_import_source(p("save.tar")), ImportSource::kImageArchive);
  ImageStore s(p("state"));
  auto imported = import_any(s, p("save.tar"), std::nullopt);
  ASSERT_TRUE(imported) << imported.error().message();
  ASSERT_EQ(imported->size(), 1u);
  EXPECT_EQ((*imported)[0].tags, (std::vector<std::string>{"legacy/app:old", "legacy/app:latest"}));
  auto rec = s.resolve("legacy/app:old");
  ASSERT_TRUE(rec) << rec.error().message();
  EXPECT_EQ(rec->manifest, s.resolve("legacy/app")->manifest);
  EXPECT_EQ(rec->config_json["config"]["Cmd"][0], "sh");
  ASSERT_EQ(rec->layers.size(), 3u);
  EXPECT_EQ(rec->layers[0].blob, sha256_of(l1.tar));
  auto dirs = s.layer_dirs(*rec);
  ASSERT_TRUE(dirs) << dirs.error().message();
  EXPECT_EQ(*read_file((*dirs)[0] / "etc/motd"), "legacy\n");
  EXPECT_EQ((*dirs)[0], (*dirs)[2]);
  // Importing the same tarball again is the same image.
  ImageStore s2(p("state2"));
  auto again = import_any(s2, p("save.tar"), std::string("other"));
  ASSERT_TRUE(again);
  EXPECT_EQ((*again)[0].manifest, rec->manifest);
}

TEST_F(ImportExport, SkopeoReadsOurLayoutAndWeReadItsDockerArchive) {
  if (std::system("command -v skopeo >/dev/null 2>&1") != 0) GTEST_SKIP() << "needs skopeo";
  ImageStore a(p("state-a"));
  auto d = a.import_rootfs(p("rootfs"), "app");
  ASSERT_TRUE(d);
  ASSERT_TRUE(export_oci_dir(a, *a.resolve("app"), std::string("app"), p("layout")));
  std::string cmd = "skopeo --insecure-policy copy -q oci:" + p("layout").string() +
                    ":app:latest docker-archive:" + p("docker.tar").string() +
                    ":skopeo/app:v1 >/dev/null 2>" + p("skopeo.err").string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << read_file(p("skopeo.err")).value_or("");
  ImageStore b(p("state-b"));
  auto imported = import_any(b, p("docker.tar"), std::nullopt);
  ASSERT_TRUE(imported) << imported.error().message();
  auto rec = b.resolve("skopeo/app:v1");
  ASSERT_TRUE(rec) << rec.error().message();
  auto dirs = b.layer_dirs(*rec);
  ASSERT_TRUE(dirs) << dirs.error().message();
  EXPECT_EQ(*read_file((*dirs)[0] / "etc/motd"), "hello from lockstep\n");
  EXPECT_EQ(fs::read_symlink((*dirs)[0] / "bin/alias"), "app");
}

TEST_F(ImportExport, TamperedLayoutBlobIsRejected) {
  ImageStore a(p("state-a"));
  auto d = a.import_rootfs(p("rootfs"), "app");
  ASSERT_TRUE(d);
  auto rec = a.resolve("app");
  ASSERT_TRUE(export_oci_dir(a, *rec, std::string("app"), p("layout")));
  fs::path layer = p("layout/blobs/sha256") / rec->layers[0].blob.hex();
  fs::permissions(layer, fs::perms::owner_write, fs::perm_options::add);
  ASSERT_TRUE(write_file_atomic(layer, "not the layer"));
  ImageStore b(p("state-b"));
  auto r = import_any(b, p("layout"), std::nullopt);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), layer.string() + ": blob " + rec->layers[0].blob.str() +
                                     ": digest mismatch: content is " +
                                     sha256_of("not the layer").str());
  EXPECT_FALSE(b.blobs().has(rec->layers[0].blob));
  EXPECT_FALSE(b.resolve("app"));
}

TEST_F(ImportExport, RootfsNeedsATag) {
  ImageStore s(p("state"));
  auto r = import_any(s, p("rootfs"), std::nullopt);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "importing a root filesystem (" + p("rootfs").string() + ") needs --tag NAME");
  EXPECT_EQ(r.error().kind(), ErrorKind::kUsage);
}

}  // namespace
}  // namespace lockstep::cache
