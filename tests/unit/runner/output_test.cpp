#include "runner/engine/output.hpp"

#include <cstdlib>

#include <gtest/gtest.h>

namespace lockstep::runner {
namespace {

TEST(Masker, MasksEveryOccurrenceLongestFirst) {
  Masker m;
  m.add("abc");
  m.add("abcdef");
  m.add(" ");
  EXPECT_EQ(m.mask("x abcdef y abc z"), "x *** y *** z");
  EXPECT_EQ(m.mask("nothing here"), "nothing here");
}

TEST(Masker, MultiLineValuesAreMaskedWholeAndLineByLine) {
  Masker m;
  m.add("-----BEGIN KEY-----\n  c2VjcmV0  \r\n-----END KEY-----\n");
  // A step's output reaches the log one line at a time.
  EXPECT_EQ(m.mask("-----BEGIN KEY-----"), "***");
  EXPECT_EQ(m.mask("key: c2VjcmV0 (line two)"), "key: *** (line two)");
  EXPECT_EQ(m.mask("-----END KEY-----"), "***");
  // Where the value appears whole (a report, an error message).
  EXPECT_EQ(m.mask("[-----BEGIN KEY-----\n  c2VjcmV0  \r\n-----END KEY-----\n]"), "[***]");
  // Blank lines of the value are no secrets.
  Masker blank;
  blank.add("one\n\n   \ntwo");
  EXPECT_EQ(blank.mask("one   two"), "***   ***");
}

TEST(Masker, TrimmedValueIsMasked) {
  Masker m;
  m.add("  padded  ");
  EXPECT_EQ(m.mask("value=padded."), "value=***.");
}

TEST(Masker, EncodedFormsAreMasked) {
  Masker m;
  m.add("s3cr3t-v@lue/\"x\"");
  // base64 of the value at each alignment inside a longer encoded text:
  // base64("s3cr3t-v@lue/\"x\"") and base64("a" + value), base64("ab" + value).
  EXPECT_EQ(m.mask("czNjcjN0LXZAbHVlLyJ4Ig=="), "***==");
  EXPECT_EQ(m.mask("YXMzY3IzdC12QGx1ZS8ieCI="), "YXMz***=");
  EXPECT_EQ(m.mask("YWJzM2NyM3QtdkBsdWUvIngi"), "YWJz***");
  // JSON, URI and shell-argument escapes.
  EXPECT_EQ(m.mask(R"({"t":"s3cr3t-v@lue/\"x\""})"), R"({"t":"***"})");
  EXPECT_EQ(m.mask("?t=s3cr3t-v%40lue%2F%22x%22&u=1"), "?t=***&u=1");
  EXPECT_EQ(m.mask(R"(--t "s3cr3t-v@lue/\"x\"")"), R"(--t "***")");
  // A short value's encodings are not masked on their own: they would hide
  // unrelated text.
  Masker shortv;
  shortv.add("ab");
  EXPECT_EQ(shortv.mask("YWI= YW Yg"), "YWI= YW Yg");
}

TEST(Console, PrefixesWholeLines) {
  char* buf = nullptr;
  size_t len = 0;
  FILE* f = open_memstream(&buf, &len);
  {
    Console c(f, false);
    c.line("build (gcc, Release)", "hello");
    c.plain("summary");
  }
  std::fclose(f);
  EXPECT_EQ(std::string(buf, len), "[build (gcc, Release)] hello\nsummary\n");
  std::free(buf);
}

}  // namespace
}  // namespace lockstep::runner
