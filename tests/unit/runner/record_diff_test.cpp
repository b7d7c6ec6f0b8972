// The record loader's refusals and the field-by-field diff of two records.
#include <functional>

#include <gtest/gtest.h>

#include "common/fs.hpp"
#include "runner/records/record_read.hpp"
#include "runner/verbs/cmd_diff.hpp"
#include "tests/support/run_record_fixture.hpp"

namespace lockstep::runner {
namespace {

using testing::fixture_record;
using testing::RecordDoc;
using testing::rehash;

RecordJson j(const char* text) {
  return RecordJson::parse(text);
}

TEST(RecordRead, RefusesANewerSchemaVersion) {
  auto r = parse_record(R"({"schema":"lockstep.run-record/v2","run_id":"x","jobs":[]})", "/r.json");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "record /r.json has schema version 2; this lockstep reads version 1");
}

TEST(RecordRead, TruncatedJsonIsOneLineNamingTheFile) {
  std::string text = fixture_record().dump(2);
  auto r = parse_record(text.substr(0, text.size() / 2), "/runs/x/record.json");
  ASSERT_FALSE(r);
  const std::string& m = r.error().message();
  EXPECT_EQ(m.rfind("/runs/x/record.json: truncated JSON at line ", 0), 0u) << m;
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;
}

TEST(RecordRead, InvalidJsonNamesLineAndColumn) {
  auto r = parse_record("{\n  \"schema\": oops\n}", "f.json");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message().rfind("f.json: invalid JSON at line 2, column ", 0), 0u)
      << r.error().message();
}

TEST(RecordRead, HugeNumbersAndDeepNestingAreOneLineErrors) {
  // Found by fuzzing (in parse_json): nlohmann throws out_of_range, not
  // parse_error, for a number too large for a double.
  auto r = parse_record("{\"schema\": 4E00002082961640}", "f.json");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message().rfind("f.json: invalid JSON: ", 0), 0u) << r.error().message();
  std::string deep = std::string(600, '[') + std::string(600, ']');
  r = parse_record(deep, "f.json");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "f.json: invalid JSON: nested deeper than 512 levels");
}

TEST(RecordRead, RefusesWhatIsNotARecord) {
  auto r = parse_record("[1,2]", "a");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "a: not a run record (expected a JSON object)");
  r = parse_record(R"({"schema":"lockstep.run-record/v1","run_id":"x","jobs":[{}]})", "b");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "b: jobs[0] is not a job (an object with a \"name\")");
}

TEST(RecordRead, KeepsMatrixDeclarationOrderAndIgnoresUnknownKeys) {
  auto r = parse_record(
      R"({"schema":"lockstep.run-record/v1","run_id":"x","future":1,
          "jobs":[{"name":"b","matrix":{"zeta":"1","alpha":"2"}}]})",
      "r");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ((*r)["jobs"][0]["matrix"].begin().key(), "zeta");
}

TEST(RecordRead, LoadsByRunIdOrPathAndNamesAMissingRun) {
  auto home = TempDir::create(std::filesystem::temp_directory_path(), "ls-records-");
  ASSERT_TRUE(home);
  auto file = testing::write_fixture_run(home->path(), fixture_record("run-1"));
  auto by_id = load_record("run-1", home->path());
  ASSERT_TRUE(by_id) << by_id.error().message();
  EXPECT_EQ(by_id->file, file);
  EXPECT_EQ(by_id->dir, file.parent_path());
  auto by_path = load_record(file.string(), "/nonexistent");
  ASSERT_TRUE(by_path) << by_path.error().message();
  auto missing = load_record("run-2", home->path());
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message(),
            "no run 'run-2' in " + (home->path() / "runs").string() + " and no file of that name");
}

TEST(DiffJson, WalksObjectsAndArraysToTheChangedLeaves) {
  std::vector<FieldChange> out;
  diff_json(
      j(R"({"env":{"A":"1","B":"2"},"steps":[{"run":"make"}],"n":1})"),
      j(R"({"env":{"A":"1","B":"3","C":"x"},"steps":[{"run":"make -j2"},{"run":"t"}],"n":1})"), "",
      out);
  std::vector<FieldChange> want = {
      {"env.B", "\"2\"", "\"3\""},
      {"env.C", "(absent)", "\"x\""},
      {"steps[0].run", "\"make\"", "\"make -j2\""},
      {"steps[1]", "(absent)", "{\"run\":\"t\"}"},
  };
  EXPECT_EQ(out, want);
}

TEST(DiffJson, TypeChangesAndOddKeysAndNulls) {
  std::vector<FieldChange> out;
  diff_json(j(R"({"a b":{"x":1},"lim":null,"m":{"k":1}})"),
            j(R"({"a b":{"x":2},"lim":512,"m":[1]})"), "doc", out);
  std::vector<FieldChange> want = {
      {"doc[\"a b\"].x", "1", "2"},
      {"doc.lim", "null", "512"},
      {"doc.m", "{\"k\":1}", "[1]"},
  };
  EXPECT_EQ(out, want);
  out.clear();
  diff_json(j(R"({"same":[1,{"a":2}]})"), j(R"({"same":[1,{"a":2}]})"), "", out);
  EXPECT_TRUE(out.empty());
}

