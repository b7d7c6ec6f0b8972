// `lockstep verify` with two large differing files: the verdict and every
// file's first difference come before diffoscope's details, each of which
// says that it was cut (or ran out of time), and the record keeps them.
#include <gtest/gtest.h>

#include <regex>

#include "common/fs.hpp"
#include "common/json.hpp"
#include "tests/support/lockstep_process.hpp"

namespace lockstep::testing {
namespace {

size_t at(const std::string& s, const std::string& needle) {
  return s.find(needle);
}

TEST(VerifyDiffoscope, VerdictAndFirstDifferencesComeFirstAndCutDetailsSaySo) {
  if (!is_root()) GTEST_SKIP() << "needs root: containers use mount/pid/net namespaces";
  LockstepHome home;
  ASSERT_FALSE(home.import_busybox().empty());
  // 20,000 lines in each file that name the build's host: every line differs
  // between builds, so diffoscope's report is far longer than 64 KiB.
  auto wf = home.write("big/ci.yml", R"yml(name: big
jobs:
  build:
    runs-on: linux
    container: localhost/busybox:test
    steps:
      - run: |
          mkdir -p dist
          h=$(hostname)
          seq 1 20000 | sed "s/$/ built on $h/" > dist/one.txt
          seq 1 20000 | sed "s/^/$h made line /" > dist/two.txt
      - uses: actions/upload-artifact@v4
        with: {name: dist, path: dist}
)yml");
  auto r = home.lockstep(
      {"verify", wf.string(), "--vary", "-dir-order,-uid,-cpus", "--diffoscope-timeout", "60"});
  ASSERT_EQ(r.exit_code, 3) << r.out << r.err;
  const std::string& out = r.out;  // the builds' logs, then what verify found
  size_t verdict = at(out, "\nNOT REPRODUCIBLE: 1 of 1 artifact(s) differ across 2 builds:\n");
  ASSERT_NE(verdict, std::string::npos) << out;
  size_t one = at(out, "  build: artifact 'dist': file one.txt: byte ");
  size_t two = at(out, "  build: artifact 'dist': file two.txt: byte ");
  size_t details =
      at(out, "\ndiffoscope, 60 s and 64 KiB per file (--diffoscope-timeout, --no-diffoscope):\n");
  ASSERT_NE(one, std::string::npos) << out;
  ASSERT_NE(two, std::string::npos) << out;
  ASSERT_NE(details, std::string::npos) << out;
  EXPECT_LT(verdict, one) << "the verdict comes first";
  EXPECT_LT(one, two);
  EXPECT_LT(two, details) << "every first difference comes before diffoscope's details";
  size_t one_details = at(out, "\n  build: artifact 'dist': file one.txt:\n");
  size_t two_details = at(out, "\n  build: artifact 'dist': file two.txt:\n");
  ASSERT_NE(one_details, std::string::npos) << out.substr(details, 2000);
  ASSERT_NE(two_details, std::string::npos) << out.substr(details, 2000);
  EXPECT_LT(details, one_details);
  EXPECT_LT(one_details, two_details);
  // Each file's details end by saying they are incomplete: cut at 64 KiB, or
  // (on a slow machine) out of time; which one may vary, that it is said may not.
  auto said_incomplete = [](const std::string& part) {
    return part.find("[diffoscope report cut at 65536 bytes]\n") != std::string::npos ||
           part.find("details incomplete]\n") != std::string::npos;
  };
  EXPECT_TRUE(said_incomplete(out.substr(one_details, two_details + 1 - one_details)));
  EXPECT_TRUE(said_incomplete(out.substr(two_details)));

  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.err, m, std::regex("verify recorded as run (\\S+) "))) << r.err;
  auto record = Json::parse(*read_file(home.home() / "runs" / std::string(m[1]) / "record.json"));
  const Json& diffs = record["verify"]["differences"];
  ASSERT_EQ(diffs.size(), 2u) << diffs.dump();
  for (const auto& d : diffs) {
    EXPECT_TRUE(d["diffoscope_cut"].get<bool>() || d["diffoscope_timed_out"].get<bool>())
        << d.dump();
    EXPECT_TRUE(said_incomplete(d["diffoscope"].get<std::string>()));
    EXPECT_LE(d["diffoscope"].get<std::string>().size(), 65536u + 200u);
  }
}

}  // namespace
}  // namespace lockstep::testing
