#include "common/utf8.hpp"

#include <gtest/gtest.h>

#include "common/json.hpp"

namespace lockstep {
namespace {

TEST(Utf8, AcceptsWellFormedText) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii\n\ttab"));
  EXPECT_TRUE(is_valid_utf8(std::string_view("nul\0inside", 10)));
  EXPECT_TRUE(is_valid_utf8("h\xC3\xA9 \xE2\x82\xAC \xF0\x9D\x84\x9E"));  // é € 𝄞
  EXPECT_TRUE(is_valid_utf8("\xEF\xBB\xBFjobs:"));                        // BOM
  EXPECT_TRUE(is_valid_utf8("\xED\x9F\xBF \xEE\x80\x80"));                // U+D7FF, U+E000
  EXPECT_TRUE(is_valid_utf8("\xF4\x8F\xBF\xBF"));                         // U+10FFFF
}

TEST(Utf8, FindsTheFirstIllFormedSequence) {
  struct Case {
    std::string text;
    size_t offset;
  };
  const Case cases[] = {
      {"ab\xC1\x81", 2},         // C0/C1 never start a sequence (overlong ASCII)
      {"\x80", 0},               // a lone continuation byte
      {"x\xE0\x80\x80", 1},      // overlong three-byte form
      {"x\xED\xA0\x80", 1},      // a surrogate (U+D800)
      {"x\xF4\x90\x80\x80", 1},  // above U+10FFFF
      {"x\xF5\x80\x80\x80", 1},  // F5..FF never start a sequence
      {"\xC3\xA9\xE2\x82", 2},   // cut off at the end
      {"\xE2\x82x", 0},          // cut off by ASCII
      {"ok \xC3\xA9 \xFF", 6},   // after valid multi-byte text
  };
  for (const auto& c : cases) {
    auto at = find_invalid_utf8(c.text);
    ASSERT_TRUE(at.has_value()) << c.text;
    EXPECT_EQ(*at, c.offset) << c.text;
  }
}

TEST(Utf8, PositionsCountLinesAndBytes) {
  std::string_view t = "ab\ncd\n\xC3\xA9x";
  EXPECT_EQ(text_position(t, 0).line, 1);
  EXPECT_EQ(text_position(t, 0).column, 1);
  EXPECT_EQ(text_position(t, 4).line, 2);
  EXPECT_EQ(text_position(t, 4).column, 2);
  EXPECT_EQ(text_position(t, 8).line, 3);  // 'x' after the two bytes of é
  EXPECT_EQ(text_position(t, 8).column, 3);
  EXPECT_EQ(text_position(t, 100).column, 4);  // past the end: after the last byte
}

TEST(Utf8, CheckNamesFileLineColumnAndByte) {
  EXPECT_TRUE(check_utf8("jobs:\n  a: 1\n", "ci.yml", ErrorKind::kWorkflow));
  auto st = check_utf8("jobs:\n  build:\n    o\xC1s: 1\n", "ci.yml", ErrorKind::kWorkflow);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message(), "ci.yml:3:6: invalid UTF-8 (byte 0xC1)");
  EXPECT_EQ(st.error().kind(), ErrorKind::kWorkflow);

  auto utf16 = check_utf8(std::string_view("\xFF\xFEj\0o\0", 6), "ci.yml", ErrorKind::kUsage);
  ASSERT_FALSE(utf16);
  EXPECT_EQ(utf16.error().message(),
            "ci.yml:1:1: invalid UTF-8 (byte 0xFF; the file looks like UTF-16)");
  EXPECT_EQ(utf16.error().kind(), ErrorKind::kUsage);
}

