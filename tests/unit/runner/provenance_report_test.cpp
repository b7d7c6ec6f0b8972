// Provenance statements and the HTML report, built from fixture records.
#include <sys/wait.h>

#include <cstdlib>

#include <gtest/gtest.h>

#include "common/fs.hpp"
#include "runner/records/html_report.hpp"
#include "runner/records/provenance.hpp"
#include "runner/records/report.hpp"
#include "tests/support/run_record_fixture.hpp"

namespace lockstep::runner {
namespace {

using testing::fixture_record;
using testing::RecordDoc;

std::string hex(const std::string& digest) {
  return digest.substr(7);
}

TEST(Provenance, StatementCarriesArtifactsDependenciesAndEnvHashes) {
  RecordDoc rec = fixture_record();
  auto st = provenance_statement(Json(rec));
  ASSERT_TRUE(st) << st.error().message();
  const Json& s = *st;
  EXPECT_EQ(s["_type"], "https://in-toto.io/Statement/v1");
  EXPECT_EQ(s["predicateType"], "https://slsa.dev/provenance/v1");
  // hello-gcc and hello-clang once each, each followed by its two files.
  ASSERT_EQ(s["subject"].size(), 6u) << s["subject"].dump();
  EXPECT_EQ(s["subject"][0]["name"], "hello-gcc");
  EXPECT_EQ(s["subject"][0]["digest"]["sha256"], hex(testing::fake_digest("artifact hello-gcc")));
  EXPECT_EQ(s["subject"][1]["name"], "hello-gcc/hello");
  EXPECT_EQ(s["subject"][1]["digest"]["sha256"], hex(testing::fake_digest("f1hello-gcc")));
  EXPECT_EQ(s["subject"][2]["name"], "hello-gcc/README");
  EXPECT_EQ(s["subject"][3]["name"], "hello-clang");
  EXPECT_EQ(s["subject"][5]["digest"]["sha256"], hex(testing::fake_digest("f2hello-clang")));
  const Json& bd = s["predicate"]["buildDefinition"];
  EXPECT_EQ(bd["buildType"], "https://lockstep.dev/buildtypes/workflow/v1");
  EXPECT_EQ(bd["externalParameters"]["workflow"]["path"], ".github/workflows/ci.yml");
  EXPECT_EQ(bd["externalParameters"]["workflow"]["digest"]["sha256"],
            hex(testing::fake_digest("workflow")));
  ASSERT_EQ(bd["resolvedDependencies"].size(), 2u);
  EXPECT_EQ(bd["resolvedDependencies"][0]["uri"],
            "git+file:///src/project@0123456789abcdef0123456789abcdef01234567");
  EXPECT_EQ(bd["resolvedDependencies"][0]["digest"]["gitCommit"],
            "0123456789abcdef0123456789abcdef01234567");
  EXPECT_EQ(bd["resolvedDependencies"][1]["uri"], "oci://localhost/busybox:test");
  EXPECT_EQ(bd["resolvedDependencies"][1]["digest"]["sha256"], hex(testing::fake_digest("image")));
  const Json& rd = s["predicate"]["runDetails"];
  EXPECT_EQ(rd["builder"]["id"], "https://lockstep.dev/builder/run@testhost");
  EXPECT_EQ(rd["metadata"]["invocationId"], "20261128-100015.123-3fa2");
  EXPECT_EQ(rd["metadata"]["startedOn"], "2026-11-28T10:00:15.123Z");
  EXPECT_EQ(rd["metadata"]["finishedOn"], "2026-11-28T10:00:17.456Z");
  ASSERT_EQ(rd["byproducts"].size(), 5u);
  EXPECT_EQ(rd["byproducts"][0]["name"], "env-hash/build (gcc, -O2)");
  EXPECT_EQ(rd["byproducts"][0]["digest"]["sha256"],
            hex(rec["jobs"][0]["env_hash"].get<std::string>()));
}

TEST(Provenance, BuilderIdFollowsTheRecordKind) {
  RecordDoc rec = fixture_record();
  rec["kind"] = "verify";
  rec["builder_id"] = "https://lockstep.dev/builder/verify@testhost";
  auto st = provenance_statement(Json(rec));
  ASSERT_TRUE(st);
  EXPECT_EQ((*st)["predicate"]["runDetails"]["builder"]["id"],
            "https://lockstep.dev/builder/verify@testhost");
  EXPECT_EQ((*st)["predicate"]["buildDefinition"]["internalParameters"]["kind"], "verify");
}

TEST(Provenance, RefusesABadDigestNamingTheField) {
  RecordDoc rec = fixture_record();
  rec["jobs"][1]["image"]["manifest_digest"] = "sha256:nothex";
  auto st = provenance_statement(Json(rec));
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message(),
            "provenance: jobs[1].image.manifest_digest is not a sha256 digest: \"sha256:nothex\"");
  rec = fixture_record();
  rec["jobs"][0]["artifacts"][0]["files"][1]["digest"] = "md5:abc";
  st = provenance_statement(Json(rec));
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message(),
            "provenance: jobs[0].artifacts.hello-gcc/README is not a sha256 digest: \"md5:abc\"");
}