TEST(DiffJson, MultiLineStringsLineByLine) {
  std::vector<FieldChange> out;
  diff_json(RecordJson("make\nmake check\n"), RecordJson("make\nmake test\nmake install\n"), "run",
            out);
  std::vector<FieldChange> want = {
      {"run (line 2)", "\"make check\"", "\"make test\""},
      {"run (line 3)", "(absent)", "\"make install\""},
  };
  EXPECT_EQ(out, want);
  out.clear();
  std::string many_a, many_b;
  for (int i = 0; i < 8; ++i) {
    many_a += "a" + std::to_string(i) + "\n";
    many_b += "b" + std::to_string(i) + "\n";
  }
  diff_json(RecordJson(many_a), RecordJson(many_b), "s", out);
  ASSERT_EQ(out.size(), 6u);
  EXPECT_EQ(out[5], (FieldChange{"s", "(3 more lines differ)", "(not shown)"}));
}

TEST(DiffJson, CutsLongValues) {
  std::vector<FieldChange> out;
  diff_json(RecordJson(std::string(500, 'x')), RecordJson("y"), "v", out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].a.size(), 120u);
  EXPECT_EQ(out[0].a.substr(117), "...");
}

// Changes one field of one job's env_doc (and its hash) in a copy.
RecordDoc with_change(const std::function<void(RecordDoc&)>& change, size_t job = 0) {
  RecordDoc r = fixture_record("run-b");
  change(r["jobs"][job]["env_doc"]);
  rehash(r["jobs"][job]);
  return r;
}

std::vector<std::string> diff_inputs(const RecordDoc& b) {
  RecordDiff d = diff_records(fixture_record("run-a"), b);
  EXPECT_TRUE(d.ambient.empty());
  EXPECT_TRUE(d.outputs.empty());
  return d.inputs;
}

TEST(DiffRecords, IdenticalRunsDifferInNothing) {
  RecordDiff d = diff_records(fixture_record("run-a"), fixture_record("run-b"));
  EXPECT_FALSE(d.differs());
  ASSERT_EQ(d.identical.size(), 5u);
  EXPECT_EQ(d.identical[0].rfind("build (gcc, -O2): inputs identical (env_hash ", 0), 0u);
}

TEST(DiffRecords, NamesExactlyTheChangedEnvVar) {
  auto b = with_change([](RecordDoc& d) { d["env"]["CFLAGS"] = "-O3"; });
  EXPECT_EQ(diff_inputs(b),
            std::vector<std::string>{"build (gcc, -O2): env.CFLAGS: \"-O2\" -> \"-O3\""});
}

TEST(DiffRecords, NamesExactlyTheImageDigest) {
  std::string d2 = testing::fake_digest("other image");
  auto b = with_change([&](RecordDoc& d) { d["image"]["manifest_digest"] = d2; }, 1);
  EXPECT_EQ(diff_inputs(b),
            std::vector<std::string>{"build (gcc, -O3): image.manifest_digest: \"" +
                                     testing::fake_digest("image") + "\" -> \"" + d2 + "\""});
}

TEST(DiffRecords, ACommitChangeIsShownOncePerJobNotAgainForTheRun) {
  RecordDoc b = fixture_record("run-b");
  const std::string c2 = "89abcdef0123456789abcdef0123456789abcdef";
  b["source"]["commit"] = c2;
  b["jobs"][4]["env_doc"]["source"]["commit"] = c2;
  rehash(b["jobs"][4]);
  EXPECT_EQ(diff_inputs(b),
            std::vector<std::string>{"test: source.commit: "
                                     "\"0123456789abcdef0123456789abcdef01234567\" -> \"" +
                                     c2 + "\""});
}

TEST(DiffRecords, NamesExactlyTheLimitAndTheNetwork) {
  auto b = with_change([](RecordDoc& d) { d["container"]["limits"]["memory_bytes"] = 536870912; });
  EXPECT_EQ(diff_inputs(b),
            std::vector<std::string>{"build (gcc, -O2): container.limits.memory_bytes: "
                                     "1073741824 -> 536870912"});
  b = with_change([](RecordDoc& d) { d["container"]["network"] = "host"; }, 3);
  EXPECT_EQ(diff_inputs(b), std::vector<std::string>{
                                "build (clang, -O3): container.network: \"none\" -> \"host\""});
}

// Gives job 0's step 2 a step document, as a writer with resolved steps does.
void step_doc(RecordDoc& r, const std::string& script, const std::string& cflags) {
  auto& st = r["jobs"][0]["steps"][1];
  st["env_doc"] = {{"kind", "step"},
                   {"previous", r["jobs"][0]["env_hash"]},
                   {"script", script},
                   {"env", {{"CFLAGS", cflags}}}};
  st["env_hash"] = testing::fake_digest(st["env_doc"].dump());
}

