#pragma once
// Every state change of runs, jobs and attempts (docs/server.md, "States"),
// each one transaction. Job rows are claimed with FOR UPDATE SKIP LOCKED;
// every enqueue NOTIFYs `lockstep_jobs` in its transaction; every write of an
// agent is fenced by (job, attempt): it applies only to the job's current
// attempt while that attempt is live, and reports kStale otherwise.
//
// Changes that a forge should see add rows to status_outbox in the same
// transaction (outbox.hpp sends them). Times are PostgreSQL's now(), so the
// server's own clock plays no part in leases.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "server/pg.hpp"

namespace lockstep::server {

// The lease and everything derived from it (docs/server.md, "Fencing and the
// lease arithmetic").
struct LeaseTimes {
  std::chrono::milliseconds lease{90'000};
  std::chrono::milliseconds renew() const { return lease / 6; }
  std::chrono::milliseconds lapse() const { return lease / 3; }
  std::chrono::milliseconds give_up() const { return lease * 4 / 9; }
};

struct NewJob {
  std::string key;   // the job's id in the workflow
  std::string name;  // display name, "build (gcc, Release)"
  nlohmann::json matrix = nlohmann::json::object();
  std::vector<std::string> needs;
  nlohmann::json plan;
  bool retry = true;
  bool run_on_failure = false;  // its if: runs it after a failed need (always(), failure())
};

struct NewRun {
  int64_t repo_id = 0;
  std::optional<int64_t> delivery;  // deliveries.id
  std::string run_key;              // "push:<ref>:<sha>", unique per repository and workflow
  std::string event, ref, sha, base_sha;
  bool fork = false;
  std::string workflow_file, workflow_name;
  std::string error;  // a run that failed before any job (workflow error)
  // The workflow's concurrency group (evaluated) and cancel-in-progress:
  // empty group, none (docs/server.md, "Concurrency").
  std::string concurrency_group;
  bool cancel_in_progress = false;
  std::vector<NewJob> jobs;
  std::optional<int64_t> rerun_of;
};

// Inserts the run, its jobs (queued, or waiting for needs) and their pending
// statuses; nullopt when a run with that key already exists.
Result<std::optional<int64_t>> insert_run(pg::Tx& tx, const NewRun& run);

struct Claim {
  int64_t job = 0;
  int64_t run = 0;
  int attempt = 0;
  nlohmann::json plan;
  // The `needs` context of the job (runner/engine/run.hpp, GivenNeeds): the result
  // of each job it needs (over its matrix cells, ranked as `lockstep run`
  // ranks them) and their outputs; the agent runs the job alone with it.
  nlohmann::json needs = nlohmann::json::object();
  // Manifests of the artifacts earlier jobs of the run uploaded.
  nlohmann::json artifacts = nlohmann::json::array();
  // What the run's earlier jobs and attempts resolved (images, actions, the
  // node runtime), oldest first: the job is held to the same
  // (runner/engine/job_plan.hpp).
  nlohmann::json pins = nlohmann::json::object();
};
Result<std::optional<Claim>> claim(pg::Pool& db, int64_t agent_id);

enum class Fence { kOk, kStale };
Result<Fence> start_attempt(pg::Pool& db, int64_t agent_id, int64_t job, int attempt);

struct Renewal {
  Fence fence = Fence::kOk;
  bool cancel = false;
};
Result<Renewal> renew(pg::Pool& db, int64_t agent_id, int64_t job, int attempt);

struct LogAppend {
  enum Kind { kStored, kStale, kGap, kTooLarge } kind = kStored;
  int64_t log_bytes = 0;  // what the server holds after the append
};
Result<LogAppend> append_log(pg::Pool& db, int64_t agent_id, int64_t job, int attempt,
                             int64_t offset, std::string_view data, int64_t max_bytes);

struct Finish {
  int64_t job = 0;
  int attempt = 0;
  std::string status;  // success, failure, cancelled
  int exit_code = 0;
  std::string env_hash;
  nlohmann::json record;
  nlohmann::json run_record;  // the agent's whole record.json (null: none)
  int64_t log_bytes = 0;
  std::string reason;
};
enum class FinishResult { kOk, kStale, kLogIncomplete };
Result<FinishResult> finish(pg::Pool& db, int64_t agent_id, const Finish& f);

// Lapses claims not started in time and declares attempts without a renewal
// for a lease lost; re-queues their jobs as a new attempt (or fails those
// that must not be retried). Returns how many attempts it ended.
Result<int> reap(pg::Pool& db, const LeaseTimes& t);

// An agent gives an attempt up (it could not keep its lease, or it is
// shutting down): the attempt is lost and the job re-queued at once, as the
// reaper would after the lease. kStale when the attempt is not live.
Result<Fence> abandon(pg::Pool& db, int64_t agent_id, int64_t job, int attempt,
                      const std::string& reason);

Status cancel_job(pg::Pool& db, int64_t job);
Status cancel_run(pg::Pool& db, int64_t run);
// A new run with the same event, commit and workflow; its id.
Result<int64_t> rerun(pg::Pool& db, int64_t run);

// The agent whose token hashes to `token_hash`.
Result<std::optional<int64_t>> agent_by_token(pg::Pool& db, const std::string& token);

}  // namespace lockstep::server