TEST(Utf8, YamlTextRefusesWhatYamlDoesNotAllow) {
  EXPECT_TRUE(check_yaml_text("a: b\tc\r\n# caf\xC3\xA9 \xC2\x85 \xEF\xBF\xBD\n", "x.yml",
                              ErrorKind::kWorkflow));
  auto nul = check_yaml_text(std::string_view("\x14\0v: 1\n", 7), "x.yml", ErrorKind::kWorkflow);
  ASSERT_FALSE(nul);
  EXPECT_EQ(nul.error().message(), "x.yml:1:1: control character U+0014 is not allowed in YAML");
  auto del = check_yaml_text("a: 1\nb: \x7F\n", "x.yml", ErrorKind::kUsage);
  ASSERT_FALSE(del);
  EXPECT_EQ(del.error().message(), "x.yml:2:4: control character U+007F is not allowed in YAML");
  EXPECT_EQ(del.error().kind(), ErrorKind::kUsage);
  EXPECT_EQ(check_yaml_text("a: \xC2\x9B", "x.yml", ErrorKind::kUsage).error().message(),
            "x.yml:1:4: control character U+009B is not allowed in YAML");
  EXPECT_EQ(check_yaml_text("a: \xEF\xBF\xBF", "x.yml", ErrorKind::kUsage).error().message(),
            "x.yml:1:4: noncharacter U+FFFF is not allowed in YAML");
  // Invalid UTF-8 is reported as such first.
  EXPECT_EQ(check_yaml_text("\x01\xC1", "x.yml", ErrorKind::kUsage).error().message(),
            "x.yml:1:2: invalid UTF-8 (byte 0xC1)");
}

TEST(Utf8, PrefixNeverEndsInsideACharacter) {
  EXPECT_EQ(utf8_prefix("abc", 5), "abc");
  EXPECT_EQ(utf8_prefix("abc", 2), "ab");
  EXPECT_EQ(utf8_prefix("a\xE2\x82\xAC", 3), "a");  // not half of the euro sign
  EXPECT_EQ(utf8_prefix("a\xE2\x82\xAC", 4), "a\xE2\x82\xAC");
  EXPECT_EQ(utf8_prefix("\xC3\xA9\xC3\xA9", 3), "\xC3\xA9");
}

TEST(Utf8, PrintableKeepsAMessageOnOneLineOfText) {
  EXPECT_EQ(printable("caf\xC3\xA9 'a b'"), "caf\xC3\xA9 'a b'");
  EXPECT_EQ(printable("a\nb\r\tc"), "a\\nb\\r\\tc");
  EXPECT_EQ(printable("\x1B[31mred\x7F"), "\\x1B[31mred\\x7F");
  EXPECT_EQ(printable("csi \xC2\x9B nel \xC2\x85 nbsp \xC2\xA0"),
            "csi \\u009B nel \\u0085 nbsp \xC2\xA0");
  EXPECT_EQ(printable("bad \xDC"), "bad \xEF\xBF\xBD");
}

TEST(Utf8, ReplacesEachMaximalSubpartOnce) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(to_valid_utf8("same \xC3\xA9"), "same \xC3\xA9");
  EXPECT_EQ(to_valid_utf8("a\xC1"
                          "b"),
            "a" + r + "b");
  // A truncated sequence is one subpart; the byte that cut it starts anew.
  EXPECT_EQ(to_valid_utf8("\xF0\x9F\x98"
                          "a"),
            r + "a");
  EXPECT_EQ(to_valid_utf8("\xE2\x82\xE2\x82\xAC"), r + "\xE2\x82\xAC");
  // The Unicode Standard's examples (table 3-8): a surrogate and an
  // overlong form are one replacement per byte.
  EXPECT_EQ(to_valid_utf8("\xED\xA0\x80"), r + r + r);
  EXPECT_EQ(to_valid_utf8("\xC0\xAF"), r + r);
  EXPECT_EQ(to_valid_utf8("\xF4\x90\x80\x80"), r + r + r + r);
  EXPECT_EQ(to_valid_utf8("x\xE2\x82"), "x" + r);
}

TEST(Utf8, ReplacementIsValidAndJsonCanWriteIt) {
  const std::string inputs[] = {"\xC1",         "a\x80\x80z", "\xF0\x9F\x98", "\xED\xBF\xBF\xF5",
                                "\xE0\x9F\x80", "ok"};
  for (const auto& in : inputs) {
    std::string out = to_valid_utf8(in);
    EXPECT_TRUE(is_valid_utf8(out)) << in;
    EXPECT_NO_THROW((void)Json(out).dump()) << in;
    // nlohmann's own replacement makes the same choices.
    EXPECT_EQ(Json(out).dump(), Json(in).dump(-1, ' ', false, Json::error_handler_t::replace))
        << in;
  }
}

}  // namespace
}  // namespace lockstep
