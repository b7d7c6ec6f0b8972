// Comparing one artifact across builds: real files in a real ArtifactStore,
// real compiler output for the ELF section names, the real diffoscope.
#include "runner/records/artifact_compare.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>

#include <gtest/gtest.h>

#include "common/fs.hpp"

namespace lockstep::runner {
namespace {
namespace fs = std::filesystem;

bool on_path(const std::string& exe) {
  const char* path = std::getenv("PATH");
  std::string all = path ? path : "";
  for (size_t b = 0; b <= all.size();) {
    size_t e = all.find(':', b);
    if (e == std::string::npos) e = all.size();
    if (e > b && ::access((all.substr(b, e - b) + "/" + exe).c_str(), X_OK) == 0) return true;
    b = e + 1;
  }
  return false;
}

std::string first_line(const std::string& s) {
  return s.substr(0, s.find('\n'));
}

class ArtifactCompareTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = TempDir::create(fs::temp_directory_path(), "lockstep-compare-");
    ASSERT_TRUE(t) << t.error().message();
    tmp_ = std::move(*t);
  }

  // Uploads `files` (path -> bytes; a leading "x:" in the bytes makes the
  // file executable) as artifact "out" of build number `n`.
  cache::ArtifactInfo build(int n, const std::map<std::string, std::string>& files) {
    fs::path ws = tmp_.path() / ("ws-" + std::to_string(n));
    for (const auto& [path, bytes] : files) {
      fs::create_directories((ws / path).parent_path());
      bool exec = bytes.rfind("x:", 0) == 0;
      std::ofstream(ws / path, std::ios::binary) << (exec ? bytes.substr(2) : bytes);
      ::chmod((ws / path).c_str(), exec ? 0755 : 0644);
    }
    return upload(n, ws);
  }

  cache::ArtifactInfo upload(int n, const fs::path& ws) {
    cache::UploadRequest r;
    r.run_id = "run-" + std::to_string(n);
    r.job = "build";
    r.name = "out";
    r.paths = {ws.string() + "/"};
    r.dirs = {ws, tmp_.path() / "home"};
    auto up = store().upload(r);
    EXPECT_TRUE(up) << (up ? "" : up.error().message());
    return up && up->artifact ? *up->artifact : cache::ArtifactInfo{};
  }

  cache::ArtifactStore store() const { return cache::ArtifactStore(tmp_.path() / "state"); }

  TempDir tmp_;
};

TEST_F(ArtifactCompareTest, IdenticalBuildsHaveNoDifferences) {
  std::map<std::string, std::string> files = {{"bin/tool", "x:tool bytes"}, {"notes.txt", "n\n"}};
  std::vector<cache::ArtifactInfo> builds = {build(1, files), build(2, files), build(3, files)};
  auto d = compare_artifacts(store(), builds, true);
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_TRUE(d->empty());
}

TEST_F(ArtifactCompareTest, OneDifferingByteIsLocatedWithItsContext) {
  std::string a(100, 'A'), b = a;
  b[42] = 'B';
  auto one = build(1, {{"data.bin", a}, {"same.txt", "same"}});
  auto two = build(2, {{"data.bin", b}, {"same.txt", "same"}});
  auto three = build(3, {{"data.bin", a}, {"same.txt", "same"}});
  auto d = compare_artifacts(store(), {one, three, two}, false);
  ASSERT_TRUE(d) << d.error().message();
  ASSERT_EQ(d->size(), 1u);
  const FileDifference& f = (*d)[0];
  EXPECT_EQ(f.artifact, "out");
  EXPECT_EQ(f.path, "data.bin");
  ASSERT_EQ(f.digests.size(), 3u);
  EXPECT_EQ(f.digests[0], one.files[0].digest.str());
  EXPECT_EQ(f.digests[1], f.digests[0]);
  EXPECT_EQ(f.digests[2], two.files[0].digest.str());
  EXPECT_NE(f.digests[2], f.digests[0]);
  EXPECT_EQ(f.first_difference,
            "byte 42 (0x2a): 0x41 vs 0x42 (builds 1 and 3)\n"
            "  build 1 at 0x22: 41 41 41 41 41 41 41 41 [41] 41 41 41 41 41 41 41 41 41 41 41 41 "
            "41 41 41  |AAAAAAAAAAAAAAAAAAAAAAAA|\n"
            "  build 3 at 0x22: 41 41 41 41 41 41 41 41 [42] 41 41 41 41 41 41 41 41 41 41 41 41 "
            "41 41 41  |AAAAAAAABAAAAAAAAAAAAAAA|\n");
  EXPECT_TRUE(f.diffoscope.empty());
}

