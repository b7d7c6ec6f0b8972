// The distribution API as clients see it: headers, HEAD, ranges, error
// bodies, routing to several upstreams, digest content served locally, tag
// TTL, LRU eviction, prefetch, metrics and the access log.
#include "common/json.hpp"
#include "mirror_fixture.hpp"
#include "registry-mirror/manifest.hpp"
#include "registry-mirror/mirror_prefetch.hpp"

namespace lockstep::registry::testing {
namespace {

std::string error_code_of(const std::string& body) {
  auto j = parse_json(body, "error body");
  if (!j || !j->contains("errors") || (*j)["errors"].empty()) return "(not an error body)";
  return (*j)["errors"][0].value("code", "");
}

Fetched get_manifest(const std::string& url, const std::string& method = "GET") {
  return http_get(url, method, {"Accept: " + manifest_accept_header()});
}

TEST_F(MirrorTest, ServesTheApiWithSpecHeadersRangesAndErrorBodies) {
  TestImage img = big_image(1, 100000, 31);
  push("app:v1", img);
  start_mirror();
  auto base = http_get(murl("/v2/"));
  EXPECT_EQ(base.status, 200);
  EXPECT_EQ(base.resp.header("docker-distribution-api-version"), "registry/2.0");

  auto head = get_manifest(murl("/v2/app/manifests/v1"), "HEAD");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
  EXPECT_EQ(head.resp.header("content-length"), std::to_string(img.manifest.bytes.size()));
  EXPECT_EQ(head.resp.header("content-type"), std::string(media::kOciManifest));
  EXPECT_EQ(head.resp.header("docker-content-digest"), img.manifest.digest.str());
  EXPECT_EQ(head.resp.header("etag"), "\"" + img.manifest.digest.str() + "\"");

  const Blob& layer = img.layers[0];
  const std::string burl = murl("/v2/app/blobs/" + layer.digest.str());
  auto part = http_get(burl, "GET", {"Range: bytes=10-19"});  // cold: starts the download
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.body, layer.bytes.substr(10, 10));
  EXPECT_EQ(part.resp.header("content-range"), "bytes 10-19/" + std::to_string(layer.bytes.size()));
  auto tail = http_get(burl, "GET", {"Range: bytes=-5"});
  EXPECT_EQ(tail.status, 206);
  EXPECT_EQ(tail.body, layer.bytes.substr(layer.bytes.size() - 5));
  auto beyond = http_get(burl, "GET", {"Range: bytes=999999999-"});
  EXPECT_EQ(beyond.status, 416);
  auto bhead = http_get(burl, "HEAD");
  EXPECT_EQ(bhead.status, 200);
  EXPECT_EQ(bhead.resp.header("content-length"), std::to_string(layer.bytes.size()));
  EXPECT_EQ(bhead.resp.header("docker-content-digest"), layer.digest.str());
  EXPECT_EQ(bhead.resp.header("content-type"), "application/octet-stream");

  auto bad_digest = http_get(murl("/v2/app/blobs/sha256:xyz"));
  EXPECT_EQ(bad_digest.status, 400);
  EXPECT_EQ(error_code_of(bad_digest.body), "DIGEST_INVALID");
  auto unknown_blob = http_get(murl("/v2/app/blobs/sha256:" + std::string(64, 'b')));
  EXPECT_EQ(unknown_blob.status, 404);
  EXPECT_EQ(error_code_of(unknown_blob.body), "BLOB_UNKNOWN");
  EXPECT_EQ(unknown_blob.resp.header("content-type"), "application/json");
  auto unknown_tag = get_manifest(murl("/v2/app/manifests/nope"));
  EXPECT_EQ(unknown_tag.status, 404);
  EXPECT_EQ(error_code_of(unknown_tag.body), "MANIFEST_UNKNOWN");
  auto upload = http_get(murl("/v2/app/blobs/uploads/"), "POST");
  EXPECT_EQ(upload.status, 405);
  EXPECT_EQ(error_code_of(upload.body), "UNSUPPORTED");

