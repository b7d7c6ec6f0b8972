// A misbehaving network between the client and a real registry: tampered
// bytes, cut connections, 5xx, 429, redirects, odd media types.
#include <chrono>
#include <condition_variable>

#include "fixture.hpp"
#include "http_proxy.hpp"

namespace lockstep::registry::testing {
namespace {

bool is_blob_get(const ProxyRequest& r, const Digest& d) {
  return r.method == "GET" && r.target.find("/blobs/" + d.str()) != std::string::npos;
}

class ProxyTest : public RegistryTest {
 protected:
  void push_app() {
    img_ = make_image({{file("small", "s")}, {file("big", random_bytes(300000, 42))}},
                      Compression::kNone);
    ASSERT_TRUE(push_image(*client_, ref("app:v1"), img_));
  }
  TestImage img_;
};

TEST_F(ProxyTest, TamperedBlobIsRejectedNamedAndNotStored) {
  push_app();
  const Blob& big = img_.layers[1];
  HttpProxy proxy(registry_->port(), [&](const ProxyRequest& r) {
    ProxyAction a;
    a.tamper = is_blob_get(r, big.digest);
    return a;
  });
  auto r = client_->pull(ref_at(proxy.domain(), "app:v1"), cache::Platform{}, *images_);
  ASSERT_FALSE(r);
  std::string flipped = big.bytes;
  flipped[0] = static_cast<char>(flipped[0] ^ 0x01);
  EXPECT_EQ(r.error().message(), "blob " + big.digest.str() + " from " + proxy.domain() +
                                     "/app: digest mismatch (got " + sha256_of(flipped).str() +
                                     ")");
  EXPECT_EQ(r.error().kind(), ErrorKind::kIntegrity);
  EXPECT_FALSE(images_->blobs().has(big.digest));
  EXPECT_FALSE(images_->blobs().has(sha256_of(flipped)));
  EXPECT_FALSE(images_->resolve(proxy.domain() + "/app:v1"));
  EXPECT_FALSE(images_->blobs().has(img_.manifest.digest));
  // No partial file anywhere in the state dir's blob area or temp dir.
  for (const char* sub : {"blobs/sha256", "tmp"}) {
    auto d = state_.path() / sub;
    if (!std::filesystem::exists(d)) continue;
    for (const auto& e : std::filesystem::directory_iterator(d)) {
      Digest stored = *Digest::parse("sha256:" + e.path().filename().string());
      EXPECT_TRUE(stored == img_.config.digest || stored == img_.layers[0].digest) << e.path();
    }
  }
}

TEST_F(ProxyTest, LayersDownloadInParallel) {
  std::vector<std::vector<TarEntry>> layers;
  for (int i = 0; i < 6; ++i)
    layers.push_back({file("l" + std::to_string(i), random_bytes(1000, i))});
  TestImage img = make_image(layers, Compression::kGzip);
  ASSERT_TRUE(push_image(*client_, ref("wide:v1"), img));
  // Each layer request waits (up to 10 s) until four are in flight at once:
  // a client that fetched one at a time would show a maximum of one.
  std::mutex mu;
  std::condition_variable cv;
  int in_flight = 0, max_in_flight = 0;
  HttpProxy proxy(registry_->port(), [&](const ProxyRequest& r) {
    bool layer = false;
    for (const auto& l : img.layers) layer |= is_blob_get(r, l.digest);
    if (!layer) return ProxyAction{};
    std::unique_lock lock(mu);
    max_in_flight = std::max(max_in_flight, ++in_flight);
    cv.notify_all();
    cv.wait_for(lock, std::chrono::seconds(10), [&] { return max_in_flight >= 4; });
    --in_flight;
    return ProxyAction{};
  });
  auto r = client_->pull(ref_at(proxy.domain(), "wide:v1"), cache::Platform{}, *images_);
  ASSERT_TRUE(r) << r.error().message();
  for (const auto& l : img.layers) EXPECT_TRUE(images_->blobs().has(l.digest));
  std::lock_guard lock(mu);
  EXPECT_EQ(max_in_flight, 4);  // ClientOptions::parallel
}

TEST_F(ProxyTest, InterruptedDownloadResumesWithRange) {
  push_app();
  const Blob& big = img_.layers[1];
  std::mutex mu;
  std::vector<std::string> ranges;
  std::atomic<int> gets{0};
  HttpProxy proxy(registry_->port(), [&](const ProxyRequest& r) {
    ProxyAction a;
    if (!is_blob_get(r, big.digest)) return a;
    std::lock_guard lock(mu);
    ranges.push_back(r.headers.count("range") ? r.headers.at("range") : "");
    if (++gets == 1) a.cut_after = 100000;  // the first attempt dies mid-body
    return a;
  });
  std::vector<ProgressEvent> retries;
  auto r = client_->pull(ref_at(proxy.domain(), "app:v1"), cache::Platform{}, *images_,
                         [&](const ProgressEvent& e) {
                           std::lock_guard lock(mu);
                           if (e.kind == ProgressEvent::Kind::kRetry) retries.push_back(e);
                         });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*images_->blobs().read(big.digest), big.bytes);
  std::lock_guard lock(mu);
  EXPECT_EQ(ranges, (std::vector<std::string>{"", "bytes=100000-"}));
  ASSERT_EQ(retries.size(), 1u);
  EXPECT_EQ(retries[0].bytes, 100000u);
}

TEST_F(ProxyTest, ServerIgnoringRangeRestartsFromZero) {
  push_app();
  const Blob& big = img_.layers[1];
  std::atomic<int> gets{0};
  // Answers the resume with a full 200 body, as a server without Range support does.
  HttpProxy proxy(registry_->port(), [&](const ProxyRequest& r) {
    ProxyAction a;
    if (!is_blob_get(r, big.digest)) return a;
    if (++gets == 1) {
      a.cut_after = 5000;
    } else {
      a.respond =
          HttpProxy::response(200, "OK", {"Content-Type: application/octet-stream"}, big.bytes);
    }
    return a;
  });
  auto r = client_->pull(ref_at(proxy.domain(), "app:v1"), cache::Platform{}, *images_);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*images_->blobs().read(big.digest), big.bytes);
  EXPECT_EQ(gets.load(), 2);
}