TEST_F(ArtifactCompareTest, FileMissingInABuild) {
  auto one = build(1, {{"a", "1"}, {"extra/log.txt", "log"}});
  auto two = build(2, {{"a", "1"}});
  auto three = build(3, {{"a", "1"}});
  auto d = compare_artifacts(store(), {one, two, three}, true);
  ASSERT_TRUE(d) << d.error().message();
  ASSERT_EQ(d->size(), 1u);
  EXPECT_EQ((*d)[0].path, "extra/log.txt");
  EXPECT_EQ((*d)[0].first_difference, "missing in builds 2 and 3\n");
  EXPECT_EQ((*d)[0].digests, (std::vector<std::string>{one.files[1].digest.str(), "", ""}));
  EXPECT_TRUE((*d)[0].diffoscope.empty());
}

TEST_F(ArtifactCompareTest, ShorterFileAndModeChange) {
  auto one = build(1, {{"log", "0123456789"}, {"run.sh", "x:#!/bin/sh\n"}});
  auto two = build(2, {{"log", "01234"}, {"run.sh", "#!/bin/sh\n"}});
  auto d = compare_artifacts(store(), {one, two}, false);
  ASSERT_TRUE(d) << d.error().message();
  ASSERT_EQ(d->size(), 2u);
  EXPECT_EQ(first_line((*d)[0].first_difference),
            "build 2 ends at byte 5; the other goes on (builds 1 and 2); sizes 10 vs 5");
  EXPECT_NE((*d)[0].first_difference.find("[end of file]"), std::string::npos);
  EXPECT_EQ((*d)[1].path, "run.sh");
  EXPECT_EQ((*d)[1].first_difference, "mode 0755 vs 0644 (builds 1 and 2); the bytes are equal\n");
}

TEST_F(ArtifactCompareTest, NamesTheElfSectionOfACompiledObject) {
  if (!on_path("gcc")) GTEST_SKIP() << "needs gcc (apt-get install gcc-12)";
  // Two objects that differ only in a constant string of the same length.
  for (int n : {1, 2}) {
    fs::path dir = tmp_.path() / ("ws-" + std::to_string(n));
    fs::create_directories(dir);
    std::ofstream(dir / "stamp.c") << "const char stamp[] = \"built at 10:0" << n << "\";\n"
                                   << "int answer(void) { return 42; }\n";
    std::string cmd =
        "gcc -O2 -c -o '" + (dir / "stamp.o").string() + "' '" + (dir / "stamp.c").string() + "'";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    fs::remove(dir / "stamp.c");
  }
  auto one = upload(1, tmp_.path() / "ws-1");
  auto two = upload(2, tmp_.path() / "ws-2");
  auto d = compare_artifacts(store(), {one, two}, false);
  ASSERT_TRUE(d) << d.error().message();
  ASSERT_EQ(d->size(), 1u);
  EXPECT_EQ((*d)[0].path, "stamp.o");
  std::string head = first_line((*d)[0].first_difference);
  EXPECT_NE(head.find(" in ELF section .rodata: 0x31 vs 0x32 (builds 1 and 2)"), std::string::npos)
      << head;

  fs::path obj = store().file_path(one.files[0].digest);
  EXPECT_EQ(elf_section_at(obj, 0), "ELF header");
  EXPECT_EQ(elf_section_at(obj, static_cast<uint64_t>(fs::file_size(obj)) - 1), "section headers");
  EXPECT_EQ(elf_section_at(obj, 1u << 30), "");
  std::ofstream(tmp_.path() / "text") << "not an ELF file at all, but long enough to have a header "
                                         "of sixty-four bytes";
  EXPECT_EQ(elf_section_at(tmp_.path() / "text", 70), "");
}

class PathGuard {
 public:
  explicit PathGuard(const char* value) : old_(std::getenv("PATH") ? std::getenv("PATH") : "") {
    ::setenv("PATH", value, 1);
  }
  ~PathGuard() { ::setenv("PATH", old_.c_str(), 1); }
  PathGuard(const PathGuard&) = delete;
  PathGuard& operator=(const PathGuard&) = delete;

 private:
  std::string old_;
};

