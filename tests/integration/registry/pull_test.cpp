// Pulls from a real docker-registry on loopback, of images the tests build
// and push themselves.
#include <sys/stat.h>

#include "common/fs.hpp"
#include "fixture.hpp"

namespace lockstep::registry::testing {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  auto t = read_file(p);
  return t ? *t : "<missing " + p.string() + ">";
}

// Three layers: a base, one with a whiteout, an opaque dir and an overwrite,
// and one with a new executable and a symlink.
TestImage layered_image(Compression c = Compression::kGzip) {
  return make_image(
      {
          {dir("etc"), file("etc/os-release", "ID=test\n"), dir("app"), file("app/a", "a1"),
           file("app/b", "b1"), dir("opq"), file("opq/old", "old"), file("gone", "bye"),
           dir("keep"), file("keep/x", "x")},
          {file(".wh.gone", ""), file("opq/.wh..wh..opq", ""), file("opq/new", "new"),
           file("app/a", "a2")},
          {file("app/c", "#!/bin/sh\n", 0755), symlink("link", "app/c")},
      },
      c);
}

void expect_layered_rootfs(const std::vector<fs::path>& dirs) {
  ASSERT_EQ(dirs.size(), 3u);
  OverlayView root(dirs);
  ASSERT_TRUE(root.ok()) << root.error();
  EXPECT_EQ(slurp(root / "etc/os-release"), "ID=test\n");
  EXPECT_EQ(slurp(root / "app/a"), "a2");
  EXPECT_EQ(slurp(root / "app/b"), "b1");
  EXPECT_EQ(slurp(root / "app/c"), "#!/bin/sh\n");
  EXPECT_EQ(slurp(root / "keep/x"), "x");
  EXPECT_EQ(slurp(root / "opq/new"), "new");
  EXPECT_FALSE(fs::exists(root / "opq/old"));
  EXPECT_FALSE(fs::exists(root / "gone"));
  EXPECT_FALSE(fs::exists(root / ".wh.gone"));
  EXPECT_FALSE(fs::exists(root / "opq/.wh..wh..opq"));
  EXPECT_EQ(fs::read_symlink(root / "link"), "app/c");
  struct stat st {};
  ASSERT_EQ(::stat((root / "app/c").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  std::vector<std::string> top;
  for (const auto& e : fs::directory_iterator(root / "")) top.push_back(e.path().filename());
  std::sort(top.begin(), top.end());
  EXPECT_EQ(top, (std::vector<std::string>{"app", "etc", "keep", "link", "opq"}));
}

TEST_F(RegistryTest, PullsMultiLayerImageByTagWithWhiteoutsAndOpaqueDir) {
  TestImage img = layered_image();
  ASSERT_TRUE(push_image(*client_, ref("app:v1"), img));

  std::vector<ProgressEvent> events;
  std::mutex mu;
  auto rec = client_->pull(ref("app:v1"), cache::Platform{}, *images_, [&](const ProgressEvent& e) {
    std::lock_guard lock(mu);
    events.push_back(e);
  });
  ASSERT_TRUE(rec) << rec.error().message();
  EXPECT_EQ(rec->manifest, img.manifest.digest);
  EXPECT_FALSE(rec->index);
  EXPECT_EQ(rec->config, img.config.digest);
  ASSERT_EQ(rec->layers.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(rec->layers[i].blob, img.layers[i].digest);
    EXPECT_EQ(rec->layers[i].diff_id, img.diff_ids[i]);
    EXPECT_TRUE(images_->blobs().has(img.layers[i].digest));
    EXPECT_EQ(*images_->blobs().read(img.layers[i].digest), img.layers[i].bytes);
  }
  EXPECT_EQ(*images_->blobs().read(img.manifest.digest), img.manifest.bytes);
  EXPECT_EQ(*images_->blobs().read(img.config.digest), img.config.bytes);
  // Tagged in the store under the full name.
  auto by_tag = images_->resolve(registry_->domain() + "/app:v1");
  ASSERT_TRUE(by_tag) << by_tag.error().message();
  EXPECT_EQ(by_tag->manifest, img.manifest.digest);
  // One "done" event per layer, with its size.
  int done = 0;
  for (const auto& e : events)
    if (e.kind == ProgressEvent::Kind::kDone) ++done;
  EXPECT_EQ(done, 3);

  auto dirs = images_->layer_dirs(*rec);
  ASSERT_TRUE(dirs) << dirs.error().message();
  expect_layered_rootfs(*dirs);

  // A second pull fetches no blob again.
  int blob_gets = registry_->count_requests("\"GET /v2/app/blobs/");
  EXPECT_EQ(blob_gets, 4);  // config + 3 layers
  std::vector<ProgressEvent> again;
  auto rec2 =
      client_->pull(ref("app:v1"), cache::Platform{}, *images_, [&](const ProgressEvent& e) {
        std::lock_guard lock(mu);
        again.push_back(e);
      });
  ASSERT_TRUE(rec2) << rec2.error().message();
  EXPECT_EQ(rec2->manifest, img.manifest.digest);
  EXPECT_EQ(registry_->count_requests("\"GET /v2/app/blobs/"), blob_gets);
  int exists = 0;
  for (const auto& e : again)
    if (e.kind == ProgressEvent::Kind::kExists) ++exists;
  EXPECT_EQ(exists, 3);
}

TEST_F(RegistryTest, PullsByDigestIntoAFreshStore) {
  TestImage img = layered_image();
  ASSERT_TRUE(push_image(*client_, ref("app:v1"), img));
  auto pinned = Reference::parse(registry_->domain() + "/app@" + img.manifest.digest.str());
  ASSERT_TRUE(pinned);
  auto rec = client_->pull(*pinned, cache::Platform{}, *images_);
  ASSERT_TRUE(rec) << rec.error().message();
  EXPECT_EQ(rec->manifest, img.manifest.digest);
  auto dirs = images_->layer_dirs(*rec);
  ASSERT_TRUE(dirs) << dirs.error().message();
  expect_layered_rootfs(*dirs);
  // Pulled by digest: found by digest, not tagged.
  EXPECT_TRUE(images_->resolve(img.manifest.digest.str()));
  EXPECT_FALSE(images_->resolve(registry_->domain() + "/app:v1"));

  auto digest = client_->resolve_digest(ref("app:v1"));
  ASSERT_TRUE(digest) << digest.error().message();
  EXPECT_EQ(*digest, img.manifest.digest);
}

TEST_F(RegistryTest, SelectsPlatformsFromAnIndex) {
  TestImage amd = make_image({{file("arch", "amd64")}}, Compression::kGzip, "amd64");
  TestImage arm = make_image({{file("arch", "arm64")}}, Compression::kGzip, "arm64", "v8");
  Blob index = make_index({&amd, &arm});
  ASSERT_TRUE(push_index(*client_, ref("multi:v1"), {&amd, &arm}, index));

  auto a = client_->pull(ref("multi:v1"), cache::Platform{}, *images_);
  ASSERT_TRUE(a) << a.error().message();
  EXPECT_EQ(a->manifest, amd.manifest.digest);
  ASSERT_TRUE(a->index);
  EXPECT_EQ(*a->index, index.digest);
  EXPECT_TRUE(images_->blobs().has(index.digest));
  auto a_dirs = images_->layer_dirs(*a);
  ASSERT_TRUE(a_dirs) << a_dirs.error().message();
  EXPECT_EQ(slurp((*a_dirs)[0] / "arch"), "amd64");

  auto arm_platform = parse_platform("linux/arm64/v8");
  ASSERT_TRUE(arm_platform);
  auto b = client_->pull(ref("multi:v1"), *arm_platform, *images_);
  ASSERT_TRUE(b) << b.error().message();
  EXPECT_EQ(b->manifest, arm.manifest.digest);
  auto b_dirs = images_->layer_dirs(*b);
  ASSERT_TRUE(b_dirs) << b_dirs.error().message();
  EXPECT_EQ(slurp((*b_dirs)[0] / "arch"), "arm64");

  auto s390 = parse_platform("linux/s390x");
  auto none = client_->pull(ref("multi:v1"), *s390, *images_);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().message(), "no manifest for linux/s390x in " + registry_->domain() +
                                        "/multi:v1 (available: linux/amd64, linux/arm64/v8)");

  // For the lockfile: the tag's digest is the index's, the platform's is the image's.
  auto d = client_->resolve_digest(ref("multi:v1"));
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(*d, index.digest);
  auto r = client_->resolve(ref("multi:v1"), *arm_platform);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->manifest, arm.manifest.digest);
  EXPECT_EQ(r->index, index.digest);
}

