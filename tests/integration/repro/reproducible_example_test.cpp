// examples/reproducible-c end to end: the compiler image imported into a
// private LOCKSTEP_HOME, the example's workflows run by the real binary from
// a clone-like git repository holding the example at its place in this one,
// and the artifacts of two runs compared.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <set>

#include "cache/artifacts.hpp"
#include "runner/records/artifact_compare.hpp"
#include "tests/integration/repro/repro_fixture.hpp"
#include "tests/support/lockstep_process.hpp"

namespace lockstep::testing {
namespace {
namespace fs = std::filesystem;

bool has(const std::string& s, const std::string& needle) {
  return s.find(needle) != std::string::npos;
}

// "...; run <id>" from the summary line of `lockstep run`.
std::string run_id_of(const std::string& out) {
  size_t at = out.rfind("; run ");
  if (at == std::string::npos) return "";
  size_t b = at + 6, e = out.find_first_of(" \n", b);
  return out.substr(b, e == std::string::npos ? std::string::npos : e - b);
}

class ReproducibleExampleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!is_root()) GTEST_SKIP() << "needs root: containers use mount/pid/net namespaces";
    ASSERT_NO_FATAL_FAILURE(import_compiler_image(home_));
    repo_ = make_repo("lockstep");
  }

  fs::path make_repo(const std::string& name) {
    fs::path repo = home_.root() / name;
    make_example_repo(repo);
    return repo;
  }

  // `lockstep run WORKFLOW` from the repository's root, as a user would.
  ProcessOutput run(const std::string& workflow, const fs::path& repo = {}) {
    return run_process({LOCKSTEP_BINARY, "run", workflow},
                       {"LOCKSTEP_HOME=" + home_.home().string()}, repo.empty() ? repo_ : repo);
  }

  cache::ArtifactInfo artifact(const std::string& run, const std::string& name) {
    cache::ArtifactStore store(home_.home());
    auto a = store.get(run, name);
    EXPECT_TRUE(a) << (a ? "" : a.error().message());
    return a ? *a : cache::ArtifactInfo{};
  }

  // Runs an unreproducible variant twice; both runs pass, and the named file
  // differs. Returns the comparison of the two artifacts.
  runner::FileDifference two_differing_runs(const std::string& workflow, const std::string& name,
                                            bool use_diffoscope = false) {
    auto first = run(workflow);
    EXPECT_EQ(first.exit_code, 0) << first.out << first.err;
    auto second = run(workflow);
    EXPECT_EQ(second.exit_code, 0) << second.out << second.err;
    auto a = artifact(run_id_of(first.out), name);
    auto b = artifact(run_id_of(second.out), name);
    EXPECT_EQ(a.files.size(), 1u);
    EXPECT_EQ(b.files.size(), 1u);
    EXPECT_NE(a.digest, b.digest) << workflow << " gave the same artifact twice";
    auto d = runner::compare_artifacts(cache::ArtifactStore(home_.home()), {a, b}, use_diffoscope);
    EXPECT_TRUE(d) << (d ? "" : d.error().message());
    if (!d || d->size() != 1) {
      ADD_FAILURE() << "expected exactly one differing file";
      return {};
    }
    EXPECT_EQ((*d)[0].path, "wordstat");
    std::printf("%s: %s", workflow.c_str(), (*d)[0].first_difference.c_str());
    return (*d)[0];
  }

  LockstepHome home_;
  fs::path repo_;
};

TEST_F(ReproducibleExampleTest, MatrixBuildsTestsAndUploadsFourArtifactsTheSameTwice) {
  auto t0 = std::chrono::steady_clock::now();
  auto first = run("examples/reproducible-c/ci.yml");
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  EXPECT_TRUE(has(first.out, "4 of 4 jobs passed")) << first.out;
  EXPECT_TRUE(has(first.out, "[build (clang, -O2)] wordstat 1.0 (built 2023-11-14T22:13:20Z"))
      << first.out;
  std::string run1 = run_id_of(first.out);
  cache::ArtifactStore store(home_.home());
  auto listed = store.list(run1);
  ASSERT_TRUE(listed) << listed.error().message();
  std::vector<std::string> names;
  for (const auto& a : *listed) {
    names.push_back(a.name);
    ASSERT_EQ(a.files.size(), 1u) << a.name;
    EXPECT_EQ(a.files[0].path, "wordstat");
    EXPECT_EQ(a.files[0].mode, 0755u);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"wordstat-clang-O0", "wordstat-clang-O2",
                                             "wordstat-gcc-O0", "wordstat-gcc-O2"}));
  // Four different binaries: the cells really differ.
  std::set<std::string> digests;
  for (const auto& a : *listed) digests.insert(a.digest.str());
  EXPECT_EQ(digests.size(), 4u);

  // Built again from a repository of another name (so in another workspace
  // path, /__w/<name>/<name>), every artifact has the same bytes.
  auto second = run("examples/reproducible-c/ci.yml", make_repo("elsewhere"));
  ASSERT_EQ(second.exit_code, 0) << second.out << second.err;
  std::string run2 = run_id_of(second.out);
  ASSERT_NE(run1, run2);
  for (const auto& a : *listed) {
    auto again = artifact(run2, a.name);
    EXPECT_EQ(again.digest, a.digest) << a.name;
    auto d = runner::compare_artifacts(store, {a, again}, false);
    ASSERT_TRUE(d);
    EXPECT_TRUE(d->empty()) << a.name << ": " << (*d)[0].first_difference;
  }
  std::printf("two runs of the 2x2 matrix: %.1f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

TEST_F(ReproducibleExampleTest, EmbeddedBuildPathDiffersBetweenRuns) {
  auto d = two_differing_runs("examples/reproducible-c/unreproducible/embeds-path.yml",
                              "wordstat-embeds-path");
  // The build id is a hash of the binary; what it hashes differs in the
  // debug information, which names the build directory.
  EXPECT_TRUE(has(d.first_difference, "in ELF section .note.gnu.build-id")) << d.first_difference;
  EXPECT_TRUE(has(d.first_difference, "first difference after the build id: byte "))
      << d.first_difference;
  EXPECT_TRUE(has(d.first_difference, "in ELF section .debug")) << d.first_difference;
}

TEST_F(ReproducibleExampleTest, EmbeddedTimeDiffersBetweenRuns) {
  auto d = two_differing_runs("examples/reproducible-c/unreproducible/embeds-time.yml",
                              "wordstat-embeds-time", true);
  EXPECT_TRUE(has(d.first_difference, "first difference after the build id: byte "))
      << d.first_difference;
  EXPECT_TRUE(has(d.first_difference, "in ELF section .rodata")) << d.first_difference;
  // diffoscope (scripts/setup.sh installs it) reads the ELF files with
  // binutils and names the two builds.
  EXPECT_TRUE(has(d.diffoscope, "--- build-1/wordstat")) << d.diffoscope;
  EXPECT_TRUE(has(d.diffoscope, "+++ build-2/wordstat")) << d.diffoscope;
  EXPECT_TRUE(has(d.diffoscope, "readelf")) << d.diffoscope;
}

}  // namespace
}  // namespace lockstep::testing
