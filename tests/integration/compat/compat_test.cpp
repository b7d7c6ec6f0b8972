// The compatibility suite: one small workflow per documented GitHub Actions
// behaviour (cases/*.yml), each run by the real binary in the busybox image
// and its transcript compared with the expected one beside it (cases/*.out).
// A mismatch prints a unified diff.
//
// A case's leading comments say what it pins and how it runs:
//   # docs: URL          the docs.github.com page (and section) it pins; required
//   # remote: URL        run it from a git repository whose origin is URL
//   # args: ARG ...      more arguments for `lockstep run` ({case} is the
//                        directory of the cases, for files beside them)
//   # image: TAG CMD     also import the busybox image as TAG, with CMD (a
//                        JSON array) as its command: a service to start
//
// The transcript: every line the jobs printed ("[job] text", lockstep's
// image and environment-hash lines left out since they name digests),
// grouped by job in name order, lines of a job in order; then each job's
// result and its steps' outcomes (and conclusions where they differ) from
// the run record, lockstep's own error and warning lines from stderr, and
// the exit code. The test's directory reads "<root>".
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "common/json.hpp"
#include "tests/support/lockstep_process.hpp"

namespace lockstep::testing {
namespace {

namespace fs = std::filesystem;

const fs::path kCases = fs::path(LOCKSTEP_SOURCE_DIR) / "tests/integration/compat/cases";

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

std::vector<std::string> case_names() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(kCases, ec))
    if (e.path().extension() == ".yml") names.push_back(e.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

struct Directives {
  std::vector<std::string> docs, args;
  std::string remote;
  std::vector<std::pair<std::string, std::string>> images;  // tag, command
};

Directives directives(const std::string& workflow) {
  Directives d;
  for (const auto& line : lines_of(workflow)) {
    if (line.rfind("#", 0) != 0) break;
    auto value = [&](const char* key) -> std::optional<std::string> {
      std::string k = std::string("# ") + key + ":";
      if (line.rfind(k, 0) != 0) return std::nullopt;
      std::string v = line.substr(k.size());
      v.erase(0, v.find_first_not_of(' '));
      return v;
    };
    if (auto v = value("docs")) d.docs.push_back(*v);
    if (auto v = value("remote")) d.remote = *v;
    if (auto v = value("image")) {
      auto sp = v->find(' ');
      d.images.emplace_back(v->substr(0, sp), sp == std::string::npos ? "" : v->substr(sp + 1));
    }
    if (auto v = value("args")) {
      std::istringstream in(*v);
      for (std::string a; in >> a;) {
        for (size_t p; (p = a.find("{case}")) != std::string::npos;)
          a.replace(p, 6, kCases.string());
        d.args.push_back(a);
      }
    }
  }
  return d;
}

int git(const fs::path& dir, std::vector<std::string> args) {
  args.insert(args.begin(), {"/usr/bin/git", "-C", dir.string()});
  return run_process(args,
                     {"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t",
                      "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_GLOBAL=/dev/null"})
      .exit_code;
}

std::string transcript(const ProcessOutput& r, const fs::path& record, const fs::path& root) {
  std::map<std::string, std::vector<std::string>> by_job;
  for (const auto& line : lines_of(r.out)) {
    if (line.rfind("JOB ", 0) == 0) break;  // the summary table (durations)
    if (line.empty() || line[0] != '[') continue;
    auto close = line.find("] ");
    if (close == std::string::npos) continue;
    std::string text = line.substr(close + 2);
    if (text.rfind("image ", 0) == 0 || text.rfind("environment hash ", 0) == 0) continue;
    by_job[line.substr(0, close + 1)].push_back(line);
  }
  std::string out;
  for (const auto& [job, lines] : by_job)
    for (const auto& l : lines) out += l + "\n";
  if (!record.empty()) {
    Json rec = Json::parse(slurp(record), nullptr, false);
    std::map<std::string, std::string> results;  // job name -> its lines
    if (rec.is_object() && rec.contains("jobs"))
      for (const auto& j : rec["jobs"]) {
        std::string name = j.value("name", std::string());
        std::string& text = results[name];
        text = "result: " + name + " " + j.value("result", std::string()) + "\n";
        for (const auto& st : j.value("steps", Json::array())) {
          std::string outcome = st.value("outcome", std::string());
          std::string conclusion = st.value("conclusion", std::string());
          text += "  step " + st.value("name", std::string()) + ": " + outcome +
                  (conclusion != outcome ? " (conclusion " + conclusion + ")" : "") + "\n";
        }
      }
    for (const auto& [name, text] : results) out += text;
  }
  for (const auto& line : lines_of(r.err))
    if (line.rfind("lockstep: error:", 0) == 0 || line.rfind("lockstep: warning:", 0) == 0)
      out += line + "\n";
  out += "exit: " + std::to_string(r.exit_code) + "\n";
  // The test's own directory differs per run.
  for (size_t p; (p = out.find(root.string())) != std::string::npos;)
    out.replace(p, root.string().size(), "<root>");
  return out;
}

std::string unified_diff(const LockstepHome& home, const std::string& expected,
                         const std::string& actual) {
  auto e = home.write("expected.out", expected);
  auto a = home.write("actual.out", actual);
  return run_process({"/usr/bin/diff", "-u", "--label", "expected", "--label", "actual", e.string(),
                      a.string()})
      .out;
}

class CompatTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!is_root()) GTEST_SKIP() << "needs root: containers use mount/pid/net namespaces";
    ASSERT_FALSE(home_.import_busybox("localhost/busybox:test").empty()) << "image import failed";
  }
  LockstepHome home_;
};

