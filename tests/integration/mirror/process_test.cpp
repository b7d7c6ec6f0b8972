// The mirror as its own process: SIGKILL mid-download leaves nothing that
// could be served as a blob; SIGTERM finishes in-flight responses.
#include <sys/wait.h>

#include "mirror_fixture.hpp"
#include "nginx_front.hpp"

namespace lockstep::registry::testing {
namespace {

uint64_t fetched_bytes(const std::string& mirror_url) {
  auto m = http_get(mirror_url + "/metrics");
  const std::string key = "\nlockstep_mirror_bytes_fetched_total ";
  auto pos = m.body.find(key);
  if (pos == std::string::npos) return 0;
  return std::stoull(m.body.substr(pos + key.size()));
}

// Polls the child's counter until the download made progress (state, not time).
bool wait_for_progress(const std::string& mirror_url, uint64_t bytes) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (fetched_bytes(mirror_url) >= bytes) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

TEST_F(MirrorTest, SigkillMidDownloadNeverLeavesAPartialBlobToServe) {
  if (!Nginx::available()) GTEST_SKIP() << "needs " << Nginx::kBinary;
  TestImage img = big_image(1, 4u << 20, 41);
  push("app:v1", img);
  const Digest d = img.layers[0].digest;
  NginxOptions o;
  o.proxy_to = registry_->port();
  o.limit_rate = "1m";
  auto nginx = Nginx::start(o);
  ASSERT_TRUE(nginx) << nginx.error().message();
  auto proc = MirrorProcess::start({state_.path().string(), nginx->url()});
  ASSERT_TRUE(proc) << proc.error().message();
  Fetched cut;
  std::thread client([&] { cut = http_get(proc->url() + "/v2/app/blobs/" + d.str()); });
  bool progressed = wait_for_progress(proc->url(), 256u << 10);
  uint64_t fetched_at_kill = fetched_bytes(proc->url());
  proc->kill(SIGKILL);
  proc->wait();
  client.join();
  ASSERT_TRUE(progressed);
  EXPECT_LT(fetched_at_kill, img.layers[0].bytes.size()) << "killed after the download ended";
  EXPECT_FALSE(cut.error.empty() && cut.status == 200 && sha256_of(cut.body) == d);
  EXPECT_FALSE(store().has(d));
  // The download went to an unnamed temp file: nothing named is left.
  std::error_code ec;
  auto tmp = state_.path() / "tmp";
  if (std::filesystem::exists(tmp)) {
    EXPECT_TRUE(std::filesystem::is_empty(tmp, ec)) << tmp;
  }
  for (const auto& e :
       std::filesystem::directory_iterator(state_.path() / "blobs" / "sha256", ec)) {
    auto on_disk = sha256_of_file(e.path());
    ASSERT_TRUE(on_disk);
    EXPECT_EQ(on_disk->hex(), e.path().filename().string()) << "a stored blob must match its name";
  }

  auto again = MirrorProcess::start({state_.path().string(), "http://" + registry_->domain()});
  ASSERT_TRUE(again) << again.error().message();
  auto full = http_get(again->url() + "/v2/app/blobs/" + d.str());
  EXPECT_EQ(full.status, 200) << full.error;
  EXPECT_EQ(sha256_of(full.body), d);
}

TEST_F(MirrorTest, SigtermFinishesInFlightResponsesThenExits) {
  if (!Nginx::available()) GTEST_SKIP() << "needs " << Nginx::kBinary;
  TestImage img = big_image(1, 3u << 20, 42);
  push("app:v1", img);
  const Digest d = img.layers[0].digest;
  NginxOptions o;
  o.proxy_to = registry_->port();
  o.limit_rate = "2m";
  auto nginx = Nginx::start(o);
  ASSERT_TRUE(nginx) << nginx.error().message();
  auto proc = MirrorProcess::start({state_.path().string(), nginx->url()});
  ASSERT_TRUE(proc) << proc.error().message();
  Fetched got;
  std::thread client([&] { got = http_get(proc->url() + "/v2/app/blobs/" + d.str()); });
  bool progressed = wait_for_progress(proc->url(), 256u << 10);
  uint64_t fetched_at_term = fetched_bytes(proc->url());
  proc->kill(SIGTERM);
  int st = proc->wait();
  client.join();
  ASSERT_TRUE(progressed);
  EXPECT_LT(fetched_at_term, img.layers[0].bytes.size()) << "signalled after the download ended";
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  EXPECT_EQ(got.status, 200) << got.error;
  EXPECT_EQ(sha256_of(got.body), d);
  EXPECT_TRUE(store().has(d));
}

}  // namespace
}  // namespace lockstep::registry::testing