TEST_F(ArtifactCompareTest, DiffoscopeReportWhenOnPath) {
  if (!on_path("diffoscope"))
    GTEST_SKIP() << "needs diffoscope (apt-get install diffoscope-minimal)";
  auto one = build(1, {{"msg.txt", "hello\nworld\n"}});
  auto two = build(2, {{"msg.txt", "hello\nthere\n"}});

  auto with = compare_artifacts(store(), {one, two}, true);
  ASSERT_TRUE(with) << with.error().message();
  ASSERT_EQ(with->size(), 1u);
  const std::string& report = (*with)[0].diffoscope;
  EXPECT_NE(report.find("--- build-1/msg.txt"), std::string::npos) << report;
  EXPECT_NE(report.find("+++ build-2/msg.txt"), std::string::npos) << report;
  EXPECT_NE(report.find("-world"), std::string::npos) << report;
  EXPECT_NE(report.find("+there"), std::string::npos) << report;
  // The staged copies are gone.
  EXPECT_TRUE(fs::is_empty(tmp_.path() / "state/tmp"));

  auto off = compare_artifacts(store(), {one, two}, false);
  ASSERT_TRUE(off);
  EXPECT_TRUE((*off)[0].diffoscope.empty());
  {
    PathGuard no_diffoscope("/nonexistent");
    auto absent = compare_artifacts(store(), {one, two}, true);
    ASSERT_TRUE(absent) << absent.error().message();
    ASSERT_EQ(absent->size(), 1u);
    EXPECT_TRUE((*absent)[0].diffoscope.empty());
    EXPECT_EQ(first_line((*absent)[0].first_difference),
              "byte 6 (0x6): 0x77 vs 0x74 (builds 1 and 2)");
  }
}

TEST_F(ArtifactCompareTest, DiffoscopeOutputIsBounded) {
  if (!on_path("diffoscope"))
    GTEST_SKIP() << "needs diffoscope (apt-get install diffoscope-minimal)";
  std::string a, b;
  for (int i = 0; i < 4000; ++i) {
    a += "line " + std::to_string(i) + " of a\n";
    b += "line " + std::to_string(i) + " of b\n";
  }
  std::ofstream(tmp_.path() / "a") << a;
  std::ofstream(tmp_.path() / "b") << b;
  DiffoscopeBudget budget;
  budget.max_bytes = 1000;
  auto report = diffoscope_report(tmp_.path() / "a", tmp_.path() / "b", budget);
  ASSERT_TRUE(report);
  EXPECT_LE(report->text.size(), 1000u + 100u);
  EXPECT_TRUE(report->cut);
  EXPECT_FALSE(report->failed);
  EXPECT_TRUE(report->text.ends_with("\n[diffoscope report cut at 1000 bytes]\n")) << report->text;
}

// A stand-in for diffoscope, first on PATH: writes its arguments to
// args.txt, then runs `body` (sh).
class FakeDiffoscope {
 public:
  FakeDiffoscope(const fs::path& dir, const std::string& body)
      : dir_(dir), old_(std::getenv("PATH") ? std::getenv("PATH") : "") {
    fs::create_directories(dir);
    std::ofstream(dir / "diffoscope")
        << "#!/bin/sh\necho \"$@\" > '" << (dir / "args.txt").string() << "'\n"
        << body << "\n";
    ::chmod((dir / "diffoscope").c_str(), 0755);
    ::setenv("PATH", (dir.string() + ":" + old_).c_str(), 1);
  }
  ~FakeDiffoscope() { ::setenv("PATH", old_.c_str(), 1); }
  FakeDiffoscope(const FakeDiffoscope&) = delete;
  FakeDiffoscope& operator=(const FakeDiffoscope&) = delete;
  std::string args() const { return read_file(dir_ / "args.txt").value_or(""); }

 private:
  fs::path dir_;
  std::string old_;
};

TEST_F(ArtifactCompareTest, DiffoscopeThatOverrunsItsBudgetIsStoppedAndSaysSo) {
  // Writes the start of a report, then never finishes.
  FakeDiffoscope fake(tmp_.path() / "bin", "echo '--- build-1/lib.a'\nexec sleep 600");
  auto one = build(1, {{"lib.a", std::string(5000, 'a')}});
  auto two = build(2, {{"lib.a", std::string(5000, 'b')}});
  DiffoscopeBudget budget;
  budget.seconds = 1;
  auto d = compare_artifacts(store(), {one, two}, true, budget);
  ASSERT_TRUE(d) << d.error().message();
  ASSERT_EQ(d->size(), 1u);
  const FileDifference& f = (*d)[0];
  EXPECT_EQ(first_line(f.first_difference), "byte 0 (0x0): 0x61 vs 0x62 (builds 1 and 2)");
  EXPECT_TRUE(f.diffoscope_timed_out);
  EXPECT_FALSE(f.diffoscope_cut);
  EXPECT_EQ(f.diffoscope, "--- build-1/lib.a\n[diffoscope stopped after " +
                              std::to_string(budget.stop_after()) + " s: details incomplete]\n");
  EXPECT_EQ(fake.args(),
            "--text - --timeout 1 --max-text-report-size 65536 build-1/lib.a "
            "build-2/lib.a\n");
  EXPECT_TRUE(fs::is_empty(tmp_.path() / "state/tmp"));
}

