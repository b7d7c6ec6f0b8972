// Token and Basic authentication in front of a real registry: the front is a
// proxy thread in the test that demands credentials and serves tokens.
#include <cstdlib>

#include "fixture.hpp"
#include "http_proxy.hpp"

namespace lockstep::registry::testing {
namespace {

const std::string kToken = "tok-4f1c";

// Demands "Bearer <kToken>" on /v2/ paths; serves the token at /token, to
// anyone or only to alice:secret.
struct TokenFront {
  bool need_login = false;
  std::mutex mu;
  std::vector<std::string> token_auth;  // Authorization headers seen at /token
  std::vector<std::string> token_scopes;
  std::unique_ptr<HttpProxy> proxy;

  explicit TokenFront(int upstream, bool login) : need_login(login) {
    proxy =
        std::make_unique<HttpProxy>(upstream, [this](const ProxyRequest& r) { return handle(r); });
  }
  ProxyAction handle(const ProxyRequest& r) {
    auto auth = r.headers.count("authorization") ? r.headers.at("authorization") : "";
    if (r.target.rfind("/token", 0) == 0) {
      {
        std::lock_guard lock(mu);
        token_auth.push_back(auth);
        token_scopes.push_back(r.target);
      }
      if (need_login && auth != "Basic " + base64_encode("alice:secret"))
        return {
            HttpProxy::response(401, "Unauthorized", {"Content-Type: application/json"},
                                R"({"errors":[{"code":"UNAUTHORIZED","message":"bad login"}]})"),
            false, std::nullopt};
      return {HttpProxy::response(200, "OK", {"Content-Type: application/json"},
                                  R"({"token":")" + kToken + R"(","expires_in":300})"),
              false, std::nullopt};
    }
    if (auth != "Bearer " + kToken) {
      std::string challenge = "WWW-Authenticate: Bearer realm=\"http://" + proxy_domain() +
                              "/token\",service=\"test-registry\",scope=\"repository:app:pull\"";
      return {
          HttpProxy::response(401, "Unauthorized", {challenge, "Content-Type: application/json"},
                              R"({"errors":[{"code":"UNAUTHORIZED","message":"token"}]})"),
          false, std::nullopt};
    }
    return {};
  }
  std::string proxy_domain() const { return proxy->domain(); }
};

class AuthTest : public RegistryTest {
 protected:
  void push_app() {
    img_ = make_image({{file("f1", "one")}, {file("f2", "two")}, {file("f3", "three")}},
                      Compression::kGzip);
    ASSERT_TRUE(push_image(*client_, ref("app:v1"), img_));
  }
  TestImage img_;
};

TEST_F(AuthTest, AnonymousBearerTokenIsFetchedOnceAndReused) {
  push_app();
  TokenFront front(registry_->port(), false);
  auto r = client_->pull(ref_at(front.proxy->domain(), "app:v1"), cache::Platform{}, *images_);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->manifest, img_.manifest.digest);
  for (const auto& l : img_.layers) EXPECT_TRUE(images_->blobs().has(l.digest));
  std::lock_guard lock(front.mu);
  ASSERT_EQ(front.token_auth.size(), 1u);  // cached for config and all three layers
  EXPECT_EQ(front.token_auth[0], "");      // anonymous
  EXPECT_EQ(front.token_scopes[0], "/token?service=test-registry&scope=repository%3Aapp%3Apull");
}

TEST_F(AuthTest, BearerTokenWithCredentialsFromDockerConfig) {
  push_app();
  TokenFront front(registry_->port(), true);
  auto dir = TempDir::create(std::filesystem::temp_directory_path(), "ls-docker-config-");
  ASSERT_TRUE(dir);
  auto cfg = dir->path() / "config.json";
  ASSERT_TRUE(write_file_atomic(cfg, R"({"auths":{")" + front.proxy->domain() + R"(":{"auth":")" +
                                         base64_encode("alice:secret") + R"("}}})"));
  ::setenv("DOCKER_CONFIG", dir->path().c_str(), 1);
  ClientOptions o = quick_options();
  o.credentials.reset();  // read $DOCKER_CONFIG/config.json
  auto client = RegistryClient::create(o);
  ::unsetenv("DOCKER_CONFIG");
  ASSERT_TRUE(client) << client.error().message();
  auto r = client->pull(ref_at(front.proxy->domain(), "app:v1"), cache::Platform{}, *images_);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->manifest, img_.manifest.digest);
  std::lock_guard lock(front.mu);
  ASSERT_EQ(front.token_auth.size(), 1u);
  EXPECT_EQ(front.token_auth[0], "Basic " + base64_encode("alice:secret"));
}

