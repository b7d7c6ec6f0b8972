#pragma once
// A run record as docs/run-record.md describes it (schema v1), built in
// memory for tests of the record readers (diff, report, provenance): a
// two-axis matrix job "build" (cc x opt) and a plain job "test", each with an
// env_doc shaped like pipeline/env_hash's document and an env_hash that is
// the sha256 of its canonical form, artifacts with file lists, and logs.
#include <cctype>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "common/digest.hpp"
#include "common/json.hpp"

namespace lockstep::testing {

using RecordDoc = nlohmann::ordered_json;

inline std::string fake_digest(const std::string& seed) {
  return sha256_of(seed).str();
}

// Recomputes a job's env_hash from its env_doc, as a writer would.
inline void rehash(RecordDoc& job) {
  auto canon = canonical_json(Json(job["env_doc"]));
  job["env_hash"] = sha256_of(canon ? *canon : std::string()).str();
}

inline RecordDoc fixture_job(int index, const std::string& id, const std::string& name,
                             RecordDoc matrix, const std::string& result) {
  const std::string commit = "0123456789abcdef0123456789abcdef01234567";
  RecordDoc env_doc = {
      {"schema", "lockstep.env/v1"},
      {"kind", "job"},
      {"workflow", "ci"},
      {"job", {{"id", id}, {"name", name}}},
      {"matrix", matrix},
      {"image",
       {{"reference", "localhost/busybox:test"},
        {"manifest_digest", fake_digest("image")},
        {"platform", "linux/amd64"}}},
      {"source", {{"commit", commit}, {"tree", std::string(40, 'e')}, {"dirty_patch_digest", ""}}},
      {"env", {{"CFLAGS", matrix.contains("opt") ? matrix["opt"] : RecordDoc("")}, {"LANG", "C"}}},
      {"container",
       {{"network", "none"},
        {"workdir", "/github/workspace"},
        {"limits",
         {{"memory_bytes", 1073741824},
          {"cpus_milli", 2000},
          {"pids", 512},
          {"cpuset", nullptr}}}}},
  };
  std::string slug = name;
  for (char& c : slug)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '-';
  std::string art = "hello-" + (matrix.contains("cc") ? matrix["cc"].get<std::string>() : id);
  RecordDoc job = {
      {"index", index},
      {"id", id},
      {"name", name},
      {"matrix", matrix},
      {"result", result},
      {"reason", result == "failure" ? "step 'make' failed: exit code 2" : ""},
      {"continue_on_error", false},
      {"env_hash", ""},
      {"env_doc", env_doc},
      {"image",
       {{"ref", "localhost/busybox:test"},
        {"manifest_digest", fake_digest("image")},
        {"platform", "linux/amd64"}}},
      {"network", "none"},
      {"started_at", "2026-11-28T10:00:15.123Z"},
      {"duration_ms", 800 + index},
      {"usage", {{"peak_memory_bytes", 1234567}, {"cpu_time_ms", 40}, {"oom_killed", false}}},
      {"steps",
       {{{"index", 1},
         {"id", "configure"},
         {"name", "configure"},
         {"outcome", "success"},
         {"conclusion", "success"},
         {"reason", ""},
         {"duration_ms", 100},
         {"env_hash", fake_digest("s1" + name)}},
        {{"index", 2},
         {"id", "make"},
         {"name", "make"},
         {"outcome", result == "failure" ? "failure" : "success"},
         {"conclusion", result == "failure" ? "failure" : "success"},
         {"reason", result == "failure" ? "exit code 2" : ""},
         {"duration_ms", 300},
         {"env_hash", fake_digest("s2" + name)}}}},
      {"outputs", {{"version", "1.2"}}},
      {"artifacts",
       {{{"name", art},
         {"digest", fake_digest("artifact " + art)},
         {"size", 17000},
         {"files",
          {{{"path", "hello"},
            {"mode", "0755"},
            {"size", 16000},
            {"digest", fake_digest("f1" + art)}},
           {{"path", "README"},
            {"mode", "0644"},
            {"size", 1000},
            {"digest", fake_digest("f2" + art)}}}}}}},
      {"log", "jobs/" + std::to_string(index) + "-" + slug + "/log.txt"},
      {"services", RecordDoc::array()},
  };
  rehash(job);
  return job;
}

inline RecordDoc fixture_record(const std::string& run_id = "20261128-100015.123-3fa2") {
  RecordDoc jobs = RecordDoc::array();
  int n = 0;
  for (const char* cc : {"gcc", "clang"})
    for (const char* opt : {"-O2", "-O3"}) {
      std::string name = std::string("build (") + cc + ", " + opt + ")";
      bool fails = std::string(cc) == "clang" && std::string(opt) == "-O3";
      jobs.push_back(fixture_job(++n, "build", name, {{"cc", cc}, {"opt", opt}},
                                 fails ? "failure" : "success"));
    }
  RecordDoc test = fixture_job(++n, "test", "test", RecordDoc::object(), "skipped");
  test["steps"] = RecordDoc::array();
  test["artifacts"] = RecordDoc::array();
  jobs.push_back(test);
  return {
      {"schema", "lockstep.run-record/v1"},
      {"run_id", run_id},
      {"kind", "run"},
      {"replay_of", nullptr},
      {"builder_id", "https://lockstep.dev/builder/run@testhost"},
      {"lockstep_version", "0.1.0"},
      {"started_at", "2026-11-28T10:00:15.123Z"},
      {"finished_at", "2026-11-28T10:00:17.456Z"},
      {"duration_ms", 2333},
      {"result", "failure"},
      {"exit_code", 1},
      {"ambient",
       {{"kernel", "6.1.0-27-amd64"},
        {"cpu_model", "Test CPU"},
        {"cpus", 2},
        {"memory_bytes", 25769803776LL},
        {"cgroup", "v1"},
        {"lockstep_build", "0.1.0"},
        {"hostname", "ci-3"}}},
      {"workflow",
       {{"path", ".github/workflows/ci.yml"},
        {"name", "ci"},
        {"digest", fake_digest("workflow")},
        {"file", "workflow.yml"}}},
      {"lock", nullptr},
      {"source",
       {{"url", "/src/project"},
        {"commit", "0123456789abcdef0123456789abcdef01234567"},
        {"tree", std::string(40, 'e')},
        {"commit_time", 1764320000},
        {"dirty_patch_digest", nullptr}}},
      {"options",
       {{"env", RecordDoc::object()},
        {"secret_names", RecordDoc::array()},
        {"platforms", {{"ubuntu-latest", "localhost/busybox:test"}}},
        {"jobs", RecordDoc::array()},
        {"matrix", RecordDoc::object()}}},
      {"jobs", jobs},
      {"verify", nullptr},
  };
}

// Writes runs/<run_id>/record.json under `home` and a log per job (with a
// line containing `<script>` to check escaping). Returns the record path.
inline std::filesystem::path write_fixture_run(const std::filesystem::path& home,
                                               const RecordDoc& record) {
  namespace fs = std::filesystem;
  fs::path dir = home / "runs" / record["run_id"].get<std::string>();
  fs::create_directories(dir);
  for (const auto& job : record["jobs"]) {
    fs::path log = dir / job["log"].get<std::string>();
    fs::create_directories(log.parent_path());
    std::ofstream(log) << "-- image localhost/busybox:test\n"
                       << "-- step: configure\n"
                       << "1764324015.1 O configuring " << job["name"].get<std::string>() << "\n"
                       << "-- step: make\n"
                       << "1764324015.4 O cc -o hello hello.c <script>alert(1)</script>\n"
                       << "1764324015.6 E warning: unused variable 'x'\n";
  }
  std::ofstream(dir / "record.json") << record.dump(2) << "\n";
  return dir / "record.json";
}

}  // namespace lockstep::testing
