// Requests whose bytes are not what a registry client sends: bytes that are
// not UTF-8 (or not ASCII) in the target or a header, and tags that try to
// climb out of the tag records. Each gets an answer, the access log stays one
// JSON document per line, and the mirror goes on serving.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/fd.hpp"
#include "common/fs.hpp"
#include "common/json.hpp"
#include "mirror_fixture.hpp"
#include "registry-mirror/manifest.hpp"
#include "tests/support/quiet_log.hpp"

namespace lockstep::registry::testing {
namespace {

// Sends `request` as is on a fresh connection and returns the status code of
// the answer (0 when there is none).
int raw_status(int port, const std::string& request) {
  UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (!s || ::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return 0;
  if (::send(s.get(), request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size()))
    return 0;
  std::string answer;
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
    if (n <= 0) break;
    answer.append(buf, static_cast<size_t>(n));
  }
  // "HTTP/1.1 400 Bad Request"
  if (answer.rfind("HTTP/1.1 ", 0) != 0 || answer.size() < 12) return 0;
  return std::stoi(answer.substr(9, 3));
}

std::string get(const std::string& target, const std::string& extra_header = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: mirror\r\n" + extra_header +
         "Connection: close\r\n\r\n";
}

TEST_F(MirrorTest, RequestsWithBytesThatAreNotUtf8AreAnsweredAndLogged) {
  start_mirror();
  // A raw byte in the path, in a repository name, in ?ns= (percent-encoded)
  // and in a tag: refused with 400 before anything is looked up.
  EXPECT_EQ(raw_status(mirror_->port(), get("/v2/o\xC1/manifests/v1")), 400);
  EXPECT_EQ(raw_status(mirror_->port(), get("/v2/app/manifests/v\xC1")), 400);
  EXPECT_EQ(raw_status(mirror_->port(), get("/v2/app/manifests/v1?ns=%C1")), 400);
  // A header may carry such bytes (HTTP allows obs-text); the mirror does not
  // read it and serves the request.
  EXPECT_EQ(raw_status(mirror_->port(), get("/v2/", "X-Note: caf\xC1\r\n")), 200);
  EXPECT_EQ(http_get(murl("/v2/")).status, 200);  // still serving

  // The mirror writes a log line after its answer has gone out.
  lockstep::testing::wait_until_log_is_still(state_.path() / "access.log");
  auto log = read_file(state_.path() / "access.log");
  ASSERT_TRUE(log);
  size_t lines = 0, start = 0;
  while (start < log->size()) {
    size_t nl = log->find('\n', start);
    ASSERT_NE(nl, std::string::npos) << "a log line without its newline";
    std::string line = log->substr(start, nl - start);
    auto j = parse_json(line, "access log line");
    ASSERT_TRUE(j) << line;
    EXPECT_TRUE((*j)["target"].is_string()) << line;
    ++lines;
    start = nl + 1;
  }
  EXPECT_EQ(lines, 5u);
}

TEST_F(MirrorTest, ATagIsNeverAPathOutOfTheTagRecords) {
  TestImage img = big_image(1, 1000, 7);
  push("climb:v1", img);
  start_mirror();
  // Sent as is (a URL library would fold the "../" away first). The tag
  // names the file of its tag record, under the state dir's tags/: with
  // enough "../" it would be written at /tmp/<name>.json. (The routing takes
  // the last "/manifests/" of the path, so the tag itself holds none.)
  std::string climb;
  for (int i = 0; i < 16; ++i) climb += "../";
  const std::string name = "lockstep-tag-climb-" + std::to_string(::getpid());
  int status = raw_status(mirror_->port(), get("/v2/climb/manifests/" + climb + "tmp/" + name));
  const std::filesystem::path outside = "/tmp/" + name + ".json";
  bool escaped = std::filesystem::exists(outside);
  if (escaped) {  // leave nothing behind, even when failing
    std::error_code ec;
    std::filesystem::remove(outside, ec);
  }
  EXPECT_FALSE(escaped);
  EXPECT_EQ(status, 400);
  auto ok =
      http_get(murl("/v2/climb/manifests/v1"), "GET", {"Accept: " + manifest_accept_header()});
  EXPECT_EQ(ok.status, 200) << ok.body;
}

}  // namespace
}  // namespace lockstep::registry::testing