TEST_F(RegistryTest, RefusesAManifestForAnotherPlatformOnly) {
  TestImage arm = make_image({{file("arch", "arm64")}}, Compression::kGzip, "arm64");
  ASSERT_TRUE(push_image(*client_, ref("armonly:v1"), arm));
  auto r = client_->pull(ref("armonly:v1"), cache::Platform{}, *images_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "image " + registry_->domain() +
                                     "/armonly:v1 is for linux/arm64 only, not linux/amd64 (use "
                                     "--platform linux/arm64)");
  EXPECT_FALSE(images_->blobs().has(arm.layers[0].digest));
}

TEST_F(RegistryTest, PullsZstdLayers) {
  TestImage img =
      make_image({{dir("z"), file("z/data", random_bytes(100000, 7))}, {file("z/more", "zstd")}},
                 Compression::kZstd);
  ASSERT_EQ(img.layers[0].media_type, media::kOciLayerZstd);
  ASSERT_TRUE(push_image(*client_, ref("zstd:v1"), img));
  auto rec = client_->pull(ref("zstd:v1"), cache::Platform{}, *images_);
  ASSERT_TRUE(rec) << rec.error().message();
  EXPECT_EQ(rec->layers[0].media_type, media::kOciLayerZstd);
  auto dirs = images_->layer_dirs(*rec);
  ASSERT_TRUE(dirs) << dirs.error().message();
  OverlayView root(*dirs);
  ASSERT_TRUE(root.ok()) << root.error();
  EXPECT_EQ(slurp(root / "z/data"), random_bytes(100000, 7));
  EXPECT_EQ(slurp(root / "z/more"), "zstd");
}

