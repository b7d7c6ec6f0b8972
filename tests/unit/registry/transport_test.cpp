// Transport decisions that need no network: URLs, retry delays, error text.
#include <gtest/gtest.h>

#include <ctime>

#include "registry-mirror/client.hpp"
#include "registry-mirror/transport.hpp"

namespace lockstep::registry {
namespace {

Reference ref(const std::string& s) {
  return *Reference::parse(s);
}

TEST(Transport, PlainHttpOnlyForLoopbackOrInsecure) {
  ClientOptions o;
  o.insecure = {"registry.lan:5000"};
  Transport t(o, CredentialStore{});
  EXPECT_EQ(t.repo_url(ref("alpine")), "https://registry-1.docker.io/v2/library/alpine");
  EXPECT_EQ(t.repo_url(ref("ghcr.io/o/a:1")), "https://ghcr.io/v2/o/a");
  EXPECT_EQ(t.repo_url(ref("127.0.0.1:5000/a")), "http://127.0.0.1:5000/v2/a");
  EXPECT_EQ(t.repo_url(ref("localhost:5000/a")), "http://localhost:5000/v2/a");
  EXPECT_EQ(t.repo_url(ref("[::1]:5000/a")), "http://[::1]:5000/v2/a");
  EXPECT_EQ(t.repo_url(ref("registry.lan:5000/a")), "http://registry.lan:5000/v2/a");
  EXPECT_EQ(t.repo_url(ref("registry.lan:5001/a")), "https://registry.lan:5001/v2/a");
}

TEST(Transport, BackoffDoublesAndIsCapped) {
  ClientOptions o;
  o.backoff_initial = std::chrono::milliseconds(100);
  o.backoff_max = std::chrono::milliseconds(350);
  Transport t(o, CredentialStore{});
  EXPECT_EQ(t.delay(1, nullptr).count(), 100);
  EXPECT_EQ(t.delay(2, nullptr).count(), 200);
  EXPECT_EQ(t.delay(3, nullptr).count(), 350);
  EXPECT_EQ(t.delay(10, nullptr).count(), 350);
}

TEST(Transport, RetryAfterSecondsOrDateIsHonouredAndCapped) {
  ClientOptions o;
  o.retry_after_max = std::chrono::milliseconds(30000);
  Transport t(o, CredentialStore{});
  HttpResponse r;
  r.status = 429;
  r.headers = {{"retry-after", "7"}};
  EXPECT_EQ(t.delay(1, &r).count(), 7000);
  r.headers = {{"retry-after", "3600"}};
  EXPECT_EQ(t.delay(1, &r).count(), 30000);
  // An HTTP date 20 s from now (allow a second of clock movement).
  std::time_t when = std::time(nullptr) + 20;
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", std::gmtime(&when));
  r.headers = {{"retry-after", buf}};
  auto d = t.delay(1, &r).count();
  EXPECT_GE(d, 19000);
  EXPECT_LE(d, 20000);
  // A date in the past: retry now.
  r.headers = {{"retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"}};
  EXPECT_EQ(t.delay(1, &r).count(), 0);
  // Garbage: ordinary backoff.
  r.headers = {{"retry-after", "soon"}};
  EXPECT_EQ(t.delay(1, &r), o.backoff_initial);
}

TEST(Transport, ErrorTexts) {
  HttpResponse r;
  r.status = 404;
  r.body = R"({"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]})";
  Error e = Transport::http_error("blob x", r);
  EXPECT_EQ(e.message(), "blob x: HTTP 404 (BLOB_UNKNOWN: blob unknown to registry)");
  EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
  r.status = 502;
  r.body = "<html>bad gateway</html>";
  EXPECT_EQ(Transport::http_error("m", r).message(), "m: HTTP 502");
  EXPECT_EQ(Transport::http_error("m", r).kind(), ErrorKind::kUnavailable);

  Transport t(ClientOptions{}, CredentialStore{});
  Error refused =
      t.wrap(ref("127.0.0.1:5999/app"),
             Error("Connection refused", ECONNREFUSED, ErrorKind::kUnavailable), "manifest");
  EXPECT_EQ(refused.message(),
            "cannot reach registry 127.0.0.1:5999: Connection refused (is it running?)");
  EXPECT_EQ(refused.errnum(), ECONNREFUSED);
  // Typed: callers (the runner's mirror fallback) test the kind, not the words.
  EXPECT_EQ(refused.kind(), ErrorKind::kUnreachable);
  EXPECT_EQ(t.wrap(ref("127.0.0.1:5999/app"), refused, "again").message(), refused.message());
  // Asked over HTTPS, the registry may be one that speaks plain HTTP.
  EXPECT_EQ(
      t.wrap(ref("registry.internal:5000/app"),
             Error("Connection reset by peer", ECONNRESET, ErrorKind::kUnavailable), "manifest")
          .message(),
      "cannot reach registry registry.internal:5000: Connection reset by peer (is it "
      "running? it was asked over HTTPS; a plain-HTTP registry must be allowed as "
      "insecure)");
  Transport allowed(ClientOptions{.insecure = {"registry.internal:5000"}}, CredentialStore{});
  EXPECT_EQ(allowed
                .wrap(ref("registry.internal:5000/app"),
                      Error("Connection refused", ECONNREFUSED, ErrorKind::kUnavailable), "m")
                .message(),
            "cannot reach registry registry.internal:5000: Connection refused (is it running?)");
  EXPECT_EQ(t.wrap(ref("a"), Error("bad", 0, ErrorKind::kIntegrity), "manifest a").message(),
            "manifest a: bad");
}

TEST(Transport, UrlHelpers) {
  EXPECT_EQ(url_origin("http://127.0.0.1:5000/v2/x"), "http://127.0.0.1:5000");
  EXPECT_EQ(url_origin("https://Example.com/v2/"), "https://example.com:443");
  EXPECT_NE(url_origin("http://a:1/x"), url_origin("http://a:2/x"));
  EXPECT_EQ(url_resolve("http://h:1/v2/a/blobs/uploads/", "/v2/a/blobs/uploads/u1?_state=s"),
            "http://h:1/v2/a/blobs/uploads/u1?_state=s");
  EXPECT_EQ(url_resolve("http://h:1/v2/", "https://other/x"), "https://other/x");
  EXPECT_EQ(url_escape("repository:a/b:pull,push"), "repository%3Aa%2Fb%3Apull%2Cpush");
}

}  // namespace
}  // namespace lockstep::registry
