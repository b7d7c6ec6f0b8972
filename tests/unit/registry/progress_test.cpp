// Progress rendering: plain lines for logs, redrawn lines for terminals.
#include <gtest/gtest.h>

#include <cstdio>

#include "registry-mirror/progress.hpp"

namespace lockstep::registry {
namespace {

std::string render(bool tty, const std::vector<ProgressEvent>& events) {
  char* buf = nullptr;
  size_t len = 0;
  std::FILE* f = ::open_memstream(&buf, &len);
  {
    ProgressRenderer r(f, tty);
    auto sink = r.sink();
    for (const auto& e : events) sink(e);
  }
  std::fclose(f);
  std::string out(buf, len);
  std::free(buf);
  return out;
}

const Digest kA = *Digest::parse("sha256:" + std::string(64, 'a'));
const Digest kB = *Digest::parse("sha256:" + std::string(64, 'b'));

TEST(Progress, HumanBytes) {
  EXPECT_EQ(human_bytes(0), "0 B");
  EXPECT_EQ(human_bytes(1023), "1023 B");
  EXPECT_EQ(human_bytes(1024), "1.0 KiB");
  EXPECT_EQ(human_bytes(12897484), "12.3 MiB");
  EXPECT_EQ(human_bytes(3ull << 30), "3.0 GiB");
}

TEST(Progress, PlainOutputIsOneLinePerEvent) {
  using K = ProgressEvent::Kind;
  std::string out = render(false, {
                                      {K::kResolved, kB, 0, 0, "app:v1"},
                                      {K::kStart, kA, 0, 100, ""},
                                      {K::kBytes, kA, 50, 100, ""},
                                      {K::kRetry, kA, 50, 100, "connection reset"},
                                      {K::kDone, kA, 12897484, 12897484, ""},
                                      {K::kExists, kB, 10, 10, ""},
                                  });
  EXPECT_EQ(out, "app:v1: resolved to sha256:" + std::string(64, 'b') +
                     "\n"
                     "sha256:aaaaaaaaaaaa\u2026 retrying at 50 B: connection reset\n"
                     "sha256:aaaaaaaaaaaa\u2026 downloaded 12.3 MiB\n"
                     "sha256:bbbbbbbbbbbb\u2026 already present\n");
}

TEST(Progress, TerminalOutputRedrawsOneLinePerBlob) {
  using K = ProgressEvent::Kind;
  std::string out = render(true, {
                                     {K::kStart, kA, 0, 2048, ""},
                                     {K::kStart, kB, 0, 4096, ""},
                                     {K::kDone, kA, 2048, 2048, ""},
                                 });
  // The last frame: cursor up over the two lines, each cleared and rewritten.
  std::string last =
      "\x1b[2A\x1b[2Ksha256:aaaaaaaaaaaa\u2026 Download complete 2.0 KiB\n"
      "\x1b[2Ksha256:bbbbbbbbbbbb\u2026 Waiting\n";
  ASSERT_GE(out.size(), last.size());
  EXPECT_EQ(out.substr(out.size() - last.size()), last);
}

}  // namespace
}  // namespace lockstep::registry
