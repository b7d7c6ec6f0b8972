// WWW-Authenticate parsing, token responses and Docker config credentials.
#include <gtest/gtest.h>

#include <cstdlib>

#include "common/fs.hpp"
#include "registry-mirror/auth.hpp"

namespace lockstep::registry {
namespace {

TEST(Auth, ParsesBearerChallenge) {
  auto cs = parse_www_authenticate(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull")");
  ASSERT_EQ(cs.size(), 1u);
  EXPECT_EQ(cs[0].scheme, "bearer");
  EXPECT_EQ(cs[0].params["realm"], "https://auth.docker.io/token");
  EXPECT_EQ(cs[0].params["service"], "registry.docker.io");
  EXPECT_EQ(cs[0].params["scope"], "repository:library/alpine:pull");
}

TEST(Auth, ParsesSeveralChallengesAndOddSpacing) {
  auto cs = parse_www_authenticate(
      R"(Basic realm="Registry Realm", Bearer  realm = "http://127.0.0.1:1/t" , service=svc,scope="a:b:pull,push" , error="invalid_token")");
  ASSERT_EQ(cs.size(), 2u);
  EXPECT_EQ(cs[0].scheme, "basic");
  EXPECT_EQ(cs[0].params["realm"], "Registry Realm");
  EXPECT_EQ(cs[1].scheme, "bearer");
  EXPECT_EQ(cs[1].params["realm"], "http://127.0.0.1:1/t");
  EXPECT_EQ(cs[1].params["service"], "svc");
  EXPECT_EQ(cs[1].params["scope"], "a:b:pull,push");
  EXPECT_EQ(cs[1].params["error"], "invalid_token");
  EXPECT_EQ(parse_www_authenticate(R"(Basic realm="a\"b")")[0].params["realm"], "a\"b");
  EXPECT_TRUE(parse_www_authenticate("").empty());
}

TEST(Auth, TokenResponses) {
  auto t = parse_token_response(R"({"token":"abc","expires_in":300})");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->value, "abc");
  EXPECT_EQ(t->expires_in.count(), 300);
  auto a = parse_token_response(R"({"access_token":"xyz"})");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->value, "xyz");
  EXPECT_EQ(a->expires_in.count(), 60);
  auto none = parse_token_response(R"({"expires_in":3})");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().message(), "token response has no token");
  EXPECT_FALSE(parse_token_response("not json"));
}

TEST(Auth, Base64RoundTrip) {
  for (std::string s : {"", "a", "ab", "abc", "abcd", "user:p@ss:word", "\xff\x00\x10"}) {
    auto d = base64_decode(base64_encode(s));
    ASSERT_TRUE(d);
    EXPECT_EQ(*d, s);
  }
  EXPECT_EQ(base64_encode("user:pass"), "dXNlcjpwYXNz");
  EXPECT_FALSE(base64_decode("a*b"));
}

TEST(Auth, NormalizesConfigKeys) {
  EXPECT_EQ(normalize_auth_key("https://index.docker.io/v1/"), "docker.io");
  EXPECT_EQ(normalize_auth_key("docker.io"), "docker.io");
  EXPECT_EQ(normalize_auth_key("registry-1.docker.io"), "docker.io");
  EXPECT_EQ(normalize_auth_key("http://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
  EXPECT_EQ(normalize_auth_key("GHCR.io"), "ghcr.io");
}

TEST(Auth, LoadsDockerConfig) {
  auto dir = TempDir::create(std::filesystem::temp_directory_path(), "ls-auth-");
  ASSERT_TRUE(dir);
  auto cfg = dir->path() / "config.json";
  ASSERT_TRUE(write_file_atomic(cfg, R"({"auths":{
    "https://index.docker.io/v1/":{"auth":")" +
                                         base64_encode("hub:secret:x") + R"("},
    "127.0.0.1:5000":{"username":"alice","password":"pw"},
    "empty.example":{}
  },"credsStore":"desktop"})"));
  auto store = CredentialStore::load(cfg);
  ASSERT_TRUE(store) << store.error().message();
  auto hub = store->find("docker.io");
  ASSERT_TRUE(hub);
  EXPECT_EQ(hub->username, "hub");
  EXPECT_EQ(hub->password, "secret:x");
  auto local = store->find("127.0.0.1:5000");
  ASSERT_TRUE(local);
  EXPECT_EQ(local->username, "alice");
  EXPECT_EQ(local->password, "pw");
  EXPECT_FALSE(store->find("127.0.0.1:5001"));
  EXPECT_FALSE(store->find("empty.example"));

  auto missing = CredentialStore::load(dir->path() / "nope.json");
  ASSERT_TRUE(missing);
  EXPECT_FALSE(missing->find("docker.io"));

  ASSERT_TRUE(write_file_atomic(cfg, R"({"auths":{"h":{"auth":"bm9jb2xvbg=="}}})"));
  auto bad = CredentialStore::load(cfg);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(),
            "docker config " + cfg.string() + ": 'auth' for h is not base64 of user:password");
}

TEST(Auth, DefaultPathHonoursDockerConfig) {
  const char* old = std::getenv("DOCKER_CONFIG");
  std::string saved = old ? old : "";
  ::setenv("DOCKER_CONFIG", "/some/dir", 1);
  EXPECT_EQ(CredentialStore::default_path(), std::filesystem::path("/some/dir/config.json"));
  ::unsetenv("DOCKER_CONFIG");
  ::setenv("HOME", "/home/x", 1);
  EXPECT_EQ(CredentialStore::default_path(), std::filesystem::path("/home/x/.docker/config.json"));
  if (old) ::setenv("DOCKER_CONFIG", saved.c_str(), 1);
}

}  // namespace
}  // namespace lockstep::registry