  auto tags = http_get(murl("/v2/app/tags/list"));
  EXPECT_EQ(tags.status, 200);
  EXPECT_NE(tags.body.find("\"v1\""), std::string::npos) << tags.body;
  auto catalog = http_get(murl("/v2/_catalog"));
  EXPECT_EQ(catalog.status, 200);
  EXPECT_NE(catalog.body.find("\"app\""), std::string::npos) << catalog.body;

  auto metrics = http_get(murl("/metrics"));
  EXPECT_EQ(metrics.status, 200);
  for (const char* name :
       {"lockstep_mirror_hits_total", "lockstep_mirror_misses_total",
        "lockstep_mirror_upstream_requests_total", "lockstep_mirror_bytes_served_total",
        "lockstep_mirror_bytes_fetched_total", "lockstep_mirror_downloads_in_flight",
        "lockstep_mirror_waiters", "lockstep_mirror_store_bytes"})
    EXPECT_NE(metrics.body.find(std::string("# TYPE ") + name), std::string::npos) << name;

  auto log = read_file(state_.path() / "access.log");
  ASSERT_TRUE(log);
  std::string first_line = log->substr(0, log->find('\n'));
  auto j = parse_json(first_line, "access log");
  ASSERT_TRUE(j) << first_line;
  EXPECT_EQ((*j)["method"], "GET");
  EXPECT_EQ((*j)["target"], "/v2/");
  EXPECT_EQ((*j)["status"], 200);
  EXPECT_TRUE(j->contains("ms") && j->contains("time") && j->contains("remote"));
}

TEST_F(MirrorTest, DigestContentIsServedLocallyAndTagsWithinTheirTtl) {
  TestImage img = big_image(1, 50000, 32);
  push("app:v1", img);
  start_mirror();
  ASSERT_EQ(get_manifest(murl("/v2/app/manifests/v1")).status, 200);
  for (const auto& d : blobs_of(img))
    ASSERT_EQ(http_get(murl("/v2/app/blobs/" + d.str())).status, 200);
  const int before = registry_->count_requests("/v2/app/");
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(get_manifest(murl("/v2/app/manifests/v1")).status, 200);
    EXPECT_EQ(get_manifest(murl("/v2/app/manifests/" + img.manifest.digest.str())).status, 200);
    for (const auto& d : blobs_of(img))
      EXPECT_EQ(http_get(murl("/v2/app/blobs/" + d.str())).status, 200);
  }
  EXPECT_EQ(registry_->count_requests("/v2/app/"), before);
}

TEST_F(MirrorTest, ExpiredTagIsRecheckedWithHeadAndFollowsAMovedTag) {
  TestImage v1 = big_image(1, 1000, 33), v2 = big_image(1, 1000, 34);
  push("app:latest", v1);
  start_mirror({}, std::chrono::seconds(0));
  EXPECT_EQ(get_manifest(murl("/v2/app/manifests/latest")).body, v1.manifest.bytes);
  EXPECT_EQ(get_manifest(murl("/v2/app/manifests/latest")).body, v1.manifest.bytes);
  EXPECT_EQ(registry_->count_requests("GET /v2/app/manifests/latest"), 1);
  EXPECT_EQ(registry_->count_requests("HEAD /v2/app/manifests/latest"), 1);
  push("app:latest", v2);
  EXPECT_EQ(get_manifest(murl("/v2/app/manifests/latest")).body, v2.manifest.bytes);
  EXPECT_EQ(registry_->count_requests("GET /v2/app/manifests/latest"), 2);
}