TEST(Provenance, WrittenFileValidatesAgainstStatementAndSlsaSchemas) {
  if (::access("/usr/bin/python3", X_OK) != 0 ||
      std::system("/usr/bin/python3 -c 'import jsonschema' 2>/dev/null") != 0)
    GTEST_SKIP() << "needs /usr/bin/python3 with jsonschema (Debian python3-jsonschema)";
  auto dir = TempDir::create(std::filesystem::temp_directory_path(), "ls-prov-");
  ASSERT_TRUE(dir);
  auto file = dir->path() / "provenance.json";
  ASSERT_TRUE(write_provenance(Json(fixture_record()), file));
  std::string cmd = "/usr/bin/python3 " LOCKSTEP_SOURCE_DIR
                    "/tests/schemas/validate_provenance.py " +
                    file.string();
  int rc = std::system(cmd.c_str());
  EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 0) << "schema problems printed above";

  // The validator itself rejects a broken statement.
  RecordDoc rec = fixture_record();
  auto st = provenance_statement(Json(rec));
  ASSERT_TRUE(st);
  Json broken = *st;
  broken["predicate"]["runDetails"]["metadata"]["startedOn"] = "yesterday";
  broken["subject"][0]["digest"] = Json::object();
  ASSERT_TRUE(write_file(file, broken.dump()));
  rc = std::system((cmd + " >/dev/null").c_str());
  EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 1);
}

TEST(HtmlReport, EscapesEverything) {
  EXPECT_EQ(html_escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
}

TEST(HtmlReport, GridRowsAndColumnsFromTheFirstTwoAxes) {
  RecordJson jobs = RecordJson::parse(R"([
    {"id":"b","name":"b1","matrix":{"os":"linux","cc":"gcc","opt":"1"}},
    {"id":"b","name":"b2","matrix":{"os":"linux","cc":"gcc","opt":"2"}},
    {"id":"b","name":"b3","matrix":{"os":"bsd","cc":"clang","opt":"1"}},
    {"id":"t","name":"t"}])");
  MatrixGrid g = matrix_grid(jobs, "b");
  EXPECT_EQ(g.row_axis, "os");
  EXPECT_EQ(g.col_axis, "cc");
  EXPECT_EQ(g.rows, (std::vector<std::string>{"linux", "bsd"}));
  EXPECT_EQ(g.cols, (std::vector<std::string>{"gcc", "clang"}));
  EXPECT_EQ(g.cells[0][0], (std::vector<size_t>{0, 1}));
  EXPECT_TRUE(g.cells[0][1].empty());
  EXPECT_EQ(g.cells[1][1], (std::vector<size_t>{2}));
  MatrixGrid t = matrix_grid(jobs, "t");
  EXPECT_EQ(t.rows, (std::vector<std::string>{"t"}));
  ASSERT_EQ(t.cells.size(), 1u);
  EXPECT_EQ(t.cells[0][0], (std::vector<size_t>{3}));
}

