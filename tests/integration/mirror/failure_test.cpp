// The upstream failing: stopped, rate-limited (nginx limit_req -> 429),
// sending corrupted bytes, or breaking mid-blob.
#include <atomic>
#include <mutex>

#include "../registry/http_proxy.hpp"
#include "common/json.hpp"
#include "mirror_fixture.hpp"
#include "nginx_front.hpp"
#include "registry-mirror/manifest.hpp"

namespace lockstep::registry::testing {
namespace {

std::string error_code_of(const std::string& body) {
  auto j = parse_json(body, "error body");
  if (!j || !j->contains("errors") || (*j)["errors"].empty()) return "(not an error body)";
  return (*j)["errors"][0].value("code", "");
}

Fetched get_manifest(const std::string& url) {
  return http_get(url, "GET", {"Accept: " + manifest_accept_header()});
}

TEST_F(MirrorTest, UpstreamStoppedWarmPullsSucceedAndUncachedIsUnavailableNot404) {
  TestImage img = big_image(1, 64u << 10, 3);
  push("app:v1", img);
  push("cold:v1", big_image(1, 1000, 4));
  start_mirror({}, std::chrono::seconds(0));  // tags always re-checked
  auto warm = get_manifest(murl("/v2/app/manifests/v1"));
  ASSERT_EQ(warm.status, 200);
  ASSERT_EQ(http_get(murl("/v2/app/blobs/" + img.layers[0].digest.str())).status, 200);
  registry_.reset();  // the upstream is gone

  auto by_digest = get_manifest(murl("/v2/app/manifests/" + img.manifest.digest.str()));
  EXPECT_EQ(by_digest.status, 200);
  EXPECT_EQ(by_digest.body, img.manifest.bytes);
  auto by_tag = get_manifest(murl("/v2/app/manifests/v1"));
  EXPECT_EQ(by_tag.status, 200);
  EXPECT_EQ(by_tag.body, img.manifest.bytes);
  auto stale = by_tag.resp.header("x-lockstep-mirror-stale");
  ASSERT_TRUE(stale);
  EXPECT_EQ(stale->rfind("upstream unreachable: ", 0), 0u) << *stale;
  auto blob = http_get(murl("/v2/app/blobs/" + img.layers[0].digest.str()));
  EXPECT_EQ(blob.status, 200);
  EXPECT_EQ(sha256_of(blob.body), img.layers[0].digest);

  auto cold = get_manifest(murl("/v2/cold/manifests/v1"));
  EXPECT_EQ(cold.status, 503);
  EXPECT_EQ(error_code_of(cold.body), "UNAVAILABLE");
  auto j = parse_json(cold.body, "error");
  ASSERT_TRUE(j);
  EXPECT_EQ((*j)["errors"][0]["message"].get<std::string>().rfind(
                "manifest local/cold:v1: upstream unreachable: ", 0),
            0u)
      << cold.body;
  auto cold_blob = http_get(murl("/v2/cold/blobs/sha256:" + std::string(64, 'a')));
  EXPECT_EQ(cold_blob.status, 503);
  EXPECT_EQ(error_code_of(cold_blob.body), "UNAVAILABLE");
  auto log = read_file(state_.path() / "access.log");
  ASSERT_TRUE(log);
  EXPECT_NE(log->find("\"cache\":\"stale\""), std::string::npos);
}

TEST_F(MirrorTest, RateLimitedUpstreamServesStaleTagsAnd429ForUncachedWithinBudget) {
  if (!Nginx::available()) GTEST_SKIP() << "needs " << Nginx::kBinary;
  TestImage img = big_image(1, 1000, 5);
  push("app:v1", img);
  push("cold:v1", big_image(1, 1000, 6));
  NginxOptions o;
  o.proxy_to = registry_->port();
  o.burst = 2;  // three requests pass (manifest, config, layer), then 429
  o.retry_after = 30;
  auto nginx = Nginx::start(o);
  ASSERT_TRUE(nginx) << nginx.error().message();
  start_mirror(nginx->url(), std::chrono::seconds(0), /*budget=*/2);
  ASSERT_EQ(get_manifest(murl("/v2/app/manifests/v1")).status, 200);
  ASSERT_EQ(http_get(murl("/v2/app/blobs/" + img.config.digest.str())).status, 200);
  ASSERT_EQ(http_get(murl("/v2/app/blobs/" + img.layers[0].digest.str())).status, 200);
  ASSERT_EQ(nginx->count_status(429), 0);

  // The tag's TTL is over: the re-check gets 429, the cached manifest is served.
  auto stale = get_manifest(murl("/v2/app/manifests/v1"));
  EXPECT_EQ(stale.status, 200);
  EXPECT_EQ(stale.body, img.manifest.bytes);
  ASSERT_TRUE(stale.resp.header("x-lockstep-mirror-stale"));
  EXPECT_EQ(*stale.resp.header("x-lockstep-mirror-stale"), "upstream answered HTTP 429");
  EXPECT_EQ(nginx->count_status(429), 1);

  // Uncached: 429 TOOMANYREQUESTS with Retry-After, and the mirror holds
  // back (Retry-After honoured): nginx sees no further request.
  for (int i = 0; i < 5; ++i) {
    auto cold = get_manifest(murl("/v2/cold/manifests/v1"));
    EXPECT_EQ(cold.status, 429);
    EXPECT_EQ(error_code_of(cold.body), "TOOMANYREQUESTS");
    auto ra = cold.resp.header("retry-after");
    ASSERT_TRUE(ra);
    EXPECT_GT(std::stoi(*ra), 0);
    EXPECT_LE(std::stoi(*ra), 30);
  }
  // Cached tags keep being served, stale, without asking.
  EXPECT_EQ(get_manifest(murl("/v2/app/manifests/v1")).status, 200);
  EXPECT_EQ(nginx->count_status(429), 1);
  int manifest_gets = nginx->count("\"GET /v2/app/manifests/") + nginx->count("\"GET /v2/cold/");
  EXPECT_LE(manifest_gets, 2);  // the budget
  EXPECT_EQ(nginx->count("\"GET /v2/cold/"), 0);
}

TEST_F(MirrorTest, ManifestBudgetPrefersStaleAnswersAndRefusesUncached) {
  TestImage img = big_image(1, 1000, 8);
  push("app:v1", img);
  push("app:v2", big_image(1, 1000, 9));
  push("app:v3", big_image(1, 1000, 10));
  start_mirror({}, std::chrono::seconds(0), /*budget=*/2);
  EXPECT_EQ(get_manifest(murl("/v2/app/manifests/v1")).status, 200);
  EXPECT_EQ(get_manifest(murl("/v2/app/manifests/v2")).status, 200);
  auto v3 = get_manifest(murl("/v2/app/manifests/v3"));
  EXPECT_EQ(v3.status, 429);
  EXPECT_EQ(error_code_of(v3.body), "TOOMANYREQUESTS");
  EXPECT_NE(v3.body.find("manifest budget of 2 per 21600s is spent"), std::string::npos) << v3.body;
  EXPECT_EQ(registry_->count_requests("GET /v2/app/manifests/"), 2);
}

TEST_F(MirrorTest, CorruptedUpstreamBytesAreDetectedNothingIsStoredClientsGetAnError) {
  TestImage img = big_image(1, 2u << 20, 12);
  push("app:v1", img);
  const Digest d = img.layers[0].digest;
  HttpProxy proxy(registry_->port(), [&](const ProxyRequest& r) {
    ProxyAction a;
    a.tamper = r.target.find("/blobs/" + d.str()) != std::string::npos;
    return a;
  });
  start_mirror("http://" + proxy.domain());
  std::vector<Fetched> results(4);
  std::vector<std::thread> ts;
  for (auto& r : results) ts.emplace_back([&] { r = http_get(murl("/v2/app/blobs/" + d.str())); });
  for (auto& t : ts) t.join();
  for (const auto& r : results) {
    // Either the error status (joined before the headers) or a body cut
    // short before its last byte: never the full, wrong bytes.
    bool failed = !r.error.empty() || r.status >= 500;
    EXPECT_TRUE(failed) << r.status << " " << r.body.size();
    EXPECT_NE(sha256_of(r.body), d);
  }
  EXPECT_FALSE(store().has(d));
  auto list = store().list();
  ASSERT_TRUE(list);
  for (const auto& x : *list) EXPECT_NE(x, d);
  // Nothing half-done lingers: the next request tries again (and fails again).
  auto again = http_get(murl("/v2/app/blobs/" + d.str()));
  EXPECT_TRUE(!again.error.empty() || again.status >= 500);
  EXPECT_FALSE(store().has(d));
}

TEST_F(MirrorTest, Upstream5xxAnd429ForUncachedAreUnavailableAndTooManyRequestsNever404) {
  TestImage img = big_image(1, 1000, 14);
  push("app:v1", img);
  const Digest layer = img.layers[0].digest;
  HttpProxy proxy(registry_->port(), [&](const ProxyRequest& r) {
    ProxyAction a;
    if (r.target.find("/manifests/v1") != std::string::npos)
      a.respond = HttpProxy::response(500, "Internal Server Error", {}, "boom");
    else if (r.target.find("/blobs/" + layer.str()) != std::string::npos)
      a.respond = HttpProxy::response(429, "Too Many Requests", {"Retry-After: 7"}, "");
    return a;
  });
  start_mirror("http://" + proxy.domain());
  auto m = get_manifest(murl("/v2/app/manifests/v1"));
  EXPECT_EQ(m.status, 503);
  EXPECT_EQ(error_code_of(m.body), "UNAVAILABLE");
  EXPECT_NE(m.body.find("manifest local/app:v1: upstream answered HTTP 500"), std::string::npos)
      << m.body;
  auto b = http_get(murl("/v2/app/blobs/" + layer.str()));
  EXPECT_EQ(b.status, 429);
  EXPECT_EQ(error_code_of(b.body), "TOOMANYREQUESTS");
  EXPECT_EQ(b.resp.header("retry-after"), "7");
  // Retry-After holds back the next upstream request, whatever it is for.
  auto c = http_get(murl("/v2/app/blobs/" + img.config.digest.str()));
  EXPECT_EQ(c.status, 429);
  EXPECT_EQ(error_code_of(c.body), "TOOMANYREQUESTS");
  EXPECT_EQ(proxy.count("/v2/app/blobs/" + img.config.digest.str()), 0);
  EXPECT_FALSE(store().has(layer));
}

TEST_F(MirrorTest, UpstreamBreakMidBlobResumesWithRange) {
  TestImage img = big_image(1, 1u << 20, 13);
  push("app:v1", img);
  const Digest d = img.layers[0].digest;
  std::mutex mu;
  std::vector<std::string> ranges;
  HttpProxy proxy(registry_->port(), [&](const ProxyRequest& r) {
    ProxyAction a;
    if (r.method != "GET" || r.target.find("/blobs/" + d.str()) == std::string::npos) return a;
    std::lock_guard lock(mu);
    ranges.push_back(r.headers.count("range") ? r.headers.at("range") : "");
    if (ranges.size() == 1) a.cut_after = 300000;
    return a;
  });
  start_mirror("http://" + proxy.domain());
  auto got = http_get(murl("/v2/app/blobs/" + d.str()));
  EXPECT_EQ(got.status, 200) << got.error;
  EXPECT_EQ(sha256_of(got.body), d);
  ASSERT_EQ(ranges.size(), 2u);
  EXPECT_EQ(ranges[0], "");
  EXPECT_EQ(ranges[1], "bytes=300000-");
  EXPECT_TRUE(store().has(d));
}

}  // namespace
}  // namespace lockstep::registry::testing