TEST_F(ArtifactCompareTest, DiffoscopeIsStoppedOnceItsReportIsLongEnough) {
  // An endless report: only stopping it ends the comparison.
  FakeDiffoscope fake(tmp_.path() / "bin", "exec yes 'a line of the report'");
  auto one = build(1, {{"big.bin", "x"}});
  auto two = build(2, {{"big.bin", "y"}});
  DiffoscopeBudget budget;
  budget.max_bytes = 4096;
  budget.seconds = 3600;
  auto d = compare_artifacts(store(), {one, two}, true, budget);
  ASSERT_TRUE(d) << d.error().message();
  const FileDifference& f = (*d)[0];
  EXPECT_TRUE(f.diffoscope_cut);
  EXPECT_FALSE(f.diffoscope_timed_out);
  EXPECT_TRUE(f.diffoscope.starts_with("a line of the report\n")) << f.diffoscope.substr(0, 100);
  EXPECT_TRUE(f.diffoscope.ends_with("\n[diffoscope report cut at 4096 bytes]\n"));
  EXPECT_LE(f.diffoscope.size(), 4096u + 100u);
}

TEST_F(ArtifactCompareTest, DiffoscopesOwnTimeoutMarksTheDetailsIncomplete) {
  FakeDiffoscope fake(tmp_.path() / "bin",
                      "echo '--- build-1/lib.a'\n"
                      "echo '│ │┄ Timeout exceeded; details may be incomplete.'\nexit 1");
  auto one = build(1, {{"lib.a", "1"}});
  auto two = build(2, {{"lib.a", "2"}});
  DiffoscopeBudget budget;
  budget.seconds = 7;
  auto d = compare_artifacts(store(), {one, two}, true, budget);
  ASSERT_TRUE(d) << d.error().message();
  const FileDifference& f = (*d)[0];
  EXPECT_TRUE(f.diffoscope_timed_out);
  EXPECT_FALSE(f.diffoscope_cut);
  EXPECT_TRUE(
      f.diffoscope.ends_with("\n[diffoscope's budget of 7 s ran out: details may be incomplete]\n"))
      << f.diffoscope;
}

TEST_F(ArtifactCompareTest, DiffoscopeThatUsedItsWholeBudgetMayBeIncomplete) {
  // Runs at least its budget of 1 s, then writes a report that is cut before
  // any note of its own timeout could be seen.
  FakeDiffoscope fake(tmp_.path() / "bin", "sleep 1\nexec yes 'a line of the report'");
  auto one = build(1, {{"lib.a", "1"}});
  auto two = build(2, {{"lib.a", "2"}});
  DiffoscopeBudget budget;
  budget.seconds = 1;
  budget.max_bytes = 1024;
  auto d = compare_artifacts(store(), {one, two}, true, budget);
  ASSERT_TRUE(d) << d.error().message();
  const FileDifference& f = (*d)[0];
  EXPECT_TRUE(f.diffoscope_timed_out) << f.diffoscope;
  EXPECT_NE(f.diffoscope.find("details may be incomplete]\n"), std::string::npos) << f.diffoscope;
}

TEST_F(ArtifactCompareTest, DiffoscopeFailureKeepsItsMessage) {
  FakeDiffoscope fake(tmp_.path() / "bin", "echo 'cannot read lib.a' >&2\nexit 2");
  auto one = build(1, {{"lib.a", "1"}});
  auto two = build(2, {{"lib.a", "2"}});
  auto d = compare_artifacts(store(), {one, two}, true);
  ASSERT_TRUE(d) << d.error().message();
  EXPECT_EQ((*d)[0].diffoscope, "[diffoscope failed (exit 2)]\ncannot read lib.a\n");
}

TEST_F(ArtifactCompareTest, NoBuildsIsAnError) {
  auto d = compare_artifacts(store(), {}, false);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().message(), "compare artifacts: no builds given");
}

}  // namespace
}  // namespace lockstep::runner