TEST_F(AuthTest, TokenRefusedWithoutCredentialsNamesWhatToFix) {
  push_app();
  TokenFront front(registry_->port(), true);
  auto r = client_->pull(ref_at(front.proxy->domain(), "app:v1"), cache::Platform{}, *images_);
  ASSERT_FALSE(r);
  std::string d = front.proxy->domain();
  EXPECT_EQ(r.error().message(),
            "manifest " + d + "/app:v1: authentication for " + d + "/app at http://" + d +
                "/token: HTTP 401 (UNAUTHORIZED: bad login) (no credentials for " + d + " in " +
                CredentialStore::default_path().string() + ")");
  EXPECT_FALSE(images_->blobs().has(img_.layers[0].digest));
}

TEST_F(AuthTest, RevokedTokenIsReplacedOnce) {
  push_app();
  // The front accepts only the newest token it issued; the first pull caches
  // token 1, then the front rotates, and the second pull must get token 2.
  std::mutex mu;
  int issued = 0;
  int valid = 0;
  HttpProxy* self = nullptr;
  HttpProxy front(registry_->port(), [&](const ProxyRequest& r) -> ProxyAction {
    std::lock_guard lock(mu);
    auto auth = r.headers.count("authorization") ? r.headers.at("authorization") : "";
    if (r.target.rfind("/token", 0) == 0) {
      valid = ++issued;
      return {
          HttpProxy::response(200, "OK", {},
                              R"({"token":"t)" + std::to_string(valid) + R"(","expires_in":3600})"),
          false, std::nullopt};
    }
    if (auth != "Bearer t" + std::to_string(valid))
      return {HttpProxy::response(
                  401, "Unauthorized",
                  {"WWW-Authenticate: Bearer realm=\"http://" + self->domain() + "/token\""}, ""),
              false, std::nullopt};
    return {};
  });
  self = &front;
  auto first = client_->pull(ref_at(front.domain(), "app:v1"), cache::Platform{}, *images_);
  ASSERT_TRUE(first) << first.error().message();
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(issued, 1);
    valid = 0;  // revoke everything issued so far
  }
  auto d = client_->resolve_digest(ref_at(front.domain(), "app:v1"));
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ(*d, img_.manifest.digest);
  std::lock_guard lock(mu);
  EXPECT_EQ(issued, 2);
}

TEST_F(AuthTest, BasicChallengeUsesCredentials) {
  push_app();
  const std::string good = "Basic " + base64_encode("bob:pw");
  std::atomic<int> refused{0};
  HttpProxy front(registry_->port(), [&](const ProxyRequest& r) -> ProxyAction {
    auto it = r.headers.find("authorization");
    if (it == r.headers.end() || it->second != good) {
      ++refused;
      return {
          HttpProxy::response(401, "Unauthorized", {"WWW-Authenticate: Basic realm=\"reg\""}, ""),
          false, std::nullopt};
    }
    return {};
  });
  ClientOptions o = quick_options();
  o.credentials->add(front.domain(), Credentials{"bob", "pw"});
  auto client = RegistryClient::create(o);
  ASSERT_TRUE(client);
  auto r = client->pull(ref_at(front.domain(), "app:v1"), cache::Platform{}, *images_);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->manifest, img_.manifest.digest);
  EXPECT_EQ(refused.load(), 1);  // only the first request went without credentials

  // Without credentials: a one-line error that says where they are read from.
  auto anon = client_->pull(ref_at(front.domain(), "app:v1"), cache::Platform{}, *images_);
  ASSERT_FALSE(anon);
  EXPECT_EQ(anon.error().message(), "manifest " + front.domain() + "/app:v1: registry " +
                                        front.domain() +
                                        " requires a login: no credentials for it in " +
                                        CredentialStore::default_path().string());
}

}  // namespace
}  // namespace lockstep::registry::testing
