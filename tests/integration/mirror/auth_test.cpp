// Upstream bearer-token auth through the mirror: the front demands a token,
// the token service demands the upstream's configured credentials.
#include <mutex>

#include "../registry/http_proxy.hpp"
#include "mirror_fixture.hpp"
#include "registry-mirror/auth.hpp"
#include "registry-mirror/manifest.hpp"

namespace lockstep::registry::testing {
namespace {

const std::string kToken = "mirror-tok-77";

TEST_F(MirrorTest, UpstreamBearerTokenWithConfiguredCredentialsIsFetchedOnceAndReused) {
  TestImage img = big_image(2, 20000, 51);
  push("app:v1", img);
  std::mutex mu;
  std::vector<std::string> token_logins;
  int unauthorized = 0;
  std::unique_ptr<HttpProxy> front;
  front = std::make_unique<HttpProxy>(registry_->port(), [&](const ProxyRequest& r) {
    auto auth = r.headers.count("authorization") ? r.headers.at("authorization") : "";
    ProxyAction a;
    if (r.target.rfind("/token", 0) == 0) {
      std::lock_guard lock(mu);
      token_logins.push_back(auth);
      if (auth != "Basic " + base64_encode("alice:secret"))
        a.respond = HttpProxy::response(401, "Unauthorized", {"Content-Type: application/json"},
                                        R"({"errors":[{"code":"UNAUTHORIZED"}]})");
      else
        a.respond = HttpProxy::response(200, "OK", {"Content-Type: application/json"},
                                        R"({"token":")" + kToken + R"(","expires_in":300})");
      return a;
    }
    if (auth != "Bearer " + kToken) {
      std::lock_guard lock(mu);
      ++unauthorized;
      a.respond =
          HttpProxy::response(401, "Unauthorized",
                              {"WWW-Authenticate: Bearer realm=\"http://" + front->domain() +
                                   "/token\",service=\"test\",scope=\"repository:app:pull\"",
                               "Content-Type: application/json"},
                              R"({"errors":[{"code":"UNAUTHORIZED"}]})");
    }
    return a;
  });
  MirrorConfig cfg;
  UpstreamConfig u;
  u.name = "local";
  u.url = "http://" + front->domain();
  u.username = "alice";
  u.password = "secret";
  cfg.upstreams.push_back(u);
  cfg.state_dir = state_.path();
  cfg.access_log = state_.path() / "access.log";
  auto m = InProcessMirror::start(cfg);
  ASSERT_TRUE(m) << m.error().message();
  mirror_ = std::move(*m);

  auto man = http_get(murl("/v2/app/manifests/v1"), "GET", {"Accept: " + manifest_accept_header()});
  EXPECT_EQ(man.status, 200) << man.body;
  EXPECT_EQ(man.body, img.manifest.bytes);
  for (const auto& d : blobs_of(img)) {
    auto b = http_get(murl("/v2/app/blobs/" + d.str()));
    EXPECT_EQ(b.status, 200) << b.body;
    EXPECT_EQ(sha256_of(b.body), d);
  }
  std::lock_guard lock(mu);
  ASSERT_EQ(token_logins.size(), 1u);  // cached for every later request of the scope
  EXPECT_EQ(token_logins[0], "Basic " + base64_encode("alice:secret"));
  EXPECT_EQ(unauthorized, 1);
}

}  // namespace
}  // namespace lockstep::registry::testing
