// The fetch record for people and for pins: runs show lines, diff lines,
// lock --fetches pins, verify's unpinned list.
#include "runner/records/fetch_view.hpp"

#include <gtest/gtest.h>

namespace lockstep::runner {
namespace {

const std::string kA = "sha256:" + std::string(64, 'a');
const std::string kB = "sha256:" + std::string(64, 'b');

RecordJson job(const std::string& name, const std::string& sha, bool extra) {
  RecordJson fetches = RecordJson::array();
  fetches.push_back({{"kind", "http"},
                     {"method", "GET"},
                     {"url", "http://files.test/a.tar"},
                     {"status", 200},
                     {"sha256", sha},
                     {"body_bytes", 10}});
  fetches.push_back({{"kind", "connect"},
                     {"host", "files.test"},
                     {"port", 443},
                     {"bytes_out", 5},
                     {"bytes_in", 7}});
  RecordJson conns = RecordJson::array();
  conns.push_back({{"proto", "tcp"},
                   {"address", "10.77.0.10"},
                   {"port", 80},
                   {"host", ""},
                   {"refused", "private range 10.0.0.0/8, not in egress.allow"}});
  if (extra)
    conns.push_back({{"proto", "udp"},
                     {"address", "198.51.100.10"},
                     {"port", 123},
                     {"host", "ntp.test"},
                     {"bytes_out", 48},
                     {"bytes_in", 48}});
  return {{"name", name},
          {"egress", {{"dns", RecordJson::array()}, {"connections", conns}, {"fetches", fetches}}}};
}

TEST(FetchView, RunsShowLines) {
  auto lines = fetch_lines(job("build", kA, true));
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[0], "fetch GET http://files.test/a.tar  200 " + kA + " 10 bytes");
  EXPECT_EQ(lines[1], "fetch CONNECT files.test:443  5 bytes out, 7 in");
  EXPECT_EQ(lines[2],
            "connection tcp 10.77.0.10:80  refused: private range 10.0.0.0/8, not in egress.allow");
  EXPECT_EQ(lines[3], "connection udp ntp.test:123 (198.51.100.10)  48 bytes out, 48 in");
  EXPECT_EQ(lines[4], "0 DNS lookups");
  EXPECT_TRUE(fetch_lines(RecordJson{{"name", "x"}}).empty());
}

TEST(FetchView, DiffNamesAChangedDownloadAndNewDestinations) {
  std::vector<std::string> out;
  diff_fetches("build", job("build", kA, false), job("build", kB, true), out);
  EXPECT_EQ(out, (std::vector<std::string>{
                     "build: fetch http://files.test/a.tar: sha256 " + kA + " -> " + kB,
                     "build: connection udp ntp.test:123: only in B"}));
  out.clear();
  diff_fetches("build", job("build", kA, true), job("build", kA, true), out);
  EXPECT_TRUE(out.empty());
}

TEST(FetchView, PinsFromARecordAndWhatNoPinVouchesFor) {
  RecordJson rec = {{"jobs", RecordJson::array({job("a", kA, false), job("b", kA, true)})}};
  auto pins = pinned_fetches(rec);
  ASSERT_TRUE(pins);
  ASSERT_EQ(pins->size(), 1u);
  EXPECT_EQ((*pins)[0].url, "http://files.test/a.tar");
  EXPECT_EQ((*pins)[0].sha256, kA);
  EXPECT_EQ((*pins)[0].jobs, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(unpinned_fetches(rec),
            (std::vector<std::string>{"CONNECT files.test:443", "http://files.test/a.tar",
                                      "udp ntp.test:123"}));
  RecordJson clash = {{"jobs", RecordJson::array({job("a", kA, false), job("b", kB, false)})}};
  auto bad = pinned_fetches(clash);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(),
            "fetch http://files.test/a.tar came with different bytes in one run (" + kA + " and " +
                kB + "): it cannot be pinned");
}

}  // namespace
}  // namespace lockstep::runner
