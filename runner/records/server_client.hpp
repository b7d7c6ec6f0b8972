#pragma once
// What `runs ls/show`, `logs`, `replay` and `diff` read from a lockstep
// server with --server URL (docs/server.md, "The CLI and a server"): its
// runs, and for a job attempt the whole run record its agent made and the
// log it streamed. A server job is named by its id, "JOB" (its newest
// attempt) or "JOB:ATTEMPT".
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "common/error.hpp"
#include "common/fs.hpp"
#include "common/json.hpp"
#include "runner/records/record_read.hpp"

namespace lockstep::runner {

// http(s)://host[:port][/prefix], without a trailing slash.
Result<std::string> server_url(const std::string& given);

// GET `path` of the server: the body of a 200, else an error naming the
// server and what it answered.
Result<std::string> server_get(const std::string& server, const std::string& path);
Result<Json> server_get_json(const std::string& server, const std::string& path);

struct ServerJob {
  int64_t job = 0;
  int attempt = 0;            // 0: the newest
  std::string query() const;  // "?attempt=N" or ""
};
// "JOB" or "JOB:ATTEMPT"; nullopt for anything else (a local run id, a path).
std::optional<ServerJob> parse_server_job(const std::string& arg);

// A server job's run record, kept in a temporary directory for as long as
// the value lives.
struct ServerRecord {
  TempDir dir;
  LoadedRecord record;
};
Result<ServerRecord> load_server_record(const std::string& server, const ServerJob& job,
                                        const std::filesystem::path& state_dir);

// A run's record: with a server, a server job ("JOB[:ATTEMPT]") is fetched
// into `holder`; anything else is a local run id or record file.
Result<LoadedRecord> load_any_record(const std::string& arg, const std::filesystem::path& state_dir,
                                     const std::optional<std::string>& server,
                                     std::optional<ServerRecord>& holder);

}  // namespace lockstep::runner
