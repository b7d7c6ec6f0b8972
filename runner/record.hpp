#pragma once
// Run records (docs/run-record.md): runs/<id>/record.json, the workflow
// bytes beside it, and the SQLite index lockstep.db. record.json is the
// source of truth; the database is an index over it.
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/json.hpp"
#include "runner/job.hpp"
#include "runner/record_read.hpp"

namespace lockstep::runner {

inline constexpr const char* kRecordSchema = "lockstep.run-record/v1";

struct RecordInput {
  std::string run_id;
  std::string kind = "run";  // run | replay | verify
  std::string replay_of;
  std::chrono::system_clock::time_point started_at, finished_at;
  int exit_code = 0;
  bool interrupted = false;
  std::filesystem::path workflow_path;
  std::string workflow_name;
  std::string workflow_text;
  // Reusable workflows read from plain files (the workflow is outside any
  // repository): path under the project directory -> text.
  std::map<std::string, std::string> called_files;
  std::optional<std::filesystem::path> lock_path;
  std::string lock_text;
  // Source (empty url: not run from a repository).
  std::string source_url, source_ref, source_commit, source_tree, dirty_patch;
  int64_t source_commit_time = 0;
  Json options = Json::object();       // env, secret_names, platforms, jobs, matrix
  Json run_identity = Json::object();  // GITHUB_RUN_ID etc., restored by a replay
  std::string secret_key_id;
  const std::vector<JobReport>* jobs = nullptr;
  std::filesystem::path run_dir;
  std::filesystem::path state_dir;
  Json verify;  // null unless kind == verify
};

// Host facts lockstep does not control: recorded, never hashed.
Json ambient_fingerprint();
// "https://lockstep.dev/builder/<kind>@<host id>": differs between a run, a
// replay and a verify, and between hosts.
std::string builder_id(const std::string& kind);
std::string rfc3339(std::chrono::system_clock::time_point t);

Json job_record(const JobReport& r, size_t index, const std::filesystem::path& run_dir,
                const std::filesystem::path& state_dir, const std::string& run_id);
Json build_record(const RecordInput& in);

// Writes record.json (atomically) and indexes it in <state>/lockstep.db.
Status save_record(const std::filesystem::path& state_dir, const std::filesystem::path& run_dir,
                   const Json& record);

struct RunRow {
  std::string id, kind, workflow, started_at, result, commit;
  int64_t duration_ms = 0;
  int exit_code = 0;
  int jobs = 0, failed = 0;
};
// Newest first.
Result<std::vector<RunRow>> list_runs(const std::filesystem::path& state_dir, size_t limit);

// Whether `id` can name a run directory: [A-Za-z0-9._-], not starting with '.'.
bool valid_run_id(const std::string& id);

// Removes run `id` whole: runs/<id>/ (record, logs, provenance), its rows in
// lockstep.db and its artifacts' manifests (the artifact files no other run
// needs go at the next `lockstep cache gc`). The directory is renamed aside
// first and put back if the database refuses, so a failure leaves the run as
// it was.
Status remove_run(const std::filesystem::path& state_dir, const std::string& id);

// The per-state-dir key of secret hashes (created on first use, 0600), or
// LOCKSTEP_SECRET_HASH_KEY when set.
Result<std::string> secret_hash_key(const std::filesystem::path& state_dir);

}  // namespace lockstep::runner