TEST(DiffRecords, StepDocumentsShowResolvedChangesOnce) {
  RecordDoc a = fixture_record("run-a");
  step_doc(a, "make", "-O2");
  RecordDoc b = fixture_record("run-b");
  step_doc(b, "make -j2", "-O2");
  RecordDiff d = diff_records(a, b);
  EXPECT_EQ(d.inputs, std::vector<std::string>{
                          "build (gcc, -O2): step 2 (make): script: \"make\" -> \"make -j2\""});
  EXPECT_TRUE(d.identical.size() == 4u);

  // A job env var every step inherits is shown for the job, not per step,
  // and the chain link to the job's new hash is not shown at all.
  b = fixture_record("run-b");
  b["jobs"][0]["env_doc"]["env"]["CFLAGS"] = "-O3";
  rehash(b["jobs"][0]);
  step_doc(b, "make", "-O3");
  d = diff_records(a, b);
  EXPECT_EQ(d.inputs, std::vector<std::string>{"build (gcc, -O2): env.CFLAGS: \"-O2\" -> \"-O3\""});
}

TEST(DiffRecords, JobsSkippedBeforeHashingAreNoDifference) {
  RecordDoc a = fixture_record("run-a"), b = fixture_record("run-b");
  for (RecordDoc* r : {&a, &b}) {
    (*r)["jobs"][4]["env_hash"] = "";
    (*r)["jobs"][4]["env_doc"] = RecordDoc::object();
  }
  RecordDiff d = diff_records(a, b);
  EXPECT_FALSE(d.differs());
  EXPECT_EQ(d.identical.back(), "test: no environment hash in either run");
  b["jobs"][4]["env_hash"] = testing::fake_digest("x");
  d = diff_records(a, b);
  EXPECT_EQ(d.inputs,
            std::vector<std::string>{"test: env_hash: (absent) -> \"" + testing::fake_digest("x") +
                                     "\" (env_doc identical)"});
}

TEST(DiffRecords, RunInputsOutsideJobDocuments) {
  RecordDoc b = fixture_record("run-b");
  b["workflow"]["digest"] = testing::fake_digest("workflow 2");
  b["workflow"]["file"] = "elsewhere.yml";  // where the copy sits is no input
  EXPECT_EQ(diff_inputs(b),
            std::vector<std::string>{"run: workflow.digest: \"" + testing::fake_digest("workflow") +
                                     "\" -> \"" + testing::fake_digest("workflow 2") + "\""});
}

TEST(DiffRecords, AmbientFactsAreMarkedAndKeptApart) {
  RecordDoc b = fixture_record("run-b");
  b["ambient"]["kernel"] = "6.1.0-28-amd64";
  RecordDiff d = diff_records(fixture_record("run-a"), b);
  EXPECT_TRUE(d.inputs.empty());
  EXPECT_EQ(d.ambient, std::vector<std::string>{
                           "ambient.kernel: \"6.1.0-27-amd64\" -> \"6.1.0-28-amd64\" (ambient)"});
  EXPECT_TRUE(d.differs());
}

TEST(DiffRecords, OutputsResultsStepsAndArtifactFiles) {
  RecordDoc b = fixture_record("run-b");
  auto& job = b["jobs"][0];
  job["result"] = "failure";
  job["steps"][1]["conclusion"] = "failure";
  job["steps"][1]["outcome"] = "failure";
  job["artifacts"][0]["digest"] = testing::fake_digest("new artifact");
  job["artifacts"][0]["files"][0]["digest"] = testing::fake_digest("new hello");
  job["outputs"]["version"] = "1.3";
  RecordDiff d = diff_records(fixture_record("run-a"), b);
  EXPECT_TRUE(d.inputs.empty());
  std::vector<std::string> want = {
      "build (gcc, -O2): result: \"success\" -> \"failure\"",
      "build (gcc, -O2): step 2 (make).outcome: \"success\" -> \"failure\"",
      "build (gcc, -O2): step 2 (make).conclusion: \"success\" -> \"failure\"",
      "build (gcc, -O2): outputs.version: \"1.2\" -> \"1.3\"",
      "build (gcc, -O2): artifact hello-gcc.digest: \"" +
          testing::fake_digest("artifact hello-gcc") + "\" -> \"" +
          testing::fake_digest("new artifact") + "\"",
      "build (gcc, -O2): artifact hello-gcc: file hello: digest: \"" +
          testing::fake_digest("f1hello-gcc") + "\" -> \"" + testing::fake_digest("new hello") +
          "\"",
  };
  EXPECT_EQ(d.outputs, want);
}

TEST(DiffRecords, InstancesMatchByNameAndMatrix) {
  RecordDoc b = fixture_record("run-b");
  b["jobs"].erase(3);
  b["jobs"][0]["matrix"]["cc"] = "gcc-13";
  RecordDiff d = diff_records(fixture_record("run-a"), b);
  EXPECT_EQ(d.inputs, (std::vector<std::string>{"build (gcc, -O2): only in A",
                                                "build (clang, -O3): only in A",
                                                "build (gcc, -O2): only in B"}));
}

}  // namespace
}  // namespace lockstep::runner