TEST_P(CompatTest, MatchesGitHub) {
  const std::string name = GetParam();
  const std::string workflow = slurp(kCases / (name + ".yml"));
  const fs::path expected_file = kCases / (name + ".out");

  Directives d = directives(workflow);
  ASSERT_FALSE(d.docs.empty()) << name << ".yml names no docs.github.com page (# docs: URL)";
  for (const auto& url : d.docs) EXPECT_EQ(url.rfind("https://docs.github.com/", 0), 0u) << url;

  for (size_t i = 0; i < d.images.size(); ++i) {
    const auto& [tag, cmd] = d.images[i];
    fs::path layout = home_.root() / ("layout-" + std::to_string(i));
    auto m = run_process(
        {"/usr/bin/python3", std::string(LOCKSTEP_SOURCE_DIR) + "/tests/support/make_oci_image.py",
         (home_.root() / "busybox-rootfs").string(), layout.string(), "--cmd", cmd});
    ASSERT_EQ(m.exit_code, 0) << m.err;
    auto imported = home_.lockstep({"image", "import", layout.string(), "--tag", tag});
    ASSERT_EQ(imported.exit_code, 0) << imported.err;
  }

  // Outside a repository, or in one with the remote the case names.
  fs::path dir = home_.root() / "work" / name;
  fs::path wf = home_.write("work/" + name + "/.github/workflows/" + name + ".yml", workflow);
  if (!d.remote.empty()) {
    ASSERT_EQ(git(dir, {"init", "-q", "-b", "main"}), 0);
    ASSERT_EQ(git(dir, {"remote", "add", "origin", d.remote}), 0);
    ASSERT_EQ(git(dir, {"add", "-A"}), 0);
    ASSERT_EQ(git(dir, {"commit", "-q", "-m", "case"}), 0);
  }
  std::vector<std::string> args = {"run", wf.string()};
  args.insert(args.end(), d.args.begin(), d.args.end());
  auto r = home_.lockstep(args);
  std::string actual = transcript(r, home_.latest_record(), home_.root());
  // Writing a new case: LOCKSTEP_COMPAT_ACTUAL_DIR=DIR keeps each actual
  // transcript there, to be checked against the docs before it becomes the
  // case's .out.
  if (const char* keep = std::getenv("LOCKSTEP_COMPAT_ACTUAL_DIR"); keep && *keep)
    std::ofstream(fs::path(keep) / (name + ".out"), std::ios::binary) << actual;
  ASSERT_TRUE(fs::exists(expected_file)) << "missing " << expected_file;
  std::string expected = slurp(expected_file);
  EXPECT_EQ(expected, actual) << name << ": the transcript differs from " << expected_file.string()
                              << "\n"
                              << unified_diff(home_, expected, actual) << "\nstderr:\n"
                              << r.err;
}

INSTANTIATE_TEST_SUITE_P(Cases, CompatTest, ::testing::ValuesIn(case_names()),
                         [](const ::testing::TestParamInfo<std::string>& param) {
                           std::string n = param.param;
                           for (char& c : n)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

}  // namespace
}  // namespace lockstep::testing
