#include "executor/output.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <utility>
#include <vector>

#include "executor/container.hpp"

namespace lockstep::executor::detail {
namespace {

struct Collected {
  std::vector<std::pair<Stream, std::string>> lines;
  LineSink sink() {
    return [this](Stream s, std::string_view l, auto) { lines.emplace_back(s, std::string(l)); };
  }
};

TEST(LineSplitter, JoinsPiecesAndSplitsLines) {
  Collected c;
  LineSplitter sp(Stream::kStderr);
  auto now = std::chrono::system_clock::now();
  sp.feed("ab", now, c.sink());
  sp.feed("c\nde\n\nf", now, c.sink());
  EXPECT_EQ(c.lines.size(), 3u);
  sp.finish(now, c.sink());
  sp.finish(now, c.sink());  // nothing more
  std::vector<std::pair<Stream, std::string>> want = {{Stream::kStderr, "abc"},
                                                      {Stream::kStderr, "de"},
                                                      {Stream::kStderr, ""},
                                                      {Stream::kStderr, "f"}};
  EXPECT_EQ(c.lines, want);
}

TEST(LineSplitter, CapsEndlessLines) {
  Collected c;
  LineSplitter sp(Stream::kStdout);
  auto now = std::chrono::system_clock::now();
  std::string chunk(LineSplitter::kMaxLine / 2 + 1, 'x');
  sp.feed(chunk, now, c.sink());
  sp.feed(chunk, now, c.sink());
  ASSERT_EQ(c.lines.size(), 1u);
  EXPECT_EQ(c.lines[0].second.size(), LineSplitter::kMaxLine);
  sp.feed("\n", now, c.sink());
  ASSERT_EQ(c.lines.size(), 2u);
  EXPECT_EQ(c.lines[1].second.size(), 2 * chunk.size() - LineSplitter::kMaxLine);
}

TEST(DescribeDuration, WholeSecondsOrMilliseconds) {
  EXPECT_EQ(describe_duration(std::chrono::milliseconds(300)), "300ms");
  EXPECT_EQ(describe_duration(std::chrono::milliseconds(1000)), "1s");
  EXPECT_EQ(describe_duration(std::chrono::milliseconds(1500)), "1500ms");
  EXPECT_EQ(describe_duration(std::chrono::minutes(2)), "120s");
}

}  // namespace
}  // namespace lockstep::executor::detail
