// The image and cache verbs as the CLI runs them: exit codes, what goes to
// stdout, and the one-line errors on stderr. Each call runs in a forked child
// with its own LOCKSTEP_HOME and captured output.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/fs.hpp"
#include "common/json.hpp"
#include "runner/verbs/cmd_cache.hpp"
#include "runner/verbs/cmd_image_local.hpp"

namespace lockstep::runner {
namespace {
namespace fs = std::filesystem;

struct Out {
  int rc = -1;
  std::string out, err;
};

struct Cli : ::testing::Test {
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (unpacking root-owned layers)";
    auto d = TempDir::create(fs::temp_directory_path(), "ls-cli-");
    ASSERT_TRUE(d);
    dir = std::move(*d);
    fs::create_directories(dir.path() / "rootfs/etc");
    ASSERT_TRUE(write_file_atomic(dir.path() / "rootfs/etc/motd", "cli\n"));
  }

  Out run(int (*fn)(const std::vector<std::string>&), std::vector<std::string> args) {
    fs::path o = dir.path() / "stdout", e = dir.path() / "stderr";
    pid_t pid = ::fork();
    if (pid == 0) {
      ::setenv("LOCKSTEP_HOME", (dir.path() / "home").c_str(), 1);
      int fo = ::open(o.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      int fe = ::open(e.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      ::dup2(fo, 1);
      ::dup2(fe, 2);
      int rc = fn(args);
      std::fflush(stdout);
      std::fflush(stderr);
      ::_exit(rc);
    }
    int st = 0;
    ::waitpid(pid, &st, 0);
    Out r;
    r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r.out = read_file(o).value_or("");
    r.err = read_file(e).value_or("");
    return r;
  }
  std::string p(const std::string& s) const { return (dir.path() / s).string(); }
  TempDir dir;
};

TEST_F(Cli, ImportPrintsDigestAloneAndRoundTrips) {
  Out imp = run(cmd_image_import, {p("rootfs"), "--tag", "cli/app:1"});
  ASSERT_EQ(imp.rc, 0) << imp.err;
  ASSERT_EQ(imp.out.size(), 72u) << imp.out;  // "sha256:" + 64 hex + "\n"
  std::string digest = imp.out.substr(0, 71);
  EXPECT_TRUE(digest.starts_with("sha256:"));
  EXPECT_EQ(imp.err, "");

  Out ls = run(cmd_image_ls, {});
  ASSERT_EQ(ls.rc, 0);
  EXPECT_NE(ls.out.find("cli/app:1  " + digest), std::string::npos) << ls.out;
  EXPECT_EQ(run(cmd_image_ls, {"-q"}).out, digest + "\n");

  Out insp = run(cmd_image_inspect, {"cli/app:1"});
  ASSERT_EQ(insp.rc, 0) << insp.err;
  auto j = parse_json(insp.out, "inspect");
  ASSERT_TRUE(j);
  EXPECT_EQ((*j)["manifest"], digest);
  EXPECT_EQ((*j)["platform"], "linux/amd64");
  EXPECT_EQ((*j)["tags"][0], "cli/app:1");
  EXPECT_EQ((*j)["layers"][0]["unpacked"], false);

  ASSERT_EQ(run(cmd_image_export, {"cli/app:1", "--tar", p("app.tar")}).rc, 0);
  Out rm = run(cmd_image_rm, {"cli/app:1"});
  EXPECT_EQ(rm.rc, 0);
  EXPECT_EQ(rm.out, "removed cli/app:1\n");
  Out back = run(cmd_image_import, {p("app.tar")});
  ASSERT_EQ(back.rc, 0) << back.err;
  EXPECT_EQ(back.out, digest + "\n");
  EXPECT_EQ(run(cmd_image_inspect, {"cli/app:1"}).rc, 0);
}

TEST_F(Cli, UsageErrorsAndFailures) {
  Out no_tag = run(cmd_image_import, {p("rootfs")});
  EXPECT_EQ(no_tag.rc, 2);
  EXPECT_EQ(no_tag.err, "lockstep: error: importing a root filesystem (" + p("rootfs") +
                            ") needs --tag NAME\n");
  Out missing = run(cmd_image_import, {p("nope"), "--tag", "x"});
  EXPECT_EQ(missing.rc, 1);
  EXPECT_EQ(missing.err, "lockstep: error: import source " + p("nope") + " does not exist\n");
  Out bad_tag = run(cmd_image_import, {p("rootfs"), "--tag", "Bad"});
  EXPECT_EQ(bad_tag.rc, 2);
  Out unknown = run(cmd_image_inspect, {"nothere"});
  EXPECT_EQ(unknown.rc, 1);
  EXPECT_EQ(unknown.err,
            "lockstep: error: image 'nothere' is not in the local store (see 'lockstep image "
            "ls')\n");
  Out both = run(cmd_image_export, {"x", "--oci", p("o"), "--tar", p("t")});
  EXPECT_EQ(both.rc, 2);
  EXPECT_EQ(both.err,
            "lockstep: error: image export needs exactly one of --oci DIR and --tar FILE\n");
  Out help = run(cmd_image_import, {"--help"});
  EXPECT_EQ(help.rc, 0);
  EXPECT_TRUE(help.out.starts_with("usage: lockstep image import SOURCE [--tag NAME]")) << help.out;
}

TEST_F(Cli, CacheVerbs) {
  ASSERT_EQ(run(cmd_image_import, {p("rootfs"), "--tag", "a"}).rc, 0);
  ASSERT_EQ(run(cmd_image_import, {p("rootfs/etc"), "--tag", "b"}).rc, 0);
  Out du = run(cmd_cache, {"du"});
  ASSERT_EQ(du.rc, 0) << du.err;
  EXPECT_TRUE(du.out.starts_with("blobs        6  ")) << du.out;
  Out ls = run(cmd_cache, {"ls"});
  ASSERT_EQ(ls.rc, 0);
  EXPECT_NE(ls.out.find("a:latest"), std::string::npos);
  ASSERT_EQ(run(cmd_image_rm, {"b"}).rc, 0);
  Out gc = run(cmd_cache, {"gc"});
  ASSERT_EQ(gc.rc, 0) << gc.err;
  EXPECT_TRUE(gc.out.starts_with("removed 3 blobs and 0 layers, freed ")) << gc.out;
  Out evict = run(cmd_cache, {"gc", "--max-size", "1"});
  ASSERT_EQ(evict.rc, 0);
  EXPECT_TRUE(evict.out.starts_with("evicted a:latest\nremoved 3 blobs")) << evict.out;
  Out bad = run(cmd_cache, {"gc", "--max-size", "lots"});
  EXPECT_EQ(bad.rc, 2);
  EXPECT_EQ(bad.err, "lockstep: error: invalid size 'lots' (examples: 500M, 10G, 1073741824)\n");
  Out typo = run(cmd_cache, {"gx"});
  EXPECT_EQ(typo.rc, 2);
  EXPECT_EQ(typo.err,
            "lockstep: error: unknown command 'lockstep cache gx' (did you mean 'gc'?)\n");
  EXPECT_EQ(run(cmd_cache, {"--help"}).rc, 0);
  EXPECT_EQ(run(cmd_cache, {"gc", "--help"}).rc, 0);
}

}  // namespace
}  // namespace lockstep::runner