TEST_F(RegistryTest, PullsDockerSchema2ImagesAndManifestLists) {
  TestImage img = make_image({{file("hello", "docker")}}, Compression::kGzip, "amd64", "", true);
  ASSERT_EQ(img.manifest.media_type, media::kDockerManifest);
  ASSERT_TRUE(push_image(*client_, ref("docker:v1"), img));
  auto rec = client_->pull(ref("docker:v1"), cache::Platform{}, *images_);
  ASSERT_TRUE(rec) << rec.error().message();
  EXPECT_EQ(rec->manifest_media_type, media::kDockerManifest);
  EXPECT_EQ(rec->layers[0].media_type, media::kDockerLayerGzip);
  auto dirs = images_->layer_dirs(*rec);
  ASSERT_TRUE(dirs) << dirs.error().message();
  EXPECT_EQ(slurp((*dirs)[0] / "hello"), "docker");

  TestImage arm = make_image({{file("hello", "arm")}}, Compression::kGzip, "arm64", "", true);
  Blob list = make_index({&img, &arm}, true);
  ASSERT_TRUE(push_index(*client_, ref("docker:list"), {&img, &arm}, list));
  auto arm64 = parse_platform("linux/arm64");
  auto from_list = client_->pull(ref("docker:list"), *arm64, *images_);
  ASSERT_TRUE(from_list) << from_list.error().message();
  EXPECT_EQ(from_list->manifest, arm.manifest.digest);
  EXPECT_EQ(from_list->index, list.digest);
}

TEST_F(RegistryTest, UnknownLayerMediaTypeIsAClearError) {
  TestImage img = make_image({{file("f", "x")}}, Compression::kGzip);
  // Rewrite the manifest with a layer type lockstep cannot unpack.
  Json m = Json::parse(img.manifest.bytes);
  m["layers"][0]["mediaType"] = "application/vnd.example.weird";
  std::string bytes = m.dump();
  for (const auto& l : img.layers) ASSERT_TRUE(client_->push_blob(ref("weird"), l.bytes));
  ASSERT_TRUE(client_->push_blob(ref("weird"), img.config.bytes));
  auto pushed = client_->push_manifest(ref("weird:v1"), media::kOciManifest, bytes);
  ASSERT_TRUE(pushed) << pushed.error().message();
  auto r = client_->pull(ref("weird:v1"), cache::Platform{}, *images_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "manifest " + pushed->str() + " of " + registry_->domain() +
                                     "/weird:v1: unsupported layer media type "
                                     "'application/vnd.example.weird' for " +
                                     img.layers[0].digest.str());
  EXPECT_EQ(r.error().kind(), ErrorKind::kUnsupported);
}

TEST_F(RegistryTest, MissingTagAndDownRegistryAreOneLineErrors) {
  auto missing = client_->pull(ref("nothing:here"), cache::Platform{}, *images_);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message(), "image " + registry_->domain() +
                                           "/nothing:here not found in registry " +
                                           registry_->domain() + " (manifest unknown)");

  int port = free_port();
  auto down = ref_at("127.0.0.1:" + std::to_string(port), "app:v1");
  auto r = client_->pull(down, cache::Platform{}, *images_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "cannot reach registry 127.0.0.1:" + std::to_string(port) +
                                     ": Connection refused (is it running?)");
  EXPECT_EQ(r.error().kind(), ErrorKind::kUnreachable);
  auto d = client_->resolve_digest(down);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().message(), r.error().message());
}

}  // namespace
}  // namespace lockstep::registry::testing
