// --secret-file and --env-file: dotenv syntax, and the one-line form.
#include <gtest/gtest.h>

#include "runner/verbs/run_options.hpp"

namespace lockstep::runner {
namespace {

pipeline::EnvList parse(const std::string& text) {
  auto r = parse_dotenv(text, "vars.env");
  EXPECT_TRUE(r) << (r ? "" : r.error().message());
  return r ? *r : pipeline::EnvList{};
}

std::string error_of(const std::string& text) {
  auto r = parse_dotenv(text, "vars.env");
  return r ? "(no error)" : r.error().message();
}

TEST(Dotenv, OneLineFormAsBefore) {
  auto v = parse("# comment\nA=1\r\n\nB=x=y\nC=\nD=a#b\n");
  pipeline::EnvList want = {{"A", "1"}, {"B", "x=y"}, {"C", ""}, {"D", "a#b"}};
  EXPECT_EQ(v, want);
}

TEST(Dotenv, ExportBlanksAndComments) {
  auto v = parse("  export TOKEN = abc def   # why\n\texport\tX=1\n  # indented comment\n");
  pipeline::EnvList want = {{"TOKEN", "abc def"}, {"X", "1"}};
  EXPECT_EQ(v, want);
}

TEST(Dotenv, DoubleQuotedSpansLinesWithEscapes) {
  auto v =
      parse("KEY=\"-----BEGIN-----\nline two\n-----END-----\"\nE=\"a\\nb\\t\\\"q\\\" \\\\ \\x\"\n");
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].second, "-----BEGIN-----\nline two\n-----END-----");
  EXPECT_EQ(v[1].second, "a\nb\t\"q\" \\ \\x");
}

TEST(Dotenv, SingleQuotedIsLiteral) {
  auto v = parse("A='$HOME \\n # not a comment'  # a comment\nB='one\ntwo'\n");
  pipeline::EnvList want = {{"A", "$HOME \\n # not a comment"}, {"B", "one\ntwo"}};
  EXPECT_EQ(v, want);
}

TEST(Dotenv, CrlfInsideQuotedValues) {
  auto v = parse("A=\"one\r\ntwo\"\r\nB=2\r\n");
  pipeline::EnvList want = {{"A", "one\ntwo"}, {"B", "2"}};
  EXPECT_EQ(v, want);
}

TEST(Dotenv, LastOneWins) {
  auto v = parse("A=1\nB=2\nA=3\n");
  pipeline::EnvList want = {{"A", "3"}, {"B", "2"}};
  EXPECT_EQ(v, want);
}

TEST(Dotenv, ErrorsNameFileAndLine) {
  EXPECT_EQ(error_of("A=1\nnot a pair\n"), "vars.env:2: expected KEY=VALUE");
  EXPECT_EQ(error_of("=value\n"), "vars.env:1: expected KEY=VALUE");
  EXPECT_EQ(error_of("A=1\n\nKEY=\"open\nstill open\n"),
            "vars.env:3: the value of KEY opens a double-quoted string that never closes");
  EXPECT_EQ(error_of("K='x\n"),
            "vars.env:1: the value of K opens a single-quoted string that never closes");
  EXPECT_EQ(error_of("A=\"one\ntwo\" tail\n"),
            "vars.env:2: unexpected text after the closing quote of A");
  EXPECT_EQ(error_of("MY KEY=1\n"),
            "vars.env:1: invalid name 'MY KEY' (names are letters, digits, '_', '.' and '-')");
}

TEST(Dotenv, TextThatIsNotUtf8IsRefusedWithoutQuotingIt) {
  EXPECT_EQ(error_of("A=1\nTOKEN=s3cr\xC1t\n"), "vars.env:2:11: invalid UTF-8 (byte 0xC1)");
  auto kv = split_key_value("TOKEN=s3cr\xC1t", "secret");
  ASSERT_FALSE(kv);
  EXPECT_EQ(kv.error().message(), "--secret:1:11: invalid UTF-8 (byte 0xC1)");
  EXPECT_EQ(kv.error().kind(), ErrorKind::kUsage);
  EXPECT_TRUE(split_key_value("NAME=caf\xC3\xA9", "env"));
}

}  // namespace
}  // namespace lockstep::runner
