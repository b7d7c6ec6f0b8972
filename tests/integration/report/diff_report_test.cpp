// `lockstep diff` and `lockstep report` through the real binary, on records
// written in a private LOCKSTEP_HOME (fixtures shaped as docs/run-record.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>

#include "common/fs.hpp"

#include "tests/support/lockstep_process.hpp"
#include "tests/support/run_record_fixture.hpp"

namespace lockstep::testing {
namespace {

// The lines of `out` that report a difference (indented, with " -> " or
// "only in"), without their indent.
std::vector<std::string> change_lines(const std::string& out) {
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < out.size()) {
    size_t nl = out.find('\n', pos);
    std::string l = out.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? out.size() : nl + 1;
    if (l.rfind("  ", 0) != 0) continue;
    l = l.substr(2);
    if (l.find(" -> ") != std::string::npos || l.find(": only in ") != std::string::npos)
      lines.push_back(l);
  }
  return lines;
}

class DiffReport : public ::testing::Test {
 protected:
  void SetUp() override { write_fixture_run(home_.home(), fixture_record("run-a")); }

  // Writes run-b: the fixture with `change` applied to job `job`'s env_doc.
  void run_b(const std::function<void(RecordDoc&)>& change, size_t job = 0) {
    RecordDoc b = fixture_record("run-b");
    change(b["jobs"][job]["env_doc"]);
    rehash(b["jobs"][job]);
    write_fixture_run(home_.home(), b);
  }

  std::vector<std::string> diff_lines(int want_exit = 1) {
    auto r = home_.lockstep({"diff", "run-a", "run-b"});
    EXPECT_EQ(r.exit_code, want_exit) << r.out << r.err;
    EXPECT_EQ(r.err, "");
    return change_lines(r.out);
  }

