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
