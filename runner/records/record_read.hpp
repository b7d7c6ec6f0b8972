#pragma once
// The one reader of run records (docs/run-record.md): finds a record from a
// run id or a path, parses it and refuses what this lockstep cannot read.
// `diff`, `report` and provenance all read records through here.
#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/error.hpp"

namespace lockstep::runner {

// Records keep object keys in file order: a job's `matrix` is in declaration
// order, and the report lays its grid out by the first axes.
using RecordJson = nlohmann::ordered_json;

inline constexpr int kRecordSchemaVersion = 1;
inline constexpr std::string_view kRecordSchemaPrefix = "lockstep.run-record/v";

struct LoadedRecord {
  std::filesystem::path file;  // record.json
  std::filesystem::path dir;   // the run directory: job logs are relative to it
  RecordJson doc;
};

// Parses and validates record text. `what` names the record in errors
// ("record /x/record.json: ..."). Checks the schema version and the shape
// readers rely on (run_id, jobs as an array of objects with a name); keys it
// does not know are kept and ignored. Errors are one line, kind kUsage
// ("x/record.json:3:18: invalid UTF-8 (byte 0xC1)" for text that is not UTF-8).
Result<RecordJson> parse_record(std::string_view text, const std::string& what);

// Reads `file` and parses it as above.
Result<LoadedRecord> load_record_file(const std::filesystem::path& file);

// `arg` is a path to a record.json (or to a run directory holding one) when
// such a file exists, else a run id under `state_dir`/runs/.
Result<LoadedRecord> load_record(const std::string& arg, const std::filesystem::path& state_dir);

// Small typed accessors that tolerate missing keys and wrong types: a record
// from a newer minor writer may leave out what this reader would like.
std::string str_or(const RecordJson& obj, std::string_view key, std::string fallback = "");
long long int_or(const RecordJson& obj, std::string_view key, long long fallback = 0);
const RecordJson& member(const RecordJson& obj, std::string_view key);  // null when absent

}  // namespace lockstep::runner