TEST_F(ProxyTest, RetriesServerErrorsAndCapsRetryAfter) {
  push_app();
  std::atomic<int> manifest_gets{0}, blob_gets{0};
  HttpProxy proxy(registry_->port(), [&](const ProxyRequest& r) {
    ProxyAction a;
    if (r.target.find("/manifests/") != std::string::npos && ++manifest_gets == 1)
      a.respond = HttpProxy::response(503, "Service Unavailable", {}, "");
    if (is_blob_get(r, img_.layers[0].digest) && ++blob_gets == 1)
      a.respond = HttpProxy::response(429, "Too Many Requests", {"Retry-After: 3600"}, "");
    return a;
  });
  ClientOptions o = quick_options();
  o.retry_after_max = std::chrono::milliseconds(100);
  auto client = RegistryClient::create(o);
  ASSERT_TRUE(client);
  auto start = std::chrono::steady_clock::now();
  auto r = client->pull(ref_at(proxy.domain(), "app:v1"), cache::Platform{}, *images_);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_EQ(manifest_gets.load(), 2);
  EXPECT_EQ(blob_gets.load(), 2);

  // A registry that keeps failing: the last status, after the attempts.
  HttpProxy broken(registry_->port(), [&](const ProxyRequest&) {
    ProxyAction a;
    a.respond =
        HttpProxy::response(500, "Internal Server Error", {"Content-Type: application/json"},
                            R"({"errors":[{"code":"UNKNOWN","message":"storage on fire"}]})");
    return a;
  });
  auto bad = client_->pull(ref_at(broken.domain(), "app:v1"), cache::Platform{}, *images_);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(), "manifest " + broken.domain() + "/app:v1 from " +
                                       broken.domain() + ": HTTP 500 (UNKNOWN: storage on fire)");
  EXPECT_EQ(broken.count("/v2/app/manifests/"), 3);
}

