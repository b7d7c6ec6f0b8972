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
#include "runner/engine/job.hpp"
#include "runner/engine/run.hpp"
#include "runner/records/record_read.hpp"

namespace lockstep::runner {

inline constexpr const char* kRecordSchema = "lockstep.run-record/v1";

// What build_record() makes a record from: the run's facts (run.hpp) and how
// it ended.
struct RecordInput : RunFacts {
  std::string run_id;
  std::string kind = "run";  // run | replay | verify
  std::string replay_of;
  int exit_code = 0;
  bool interrupted = false;
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

}  // namespace lockstep::runner
