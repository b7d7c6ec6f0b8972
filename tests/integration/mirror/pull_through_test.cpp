// Pull-through under load: one upstream GET per blob and manifest however
// many clients ask at once, clients joining a download midway, and skopeo
// getting the same image through the mirror as directly.
#include <atomic>
#include <mutex>

#include "mirror_fixture.hpp"
#include "nginx_front.hpp"
#include "registry-mirror/manifest.hpp"
#include "tests/support/lockstep_process.hpp"

namespace lockstep::registry::testing {
namespace {

TEST_F(MirrorTest, ThirtyTwoConcurrentColdPullsCauseOneUpstreamGetPerBlobAndManifest) {
  TestImage img = big_image(3, 8u << 20, 7);
  push("app:v1", img);
  start_mirror();
  const auto blobs = blobs_of(img);
  std::atomic<int> ok{0};
  std::mutex mu;
  std::vector<std::string> problems;
  std::vector<std::thread> pulls;
  for (int i = 0; i < 32; ++i) {
    pulls.emplace_back([&, i] {
      auto bad = [&](const std::string& what) {
        std::lock_guard lock(mu);
        problems.push_back("pull " + std::to_string(i) + ": " + what);
      };
      HttpSession s;
      HttpRequest mreq;
      mreq.url = murl("/v2/app/manifests/v1");
      mreq.headers.push_back("Accept: " + manifest_accept_header());
      auto m = s.perform(mreq);
      if (!m || m->status != 200 || m->body != img.manifest.bytes)
        return bad("manifest: " + (m ? std::to_string(m->status) : m.error().message()));
      if (m->header("docker-content-digest") != img.manifest.digest.str())
        return bad("manifest digest header");
      for (const auto& d : blobs) {
        std::string url = murl("/v2/app/blobs/" + d.str());
        if (i % 2 == 0) {  // half the clients HEAD first, as containerd does
          HttpRequest head;
          head.method = "HEAD";
          head.url = url;
          auto h = s.perform(head);
          if (!h || h->status != 200) return bad("HEAD " + d.str());
        }
        auto got = get_hashed(s, url);
        if (got.status != 200 || got.digest != d)
          return bad("blob " + d.str() + ": status " + std::to_string(got.status) + " " +
                     got.error + " got " + got.digest.str());
      }
      ++ok;
    });
  }
  for (auto& t : pulls) t.join();
  EXPECT_TRUE(problems.empty()) << problems.front();
  EXPECT_EQ(ok.load(), 32);
  EXPECT_EQ(registry_->count_requests("GET /v2/app/manifests/v1 "), 1);
  for (const auto& d : blobs)
    EXPECT_EQ(registry_->count_requests("GET /v2/app/blobs/" + d.str()), 1) << d.str();
  for (const auto& d : blobs) {
    ASSERT_TRUE(store().has(d));
    auto on_disk = sha256_of_file(store().path(d));
    ASSERT_TRUE(on_disk);
    EXPECT_EQ(*on_disk, d);
  }
  std::string metrics = http_get(murl("/metrics")).body;
  EXPECT_NE(metrics.find("lockstep_mirror_downloads_in_flight 0\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("lockstep_mirror_waiters 0\n"), std::string::npos);
  EXPECT_NE(metrics.find("lockstep_mirror_upstream_requests_total{upstream=\"local\",kind=\"blob\","
                         "status=\"200\"} 4\n"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("lockstep_mirror_upstream_requests_total{upstream=\"local\",kind="
                         "\"manifest\",status=\"200\"} 1\n"),
            std::string::npos);
  // 32 clients x 4 blobs; half of them HEAD first: 192 blob requests, each a
  // hit or a miss, and every byte counted once fetched.
  EXPECT_NE(metrics.find("lockstep_mirror_hits_total{kind=\"manifest\"}"), std::string::npos);
  uint64_t blob_bytes = 0;
  for (const auto& l : img.layers) blob_bytes += l.bytes.size();
  blob_bytes += img.config.bytes.size();
  EXPECT_EQ(mirror_->metrics().bytes_fetched_total(), blob_bytes);
  EXPECT_GE(mirror_->metrics().bytes_served_total(), 32 * blob_bytes);
}

TEST_F(MirrorTest, ClientJoiningMidDownloadGetsTheWholeBlob) {
  if (!Nginx::available()) GTEST_SKIP() << "needs " << Nginx::kBinary;
  TestImage img = big_image(1, 6u << 20, 11);
  push("app:v1", img);
  NginxOptions o;
  o.proxy_to = registry_->port();
  o.limit_rate = "2m";  // ~3 s for the layer: time for a second client to join
  auto nginx = Nginx::start(o);
  ASSERT_TRUE(nginx) << nginx.error().message();
  start_mirror(nginx->url());
  const Digest d = img.layers[0].digest;
  const uint64_t size = img.layers[0].bytes.size();
  Streamed first;
  std::thread a([&] {
    HttpSession s;
    first = get_hashed(s, murl("/v2/app/blobs/" + d.str()));
  });
  // Wait until the download is under way (polling its state, not a timer).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (mirror_->metrics().bytes_fetched_total() < (1u << 20) &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  uint64_t fetched_at_join = mirror_->metrics().bytes_fetched_total();
  EXPECT_GE(fetched_at_join, 1u << 20);
  EXPECT_LT(fetched_at_join, size);
  EXPECT_EQ(mirror_->metrics().downloads_in_flight.load(), 1);
  HttpSession s;
  Streamed second = get_hashed(s, murl("/v2/app/blobs/" + d.str()));
  a.join();
  EXPECT_EQ(first.status, 200) << first.error;
  EXPECT_EQ(first.digest, d);
  EXPECT_EQ(second.status, 200) << second.error;
  EXPECT_EQ(second.digest, d);
  EXPECT_EQ(second.size, size);
  EXPECT_EQ(nginx->count("\"GET /v2/app/blobs/" + d.str()), 1);
}

TEST_F(MirrorTest, SkopeoCopyThroughTheMirrorMatchesADirectCopy) {
  if (::access("/usr/bin/skopeo", X_OK) != 0) GTEST_SKIP() << "needs /usr/bin/skopeo";
  TestImage img = big_image(2, 1u << 20, 21);
  push("app:v1", img);
  start_mirror();
  auto out = TempDir::create(std::filesystem::temp_directory_path(), "ls-skopeo-");
  ASSERT_TRUE(out);
  auto copy = [&](const std::string& from, const std::string& dir) {
    return lockstep::testing::run_process({"/usr/bin/skopeo", "--insecure-policy", "copy",
                                           "--src-tls-verify=false", "docker://" + from,
                                           "dir:" + (out->path() / dir).string()});
  };
  auto direct = copy(registry_->domain() + "/app:v1", "direct");
  ASSERT_EQ(direct.exit_code, 0) << direct.err;
  auto mirrored = copy("127.0.0.1:" + std::to_string(mirror_->port()) + "/app:v1", "mirrored");
  ASSERT_EQ(mirrored.exit_code, 0) << mirrored.err;
  auto a = read_file(out->path() / "direct" / "manifest.json");
  auto b = read_file(out->path() / "mirrored" / "manifest.json");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, *b);
  EXPECT_EQ(sha256_of(*b), img.manifest.digest);
  for (const auto& d : blobs_of(img)) {
    auto f = sha256_of_file(out->path() / "mirrored" / d.hex());
    ASSERT_TRUE(f) << d.str();
    EXPECT_EQ(*f, d);
  }
}

}  // namespace
}  // namespace lockstep::registry::testing