TEST_F(MirrorTest, RoutesByNsParameterPathPrefixOrDefault) {
  auto second = LocalRegistry::start();
  ASSERT_TRUE(second) << second.error().message();
  TestImage one = big_image(1, 1000, 35), two = big_image(1, 1000, 36);
  push("app:v1", one);
  auto ref2 = Reference::parse(second->domain() + "/app:v1");
  ASSERT_TRUE(ref2);
  ASSERT_TRUE(push_image(*client_, *ref2, two));
  MirrorConfig cfg;
  cfg.upstreams.push_back({"one", "http://" + registry_->domain()});
  cfg.upstreams.push_back({"two.example", "http://" + second->domain()});
  cfg.default_upstream = "one";
  cfg.state_dir = state_.path();
  cfg.access_log = state_.path() / "access.log";
  auto m = InProcessMirror::start(cfg);
  ASSERT_TRUE(m) << m.error().message();
  mirror_ = std::move(*m);
  EXPECT_EQ(get_manifest(murl("/v2/app/manifests/v1")).body, one.manifest.bytes);
  EXPECT_EQ(get_manifest(murl("/v2/app/manifests/v1?ns=two.example")).body, two.manifest.bytes);
  // ?ns= also finds an upstream by its registry's domain...
  EXPECT_EQ(get_manifest(murl("/v2/app/manifests/v1?ns=" + second->domain())).body,
            two.manifest.bytes);
  // ...and a registry no upstream serves is a 404, not the default's image.
  const int before = registry_->count_requests("/v2/");
  auto unknown = get_manifest(murl("/v2/app/manifests/v1?ns=three.example"));
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(error_code_of(unknown.body), "NAME_UNKNOWN");
  EXPECT_NE(unknown.body.find("no upstream serves registry 'three.example'"), std::string::npos)
      << unknown.body;
  EXPECT_EQ(registry_->count_requests("/v2/"), before);
  EXPECT_EQ(get_manifest(murl("/v2/two.example/app/manifests/v1")).body, two.manifest.bytes);
  EXPECT_EQ(get_manifest(murl("/v2/one/app/manifests/v1")).body, one.manifest.bytes);
  auto blob = http_get(murl("/v2/two.example/app/blobs/" + two.layers[0].digest.str()));
  EXPECT_EQ(blob.status, 200);
  EXPECT_EQ(sha256_of(blob.body), two.layers[0].digest);
}

TEST_F(MirrorTest, MaxSizeEvictsLeastRecentlyUsedBlobs) {
  TestImage img = big_image(3, 1u << 20, 37);
  push("app:v1", img);
  start_mirror({}, std::chrono::seconds(300), 0, (5u << 20) / 2);
  ASSERT_EQ(get_manifest(murl("/v2/app/manifests/v1")).status, 200);
  for (const auto& d : blobs_of(img))
    ASSERT_EQ(http_get(murl("/v2/app/blobs/" + d.str())).status, 200);
  EXPECT_FALSE(store().has(img.layers[0].digest));
  EXPECT_TRUE(store().has(img.layers[1].digest));
  EXPECT_TRUE(store().has(img.layers[2].digest));
  EXPECT_LE(mirror_->metrics().store_bytes.load(), int64_t{5 << 20} / 2);
  EXPECT_GE(mirror_->metrics().evictions.load(), 1);
  // An evicted blob is fetched again on demand.
  auto again = http_get(murl("/v2/app/blobs/" + img.layers[0].digest.str()));
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(sha256_of(again.body), img.layers[0].digest);
}

TEST_F(MirrorTest, PrefetchWarmsTheMirrorWithAListOfImages) {
  TestImage img = big_image(2, 10000, 38);
  push("app:v1", img);
  start_mirror();
  auto refs = parse_prefetch_list("# images\n\n" + registry_->domain() + "/app:v1\n", "list.txt");
  ASSERT_TRUE(refs) << refs.error().message();
  auto r = prefetch_through_mirror(mirror_->url(), *refs, cache::Platform{});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->manifests, 1u);
  EXPECT_EQ(r->blobs, 3u);
  for (const auto& d : blobs_of(img)) EXPECT_TRUE(store().has(d));
  EXPECT_TRUE(store().has(img.manifest.digest));
}

}  // namespace
}  // namespace lockstep::registry::testing
