#include "runner/output.hpp"

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
