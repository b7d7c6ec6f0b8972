#include "pipeline/commands.hpp"

#include <gtest/gtest.h>

namespace lockstep::pipeline {
namespace {

using Props = std::vector<std::pair<std::string, std::string>>;

TEST(WorkflowCommands, ParsesEveryKind) {
  auto c = parse_command("::group::Build the thing");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->name, "group");
  EXPECT_EQ(c->message, "Build the thing");
  EXPECT_TRUE(c->properties.empty());
  c = parse_command("::endgroup::");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->name, "endgroup");
  EXPECT_EQ(c->message, "");
  c = parse_command("::error file=src/a.c,line=3,col=7,endLine=4,title=Bad thing::it broke");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->name, "error");
  EXPECT_EQ(c->properties, (Props{{"file", "src/a.c"},
                                  {"line", "3"},
                                  {"col", "7"},
                                  {"endLine", "4"},
                                  {"title", "Bad thing"}}));
  EXPECT_EQ(c->property("line"), "3");
  EXPECT_EQ(c->property("missing"), std::nullopt);
  EXPECT_EQ(c->message, "it broke");
  c = parse_command("::warning::careful");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->name, "warning");
  EXPECT_EQ(c->message, "careful");
  c = parse_command("::notice title=FYI::note");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->name, "notice");
  EXPECT_EQ(c->property("title"), "FYI");
  c = parse_command("::add-mask::s3cr3t");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->name, "add-mask");
  EXPECT_EQ(c->message, "s3cr3t");
  c = parse_command("  ::debug::indented is still a command");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->name, "debug");
  c = parse_command("::set-output name=x::1");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->name, "set-output");
}

TEST(WorkflowCommands, Escapes) {
  auto c = parse_command("::error file=a%3Ab%2Cc.txt,title=100%25::line1%0Aline2%0D%3A%25");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->property("file"), "a:b,c.txt");
  EXPECT_EQ(c->property("title"), "100%");
  // %3A is only an escape in properties.
  EXPECT_EQ(c->message, "line1\nline2\r%3A%");
  EXPECT_EQ(escape_command_data("50% done\nnext"), "50%25 done%0Anext");
  EXPECT_EQ(escape_command_property("a:b,c%\r"), "a%3Ab%2Cc%25%0D");
  auto round = parse_command("::error title=" + escape_command_property("x: y, z") +
                             "::" + escape_command_data("a\nb%"));
  ASSERT_TRUE(round);
  EXPECT_EQ(round->property("title"), "x: y, z");
  EXPECT_EQ(round->message, "a\nb%");
}

TEST(WorkflowCommands, NotCommands) {
  EXPECT_FALSE(parse_command("plain output"));
  EXPECT_FALSE(parse_command(""));
  EXPECT_FALSE(parse_command(":: no name"));
  EXPECT_FALSE(parse_command("::group"));
  EXPECT_FALSE(parse_command("::::message"));
  EXPECT_FALSE(parse_command("x ::error::not at start"));
  // A property without a value is dropped, as GitHub does.
  auto c = parse_command("::error file=,line=2::m");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->properties, (Props{{"line", "2"}}));
}

TEST(WorkflowCommands, StopCommands) {
  CommandStream s;
  EXPECT_TRUE(s.feed("::group::a"));
  EXPECT_FALSE(s.feed("::stop-commands::pause-42"));
  EXPECT_TRUE(s.stopped());
  EXPECT_FALSE(s.feed("::error::ignored while stopped"));
  EXPECT_FALSE(s.feed("::pause-41::"));
  EXPECT_TRUE(s.stopped());
  EXPECT_FALSE(s.feed("::pause-42::"));
  EXPECT_FALSE(s.stopped());
  auto c = s.feed("::endgroup::");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->name, "endgroup");
}

TEST(GithubFiles, KeyValueAndHeredoc) {
  auto r = parse_key_value_file(
      "a=1\n\nb=x=y\nbody<<EOF\nline 1\n\nline 3\nEOF\nempty<<END\nEND\nc=<<not a heredoc\r\n"
      "d<<x=y\nv\nx=y\n",
      "GITHUB_OUTPUT");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*r, (EnvList{{"a", "1"},
                         {"b", "x=y"},
                         {"body", "line 1\n\nline 3"},
                         {"empty", ""},
                         {"c", "<<not a heredoc"},
                         {"d", "v"}}));
  EXPECT_EQ(parse_key_value_file("", "GITHUB_ENV")->size(), 0u);
  EXPECT_EQ(*parse_key_value_file("A=1\r\nB<<E\r\nx\r\nE\r\n", "GITHUB_ENV"),
            (EnvList{{"A", "1"}, {"B", "x"}}));
}