TEST(HtmlReport, PageHasGridLogsDigestsAndNothingUnescaped) {
  auto home = TempDir::create(std::filesystem::temp_directory_path(), "ls-html-");
  ASSERT_TRUE(home);
  RecordDoc doc = fixture_record();
  doc["workflow"]["name"] = "ci <b>bold</b>";
  doc["jobs"][0]["services"] = {{{"name", "db"},
                                 {"image", "localhost/db:1"},
                                 {"manifest_digest", testing::fake_digest("db")},
                                 {"log", "jobs/1-build--gcc---O2-/service-db.log"}}};
  auto file = testing::write_fixture_run(home->path(), doc);
  ASSERT_TRUE(write_file(file.parent_path() / "jobs/1-build--gcc---O2-/service-db.log",
                         "1764324015.1 O db ready & listening\n"));
  auto rec = load_record_file(file);
  ASSERT_TRUE(rec) << rec.error().message();
  std::string html = render_html_report(*rec);
  EXPECT_NE(html.find("<table class=\"grid\" data-job=\"build\">"), std::string::npos);
  EXPECT_NE(html.find("<td class=\"cell failure\">"), std::string::npos);
  EXPECT_NE(html.find("cc -o hello hello.c &lt;script&gt;alert(1)&lt;/script&gt;"),
            std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<b>bold"), std::string::npos);
  EXPECT_NE(html.find(testing::fake_digest("artifact hello-gcc")), std::string::npos);
  EXPECT_NE(html.find(doc["jobs"][0]["env_hash"].get<std::string>()), std::string::npos);
  EXPECT_NE(html.find("<span class=\"e\">warning: unused variable &#39;x&#39;</span>"),
            std::string::npos);
  // Each step's details hold its own part of the log.
  auto configure = html.find("</span> configure <span");
  auto make = html.find("</span> make <span");
  auto line = html.find("configuring build (gcc, -O2)");
  ASSERT_NE(configure, std::string::npos);
  EXPECT_LT(configure, line);
  EXPECT_LT(line, make);
  EXPECT_NE(html.find("<details class=\"step failure\" open>"), std::string::npos);
  EXPECT_NE(html.find("db ready &amp; listening"), std::string::npos);
  EXPECT_NE(html.find(testing::fake_digest("db")), std::string::npos);
  EXPECT_EQ(html.find("http://"), std::string::npos);  // nothing fetched
  EXPECT_EQ(html.find("src="), std::string::npos);
}

TEST(HtmlReport, VerifyRecordShowsVerdictAndDifferences) {
  auto home = TempDir::create(std::filesystem::temp_directory_path(), "ls-html-");
  ASSERT_TRUE(home);
  RecordDoc doc = fixture_record();
  doc["kind"] = "verify";
  doc["verify"] = {{"runs", 2},
                   {"varied", {"build-path", "hostname"}},
                   {"verdict", "not-reproducible"},
                   {"builds", RecordDoc::array()},
                   {"differences",
                    {{{"job", "build (gcc, -O2)"},
                      {"artifact", "hello-gcc"},
                      {"file", "hello"},
                      {"digests", {testing::fake_digest("1"), testing::fake_digest("2")}},
                      {"first_difference", "byte 1234: 0x31 vs 0x32"}}}}};
  auto rec = load_record_file(testing::write_fixture_run(home->path(), doc));
  ASSERT_TRUE(rec) << rec.error().message();
  std::string html = render_html_report(*rec);
  EXPECT_NE(html.find("<tr><th>verify</th><td>not-reproducible</td></tr>"), std::string::npos);
  EXPECT_NE(html.find("<span class=\"badge failure\">not-reproducible</span>"), std::string::npos);
  EXPECT_NE(html.find("byte 1234: 0x31 vs 0x32"), std::string::npos);
  EXPECT_NE(html.find(testing::fake_digest("2")), std::string::npos);
}

TEST(JunitReport, EscapingKeepsTheDocumentUtf8) {
  // A step's log tail is whatever bytes the step printed.
  EXPECT_EQ(xml_escape("a\xC1<b\x01"), "a\xEF\xBF\xBD&lt;b?");
  EXPECT_EQ(xml_escape("caf\xC3\xA9 & \"x\""), "caf\xC3\xA9 &amp; &quot;x&quot;");
}

}  // namespace
}  // namespace lockstep::runner