  LockstepHome home_;
};

TEST_F(DiffReport, SameRunSaysInputsIdenticalAndExitsZero) {
  write_fixture_run(home_.home(), fixture_record("run-b"));
  auto r = home_.lockstep({"diff", "run-a", "run-b"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("  build (gcc, -O2): inputs identical (env_hash "), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("\nno differences\n"), std::string::npos) << r.out;
}

TEST_F(DiffReport, OneEnvVar) {
  run_b([](RecordDoc& d) { d["env"]["CFLAGS"] = "-O3"; });
  EXPECT_EQ(diff_lines(),
            std::vector<std::string>{"build (gcc, -O2): env.CFLAGS: \"-O2\" -> \"-O3\""});
}

TEST_F(DiffReport, TheImageDigest) {
  run_b([](RecordDoc& d) { d["image"]["manifest_digest"] = fake_digest("image 2"); }, 2);
  EXPECT_EQ(diff_lines(), std::vector<std::string>{"build (clang, -O2): image.manifest_digest: \"" +
                                                   fake_digest("image") + "\" -> \"" +
                                                   fake_digest("image 2") + "\""});
}

TEST_F(DiffReport, TheCommit) {
  RecordDoc b = fixture_record("run-b");
  const std::string c2(40, 'a');
  b["source"]["commit"] = c2;
  for (auto& job : b["jobs"]) {
    job["env_doc"]["source"]["commit"] = c2;
    rehash(job);
  }
  write_fixture_run(home_.home(), b);
  auto lines = diff_lines();
  ASSERT_EQ(lines.size(), 5u);  // one per job, none repeated for the run
  for (const auto& l : lines)
    EXPECT_NE(l.find(": source.commit: \"0123456789abcdef0123456789abcdef01234567\" -> \"" + c2),
              std::string::npos)
        << l;
}

TEST_F(DiffReport, ALimitAndTheNetworkMode) {
  run_b([](RecordDoc& d) { d["container"]["limits"]["pids"] = 128; }, 4);
  EXPECT_EQ(diff_lines(), std::vector<std::string>{"test: container.limits.pids: 512 -> 128"});
  run_b([](RecordDoc& d) { d["container"]["network"] = "host"; }, 1);
  EXPECT_EQ(diff_lines(),
            std::vector<std::string>{"build (gcc, -O3): container.network: \"none\" -> \"host\""});
}

TEST_F(DiffReport, AmbientAndOutputsInTheirOwnSections) {
  RecordDoc b = fixture_record("run-b");
  b["ambient"]["hostname"] = "ci-4";
  b["jobs"][3]["artifacts"][0]["files"][1]["digest"] = fake_digest("readme 2");
  b["jobs"][3]["artifacts"][0]["digest"] = fake_digest("art 2");
  write_fixture_run(home_.home(), b);
  auto r = home_.lockstep({"diff", "run-a", "run-b"});
  EXPECT_EQ(r.exit_code, 1);
  auto amb = r.out.find(
      "ambient (host facts, in no hash):\n  ambient.hostname: \"ci-3\" -> "
      "\"ci-4\" (ambient)\n");
  auto outs = r.out.find("outputs:\n");
  ASSERT_NE(amb, std::string::npos) << r.out;
  ASSERT_NE(outs, std::string::npos) << r.out;
  EXPECT_LT(amb, outs);
  EXPECT_NE(
      r.out.find("  build (clang, -O3): artifact hello-clang: file README: digest: \"" +
                 fake_digest("f2hello-clang") + "\" -> \"" + fake_digest("readme 2") + "\"\n"),
      std::string::npos)
      << r.out;
}

TEST_F(DiffReport, RecordPathsWorkAndBadInputExitsTwoWithOneLine) {
  auto a = home_.home() / "runs" / "run-a" / "record.json";
  auto r = home_.lockstep({"diff", a.string(), a.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;

  auto trunc = home_.write("trunc.json", fixture_record().dump(2).substr(0, 300));
  r = home_.lockstep({"diff", "run-a", trunc.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(
      r.err.rfind("lockstep: error: record " + trunc.string() + ": truncated JSON at line ", 0), 0u)
      << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;

  RecordDoc v2 = fixture_record("run-v2");
  v2["schema"] = "lockstep.run-record/v2";
  auto f = write_fixture_run(home_.home(), v2);
  r = home_.lockstep({"diff", "run-a", "run-v2"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "lockstep: error: record " + f.string() +
                       " has schema version 2; this lockstep reads version 1\n");

  r = home_.lockstep({"diff", "run-a", "no-such-run"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "lockstep: error: no run 'no-such-run' in " + (home_.home() / "runs").string() +
                       " and no file of that name\n");
  r = home_.lockstep({"diff", "run-a"});
  EXPECT_EQ(r.exit_code, 2);
}

TEST_F(DiffReport, ReportWritesOneSelfContainedFileOrStdout) {
  auto out = home_.root() / "report.html";
  auto r = home_.lockstep({"report", "run-a", "--html", out.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto read = read_file(out);
  ASSERT_TRUE(read) << read.error().message();
  const std::string& html = *read;
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("<style>"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  auto s = home_.lockstep({"report", "run-a", "--html", "-"});
  EXPECT_EQ(s.exit_code, 0);
  EXPECT_EQ(s.out, html);

  r = home_.lockstep({"report", "run-a"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "lockstep: error: report needs --html FILE (or --html - for stdout)\n");
  r = home_.lockstep({"report", "nope", "--html", out.string()});
  EXPECT_EQ(r.exit_code, 2);
}

// Two real runs of one workflow, the second with `--env CFLAGS=-O3`: each
// job's inputs differ in that one variable, nothing else of the jobs does.
TEST(DiffRealRuns, OneEnvVarThroughTheCommandLine) {
  if (!is_root()) GTEST_SKIP() << "needs root (containers)";
  LockstepHome home;
  ASSERT_FALSE(home.import_busybox().empty());
  auto wf = home.write("ci.yml", R"(name: envdiff
on: push
env:
  CFLAGS: -O2
jobs:
  build:
    runs-on: x
    container: localhost/busybox:test
    strategy:
      matrix:
        cc: [gcc, clang]
    steps:
      - run: echo "$CFLAGS ${{ matrix.cc }}"
)");
  auto a = home.lockstep({"run", wf.string()});
  ASSERT_EQ(a.exit_code, 0) << a.out << a.err;
  auto b = home.lockstep({"run", wf.string(), "--env", "CFLAGS=-O3"});
  ASSERT_EQ(b.exit_code, 0) << b.out << b.err;
  std::vector<std::string> runs = home.run_ids();  // oldest first
  ASSERT_EQ(runs.size(), 2u);

  auto d = home.lockstep({"diff", runs[0], runs[1]});
  EXPECT_EQ(d.exit_code, 1) << d.out << d.err;
  std::vector<std::string> job_lines;
  for (const auto& l : change_lines(d.out))
    if (l.rfind("build (", 0) == 0) job_lines.push_back(l);
  EXPECT_EQ(job_lines, (std::vector<std::string>{"build (gcc): env.CFLAGS: \"-O2\" -> \"-O3\"",
                                                 "build (clang): env.CFLAGS: \"-O2\" -> \"-O3\""}))
      << d.out;
  EXPECT_NE(d.out.find("  run: options.env.CFLAGS: (absent) -> \"-O3\"\n"), std::string::npos)
      << d.out;

  auto same = home.lockstep({"diff", runs[0], runs[0]});
  EXPECT_EQ(same.exit_code, 0) << same.out;
}

}  // namespace
}  // namespace lockstep::testing