TEST(GithubFiles, Errors) {
  EXPECT_EQ(parse_key_value_file("a=1\noops\n", "GITHUB_OUTPUT").error().message(),
            "GITHUB_OUTPUT line 2: invalid line 'oops' (expected NAME=VALUE or NAME<<DELIMITER)");
  EXPECT_EQ(parse_key_value_file("=x\n", "GITHUB_ENV").error().message(),
            "GITHUB_ENV line 1: empty name in '=x'");
  EXPECT_EQ(parse_key_value_file("<<EOF\nx\nEOF\n", "GITHUB_ENV").error().message(),
            "GITHUB_ENV line 1: empty name in '<<EOF'");
  EXPECT_EQ(parse_key_value_file("a<<\n", "GITHUB_ENV").error().message(),
            "GITHUB_ENV line 1: empty delimiter in 'a<<'");
  auto r = parse_key_value_file("x=1\nbody<<EOF\nnever closed\n", "GITHUB_OUTPUT");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "GITHUB_OUTPUT line 2: no line 'EOF' ends the value of 'body'");
  EXPECT_EQ(r.error().kind(), ErrorKind::kWorkflow);
}

TEST(GithubFiles, Path) {
  EXPECT_EQ(parse_path_file("/opt/a/bin\n\n/opt/b bin\r\n"),
            (std::vector<std::string>{"/opt/a/bin", "/opt/b bin"}));
}

TEST(GithubFiles, BytesThatAreNotUtf8BecomeReplacementCharacters) {
  // As GitHub's runner decodes these files: outputs and env are text.
  auto r = parse_key_value_file("a=x\xC1y\nb<<E\n\xFF\nE\n", "GITHUB_OUTPUT");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*r, (EnvList{{"a", "x\xEF\xBF\xBDy"}, {"b", "\xEF\xBF\xBD"}}));
  EXPECT_EQ(parse_key_value_file("\xC1oops\n", "GITHUB_ENV").error().message(),
            "GITHUB_ENV line 1: invalid line '\xEF\xBF\xBDoops' (expected NAME=VALUE or "
            "NAME<<DELIMITER)");
  EXPECT_EQ(parse_path_file("/opt/\xC1\n"), (std::vector<std::string>{"/opt/\xEF\xBF\xBD"}));
  auto c = parse_command("::warning file=a\xC1::m\xC1");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->property("file"), "a\xEF\xBF\xBD");
  EXPECT_EQ(c->message, "m\xEF\xBF\xBD");
}

}  // namespace
}  // namespace lockstep::pipeline

namespace lockstep::pipeline {
namespace {

// GitHub's runner still reads the form actions printed before 2019
// (ActionCommand.TryParse): "##[" anywhere in the line, ';' between
// properties, and its own escapes.
TEST(Commands, LegacyFormAsTheRunnerReadsIt) {
  auto c = parse_command("##[set-output name=time;]03:48:41 GMT");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->legacy);
  EXPECT_EQ(c->name, "set-output");
  EXPECT_EQ(c->property("name"), "time");
  EXPECT_EQ(c->message, "03:48:41 GMT");
  c = parse_command("prefix ##[warning file=a%3Bb.c;line=3]bracket%5D and %25");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->name, "warning");
  EXPECT_EQ(c->property("file"), "a;b.c");
  EXPECT_EQ(c->property("line"), "3");
  EXPECT_EQ(c->message, "bracket] and %");
  EXPECT_FALSE(parse_command("##[unterminated"));
  EXPECT_FALSE(parse_command("##[]no name"));
  // The current form wins where both could apply.
  c = parse_command("::notice::see ##[x]");
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->legacy);
  EXPECT_EQ(c->name, "notice");
  EXPECT_EQ(c->message, "see ##[x]");
}

}  // namespace
}  // namespace lockstep::pipeline
