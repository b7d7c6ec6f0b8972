#include "runner/cli/cli.hpp"

#include <gtest/gtest.h>

namespace lockstep::runner {
namespace {

CommandLine sample() {
  return CommandLine("lockstep run [WORKFLOW]", "Runs a workflow.",
                     {{"jobs", 'j', true, false, "N", "parallel jobs"},
                      {"env", 0, true, true, "K=V", "set a variable"},
                      {"dry-run", 0, false, false, "", "print the plan"}});
}

TEST(CommandLine, ParsesValuesFlagsAndPositionals) {
  auto r = sample().parse({"ci.yml", "--jobs", "4", "--env=A=1", "--env", "B=2", "--dry-run"});
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->positionals, std::vector<std::string>{"ci.yml"});
  EXPECT_EQ(*r->get("jobs"), "4");
  EXPECT_EQ(r->all("env"), (std::vector<std::string>{"A=1", "B=2"}));
  EXPECT_TRUE(r->has("dry-run"));
  EXPECT_EQ(*sample().parse({"-j", "2"})->get("jobs"), "2");
}

TEST(CommandLine, ErrorsAreSpecific) {
  EXPECT_EQ(sample().parse({"--job", "2"}).error().message(),
            "unknown option '--job' (did you mean '--jobs'?)");
  EXPECT_EQ(sample().parse({"--jobs"}).error().message(), "option '--jobs' needs a value (N)");
  EXPECT_EQ(sample().parse({"--jobs", "1", "--jobs", "2"}).error().message(),
            "option '--jobs' given more than once");
  EXPECT_EQ(sample().parse({"--dry-run=yes"}).error().message(),
            "option '--dry-run' takes no value");
  EXPECT_EQ(sample().parse({"--jobs"}).error().kind(), ErrorKind::kUsage);
  EXPECT_EQ(sample().parse({"--", "--jobs"})->positionals, std::vector<std::string>{"--jobs"});
}

TEST(CommandLine, HelpListsOptions) {
  std::string h = sample().help();
  EXPECT_NE(h.find("usage: lockstep run [WORKFLOW]"), std::string::npos);
  EXPECT_NE(h.find("-j, --jobs N"), std::string::npos);
  // Every description starts in the same column, --help's too.
  EXPECT_NE(h.find("\n  -h, --help                show this help\n"), std::string::npos) << h;
  EXPECT_TRUE(CommandLine::wants_help({"x", "--help"}));
  EXPECT_FALSE(CommandLine::wants_help({"--", "--help"}));
}

TEST(ClosestMatch, SuggestsOnlyNearNames) {
  EXPECT_EQ(closest_match("step", {"steps", "env", "name"}), "steps");
  EXPECT_EQ(closest_match("zzzzzz", {"steps", "env"}), "");
}

}  // namespace
}  // namespace lockstep::runner
