// Path patterns of actions/cache and upload-artifact: globs, ~, confinement.
#include "cache/depcache_paths.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "common/fs.hpp"

namespace lockstep::cache {
namespace {
namespace fs = std::filesystem;

TEST(GlobMatch, StarStaysInOneComponentDoubleStarSpansMany) {
  EXPECT_TRUE(glob_match("/w/*.o", "/w/a.o"));
  EXPECT_FALSE(glob_match("/w/*.o", "/w/d/a.o"));
  EXPECT_TRUE(glob_match("/w/**/*.o", "/w/a.o"));
  EXPECT_TRUE(glob_match("/w/**/*.o", "/w/d/e/a.o"));
  EXPECT_FALSE(glob_match("/w/**/*.o", "/w/d/e/a.c"));
  EXPECT_TRUE(glob_match("/w/**", "/w/d/e"));
  EXPECT_TRUE(glob_match("/w/a?c/[xy]", "/w/abc/y"));
  EXPECT_FALSE(glob_match("/w/a?c/[xy]", "/w/abc/z"));
  EXPECT_TRUE(glob_match("/w/*", "/w/.hidden"));
}

TEST(ResolvePatterns, TildeRelativeAndConfinement) {
  JobDirs dirs{"/jobs/1/ws", "/jobs/1/home"};
  auto r = resolve_patterns({"~/.cargo", "target/**/*.rlib", " !target/tmp ", "/jobs/1/ws/x"}, dirs,
                            true);
  ASSERT_TRUE(r) << r.error().message();
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[0].abs, "/jobs/1/home/.cargo");
  EXPECT_FALSE((*r)[0].has_glob);
  EXPECT_EQ((*r)[1].abs, "/jobs/1/ws/target/**/*.rlib");
  EXPECT_EQ((*r)[1].base, "/jobs/1/ws/target");
  EXPECT_TRUE((*r)[1].has_glob);
  EXPECT_TRUE((*r)[2].exclude);
  EXPECT_EQ((*r)[2].abs, "/jobs/1/ws/target/tmp");
  EXPECT_EQ((*r)[3].abs, "/jobs/1/ws/x");

  auto out = resolve_patterns({"/jobs/1/wsx/file"}, dirs, true);
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().message(),
            "cache path '/jobs/1/wsx/file' is outside the workspace and home");
  auto dots = resolve_patterns({"ws/../../../etc/*"}, dirs, true, "artifact path");
  ASSERT_FALSE(dots);
  EXPECT_EQ(dots.error().message(),
            "artifact path 'ws/../../../etc/*' is outside the workspace and home");
  EXPECT_TRUE(resolve_patterns({"/etc"}, dirs, false));
}

TEST(ExpandPatterns, MatchesExistingPathsSortedMinusExclusions) {
  auto t = TempDir::create(fs::temp_directory_path(), "lockstep-paths-");
  ASSERT_TRUE(t);
  const fs::path ws = t->path();
  for (const char* f : {"a/x.o", "a/b/y.o", "a/b/z.c", "skip/w.o"}) {
    fs::create_directories((ws / f).parent_path());
    std::ofstream(ws / f) << f;
  }
  auto pats = resolve_patterns({"**/*.o", "!skip", "missing"}, {ws, ws / "home"}, true);
  ASSERT_TRUE(pats);
  auto got = expand_patterns(*pats);
  EXPECT_EQ(got, (std::vector<fs::path>{ws / "a/b/y.o", ws / "a/x.o"}));
}

}  // namespace
}  // namespace lockstep::cache
