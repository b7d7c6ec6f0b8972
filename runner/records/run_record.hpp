#pragma once
// The end of a run, once its jobs are done (run.hpp RunOutcome): the
// summary on the console, the --report files, the run record with its
// provenance, and the exit code. The CLI contract: 0 all jobs passed, 1 a
// job failed (or a job's container could not be torn down completely), 4
// every job passed but the run record, a report or the provenance could not
// be written, 130 interrupted.
#include <filesystem>
#include <string>

#include "common/json.hpp"
#include "runner/engine/run.hpp"

namespace lockstep::runner {

inline constexpr int kExitNotRecorded = 4;

// How a run is recorded: what `replay` and `verify` say of their runs.
struct RecordSettings {
  std::string kind = "run";  // run | replay | verify (the record's kind, the builder id)
  std::string replay_of;
  std::filesystem::path workflow_display;  // the original path, when running from a copy
  Json verify;                             // stored in the record (kind verify)
  // false: the record is only built (verify records its builds together).
  bool write = true;
  bool quiet = false;  // no summary, no "recorded in" line
};

// Prints the summary, writes the reports and the record (runs/<id>/
// record.json, indexed in lockstep.db, and provenance.json) and says which
// jobs failed; returns the exit code. `record`, when given, gets the run
// record (null when no job ran). Nothing is written when `run.ran` is false:
// its exit code is returned as is.
int finish_run(const RunOptions& options, const RunOutcome& run, const RecordSettings& how,
               Json* record = nullptr);

}  // namespace lockstep::runner
