#include "pipeline/diagnostic.hpp"

#include <gtest/gtest.h>

namespace lockstep::pipeline {
namespace {

TEST(Diagnostic, RendersWithoutSourceOrLocation) {
  WorkflowError e{"ci.yml", 0, 0, "the workflow is empty", ""};
  EXPECT_EQ(e.render(), "ci.yml: the workflow is empty");
  e.line = 3;
  e.column = 2;
  EXPECT_EQ(e.render(), "ci.yml:3:2: the workflow is empty");
}

TEST(Diagnostic, CaretKeepsTabsAndWideLineNumbers) {
  Error err = workflow_error("w.yml", "a\n\tkey: 1\n", SourceLoc{2, 3}, "bad");
  EXPECT_EQ(err.message(), "w.yml:2:3: bad\n    2 | \tkey: 1\n      | \t ^");
  std::string source(123456, '\n');
  source += "  x: y\n";
  err = workflow_error("w.yml", source, SourceLoc{123457, 3}, "bad");
  EXPECT_EQ(err.message(), "w.yml:123457:3: bad\n123457 |   x: y\n       |   ^");
  // A line past the end of the text is located but not quoted.
  err = workflow_error("w.yml", "one line", SourceLoc{5, 1}, "bad");
  EXPECT_EQ(err.message(), "w.yml:5:1: bad");
  EXPECT_EQ(err.kind(), ErrorKind::kWorkflow);
}

TEST(Diagnostic, DecodesTheLocation) {
  Error err = workflow_error("dir:with:colons/ci.yml", "jobs:\n  a: 1\n", SourceLoc{2, 3},
                             "expected a mapping for job 'a', got a string");
  EXPECT_EQ(first_line(err),
            "dir:with:colons/ci.yml:2:3: expected a mapping for job 'a', got a string");
  auto d = decode_workflow_error(err);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->file, "dir:with:colons/ci.yml");
  EXPECT_EQ(d->line, 2);
  EXPECT_EQ(d->column, 3);
  EXPECT_EQ(d->message, "expected a mapping for job 'a', got a string");
  EXPECT_EQ(d->source_line, "  a: 1");
  EXPECT_EQ(d->render(), err.message());
  EXPECT_FALSE(decode_workflow_error(Error("ci.yml: no location", 0, ErrorKind::kWorkflow)));
  EXPECT_FALSE(decode_workflow_error(Error("ci.yml:1:1: not a workflow error")));
}

}  // namespace
}  // namespace lockstep::pipeline