TEST_F(ProxyTest, BlobRedirectToAnotherHostDropsAuthorization) {
  push_app();
  const std::string good = "Basic " + base64_encode("bob:pw");
  std::mutex mu;
  std::vector<std::string> storage_auth;
  // "Blob storage": another origin, which must never see the registry's credentials.
  HttpProxy storage(registry_->port(), [&](const ProxyRequest& r) {
    std::lock_guard lock(mu);
    storage_auth.push_back(r.headers.count("authorization") ? r.headers.at("authorization") : "");
    return ProxyAction{};
  });
  HttpProxy front(registry_->port(), [&](const ProxyRequest& r) -> ProxyAction {
    auto it = r.headers.find("authorization");
    if (it == r.headers.end() || it->second != good)
      return {HttpProxy::response(401, "Unauthorized", {"WWW-Authenticate: Basic realm=\"r\""}, ""),
              false, std::nullopt};
    if (r.method == "GET" && r.target.find("/blobs/") != std::string::npos)
      return {HttpProxy::response(307, "Temporary Redirect",
                                  {"Location: http://" + storage.domain() + r.target}, ""),
              false, std::nullopt};
    return {};
  });
  ClientOptions o = quick_options();
  o.credentials->add(front.domain(), Credentials{"bob", "pw"});
  auto client = RegistryClient::create(o);
  ASSERT_TRUE(client);
  auto r = client->pull(ref_at(front.domain(), "app:v1"), cache::Platform{}, *images_);
  ASSERT_TRUE(r) << r.error().message();
  for (const auto& l : img_.layers) EXPECT_TRUE(images_->blobs().has(l.digest));
  std::lock_guard lock(mu);
  EXPECT_EQ(storage_auth.size(), 3u);  // config + 2 layers
  for (const auto& a : storage_auth) EXPECT_EQ(a, "");
}

TEST_F(ProxyTest, UnknownManifestMediaTypeIsAClearError) {
  HttpProxy proxy(0, [&](const ProxyRequest&) {
    ProxyAction a;
    a.respond = HttpProxy::response(
        200, "OK", {"Content-Type: application/vnd.cncf.helm.chart.content.v1.tar+gzip"},
        R"({"schemaVersion":2})");
    return a;
  });
  auto r = client_->pull(ref_at(proxy.domain(), "chart:v1"), cache::Platform{}, *images_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "manifest " + proxy.domain() +
                                     "/chart:v1: unsupported manifest media type "
                                     "'application/vnd.cncf.helm.chart.content.v1.tar+gzip'");
}

TEST_F(ProxyTest, ManifestWhoseBytesDoNotMatchTheDigestHeaderIsRejected) {
  push_app();
  HttpProxy proxy(registry_->port(), [&](const ProxyRequest& r) {
    ProxyAction a;
    a.tamper = r.target.find("/manifests/") != std::string::npos;
    return a;
  });
  auto r = client_->pull(ref_at(proxy.domain(), "app:v1"), cache::Platform{}, *images_);
  ASSERT_FALSE(r);
  std::string flipped = img_.manifest.bytes;
  flipped[0] = static_cast<char>(flipped[0] ^ 0x01);
  EXPECT_EQ(r.error().message(), "manifest " + proxy.domain() + "/app:v1 from " + proxy.domain() +
                                     ": Docker-Content-Digest " + img_.manifest.digest.str() +
                                     " does not match its bytes (" + sha256_of(flipped).str() +
                                     ")");
}

}  // namespace
}  // namespace lockstep::registry::testing
