#include "cache/image_store.hpp"

#include <filesystem>

#include <gtest/gtest.h>

#include "common/fs.hpp"

namespace lockstep::cache {
namespace {
namespace fs = std::filesystem;

struct ImageStoreTest : ::testing::Test {
  void SetUp() override {
    auto d = TempDir::create(fs::temp_directory_path(), "ls-images-");
    ASSERT_TRUE(d);
    dir = std::move(*d);
    fs::create_directories(dir.path() / "root/etc");
    ASSERT_TRUE(write_file_atomic(dir.path() / "root/etc/os-release", "ID=test\n"));
  }
  TempDir dir;
};

TEST_F(ImageStoreTest, TagsResolveListRemove) {
  ImageStore s(dir.path() / "state");
  auto d = s.import_rootfs(dir.path() / "root", "team/app");
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(s.resolve("team/app")->manifest, *d);
  EXPECT_EQ(s.resolve("team/app:latest")->manifest, *d);
  EXPECT_EQ(s.resolve(d->str())->manifest, *d);
  EXPECT_EQ(s.resolve("team/app@" + d->str())->manifest, *d);
  ASSERT_TRUE(s.add_manifest(*d, std::nullopt, std::string("team/app:v2")));
  // A second store object sees the durable tags.
  ImageStore again(dir.path() / "state");
  auto list = again.list();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].tag, "team/app:latest");
  EXPECT_EQ((*list)[1].tag, "team/app:v2");
  EXPECT_GT((*list)[0].size, 0u);
  auto missing = again.resolve("team/other");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message(),
            "image 'team/other' is not in the local store (see 'lockstep image ls')");
  ASSERT_TRUE(again.remove("team/app"));
  EXPECT_FALSE(again.resolve("team/app"));
  EXPECT_TRUE(again.resolve("team/app:v2"));
  ASSERT_TRUE(again.remove(d->str()));
  EXPECT_TRUE(again.list()->empty());
  auto gone = again.remove("team/app:v2");
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().kind(), ErrorKind::kNotFound);
}

TEST_F(ImageStoreTest, DockerHubSpellingResolves) {
  ImageStore s(dir.path() / "state");
  auto d = s.import_rootfs(dir.path() / "root", "docker.io/library/busybox:1.36");
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(s.resolve("busybox:1.36")->manifest, *d);
}

TEST_F(ImageStoreTest, AddManifestNeedsItsLayers) {
  ImageStore s(dir.path() / "state");
  auto d = s.import_rootfs(dir.path() / "root", "a");
  ASSERT_TRUE(d);
  auto rec = s.resolve("a");
  ASSERT_TRUE(rec);
  ASSERT_TRUE(s.blobs().remove(rec->layers[0].blob));
  auto r = s.add_manifest(*d, std::nullopt, std::string("b"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "image " + d->str() + ": layer " + rec->layers[0].blob.str() + " is not in the store");
}

}  // namespace
}  // namespace lockstep::cache
