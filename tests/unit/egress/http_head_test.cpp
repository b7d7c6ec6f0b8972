#include "egress/http_head.hpp"

#include <gtest/gtest.h>

namespace lockstep::egress {
namespace {

TEST(HttpHead, ProxyRequestBecomesAnOriginRequest) {
  auto r = parse_request_head(
      "GET http://Files.Test:8080/a/b?c=1 HTTP/1.1\r\nHost: files.test:8080\r\n"
      "Proxy-Connection: keep-alive\r\nAccept: */*\r\n\r\n");
  ASSERT_TRUE(r);
  auto t = parse_target(r->target, false);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->host, "files.test");
  EXPECT_EQ(t->port, 8080);
  EXPECT_EQ(t->path, "/a/b?c=1");
  EXPECT_EQ(t->url(), "http://files.test:8080/a/b?c=1");
  EXPECT_EQ(origin_request(*r, *t),
            "GET /a/b?c=1 HTTP/1.1\r\nHost: files.test:8080\r\nAccept: */*\r\n"
            "Connection: close\r\n\r\n");
}

TEST(HttpHead, ConnectTargetsNeedAPort) {
  auto t = parse_target("[2001:db8::1]:443", true);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->host, "2001:db8::1");
  EXPECT_EQ(t->url(), "[2001:db8::1]:443");
  EXPECT_FALSE(parse_target("files.test", true));
  EXPECT_FALSE(parse_target("files.test:99999", true));
  EXPECT_FALSE(parse_target("https://files.test/", false));  // only CONNECT for TLS
  EXPECT_FALSE(parse_target("http://user@files.test/", false));
}

TEST(HttpHead, TargetsArePrintableAscii) {
  // The URL goes into the job's record and hashes as text.
  EXPECT_TRUE(parse_target("http://files.test/a%C1", false));
  EXPECT_FALSE(parse_target("http://files.test/a\xC1", false));
  EXPECT_FALSE(parse_target("http://fi\xC3\xA9les.test/", false));
  EXPECT_FALSE(parse_target("files.test\x7F:443", true));
  EXPECT_FALSE(parse_target(std::string_view("http://files.test/\0", 19), false));
}

TEST(HttpHead, ResponseStatusAndHeaders) {
  auto r = parse_response_head("HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(header(r->headers, "transfer-encoding"), "chunked");
  EXPECT_FALSE(header(r->headers, "content-length"));
  EXPECT_FALSE(parse_response_head("SSH-2.0-OpenSSH\r\n\r\n"));
}

TEST(HttpHead, ChunkedBodyDecodesAcrossAnySplit) {
  std::string body =
      "4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\n";
  for (size_t split = 0; split <= body.size(); ++split) {
    ChunkedDecoder d;
    std::string out;
    auto sink = [&](std::string_view c) { out += c; };
    ASSERT_TRUE(d.feed(std::string_view(body).substr(0, split), sink));
    ASSERT_TRUE(d.feed(std::string_view(body).substr(split), sink));
    EXPECT_TRUE(d.done());
    EXPECT_EQ(out, "Wikipedia in\r\n\r\nchunks.");
  }
  ChunkedDecoder bad;
  EXPECT_FALSE(bad.feed("zz\r\n", [](std::string_view) {}));
}

// What follows a body in the same read (the next request on a kept-alive
// connection) is not the body's: used() says where the body ended.
TEST(HttpHead, ChunkedBodySaysWhereItEnded) {
  std::string body = "3\r\nabc\r\n0\r\n\r\n";
  std::string next = "GET /next HTTP/1.1\r\n\r\n";
  for (size_t split = 0; split <= body.size(); ++split) {
    ChunkedDecoder d;
    std::string out;
    auto sink = [&](std::string_view c) { out += c; };
    std::string first = body.substr(0, split), rest = body.substr(split) + next;
    ASSERT_TRUE(d.feed(first, sink));
    EXPECT_EQ(d.used(), first.size());
    if (!d.done()) {
      ASSERT_TRUE(d.feed(rest, sink));
      EXPECT_EQ(rest.substr(d.used()), next) << split;
    }
    EXPECT_TRUE(d.done());
    EXPECT_EQ(out, "abc");
  }
}

}  // namespace
}  // namespace lockstep::egress
