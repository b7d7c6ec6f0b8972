#pragma once
// One `lockstep run`: workflow -> job instances -> scheduled containers ->
// what happened (RunOutcome). The summary, the reports and the run record
// are written from that by run_record.hpp.
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/json.hpp"
#include "executor/executor.hpp"
#include "pipeline/egress_allow.hpp"
#include "pipeline/model.hpp"
#include "runner/engine/action_source.hpp"
#include "runner/engine/job.hpp"
#include "runner/engine/output.hpp"

namespace lockstep::runner {

// What a job needed ended with elsewhere (an agent of `lockstep server` runs
// one job; the server hands it the results of the jobs it needs): the
// `needs.<id>` entry of the expression context.
struct GivenNeed {
  JobResult result = JobResult::kSuccess;
  std::map<std::string, std::string> outputs;
};
using GivenNeeds = std::map<std::string, GivenNeed>;
// From the `needs` context's JSON form ({"build": {"result": "success",
// "outputs": {...}}}); `where` names the source in errors.
Result<GivenNeeds> given_needs_from_json(const Json& j, const std::string& where);
Json given_needs_to_json(const GivenNeeds& needs);

struct RunOptions {
  std::filesystem::path workflow;
  std::vector<std::string> jobs;                                   // --job ID (empty: all)
  std::vector<std::pair<std::string, std::string>> matrix_filter;  // --matrix K=V
  // --needs FILE: jobs the selected jobs need, with their results and
  // outputs; they are not run here.
  GivenNeeds given_needs;
  // --import-artifacts DIR: artifact manifests (DIR/<name>.json, their files
  // already in the state dir's store) uploaded earlier in this run elsewhere;
  // download-artifact finds them as if uploaded here.
  std::filesystem::path import_artifacts;
  // --cache-server FILE: the lockstep server whose dependency caches this
  // job shares with the other agents (runner/engine/remote_cache.hpp).
  std::filesystem::path cache_server;
  // --plan FILE (runner/engine/job_plan.hpp): the matrix cell to run,
  // exactly (any JSON value), and the pins of the run it belongs to.
  std::optional<Json> matrix_exact;
  std::map<std::string, std::string> image_pins;   // reference -> manifest digest
  std::map<std::string, std::string> action_pins;  // "owner/repo@ref" -> commit
  std::string runtime_pin;
  std::optional<size_t> max_jobs;           // --jobs N
  bool list = false;                        // --list
  bool dry_run = false;                     // --dry-run
  pipeline::EnvList env;                    // --env K=V
  std::map<std::string, std::string> vars;  // --var K=V: the `vars` context
  // --event NAME and --event-file FILE: github.event_name and github.event
  // (the webhook's payload as GitHub sends it).
  std::string event_name = "push";
  Json event = Json::object();
  std::map<std::string, std::string> secrets;                          // --secret, --secret-file
  std::map<std::string, std::string> platforms;                        // --platform LABEL=IMAGE
  std::vector<std::pair<std::string, std::filesystem::path>> reports;  // --report kind=FILE
  std::vector<std::string> insecure_registries;                        // --insecure-registry HOST
  std::string mirror;  // --mirror URL, $LOCKSTEP_MIRROR, or mirror: in .lockstep.yml
  std::string repo;    // --repo URL (else the enclosing git repo)
  std::string ref;     // --ref REF
  bool dirty = false;  // --dirty: include uncommitted changes
  // --lock FILE (else the project's lockstep.lock, if any).
  std::filesystem::path lock_file;
  // --frozen: refuse any input lockstep.lock does not pin.
  bool frozen = false;
  // --userns: every job and service container in its own user namespace
  // (default_user_namespace()).
  bool userns = false;
  // Where OWNER/REPO@REF actions come from (--actions-url, .lockstep.yml).
  ActionsConfig actions;
  bool actions_url_given = false;  // --actions-url (wins over .lockstep.yml)
  // .lockstep.yml defaults (docker syntax).
  std::string default_options;
  // --network MODE: above .lockstep.yml defaults, below a job's own options.
  std::string network;
  // .lockstep.yml egress.allow (empty: every public address).
  std::vector<pipeline::EgressAllowEntry> egress_allow;
  // .lockstep.yml egress.unpinned: with --frozen, "refuse" refuses plain-HTTP
  // downloads lockstep.lock does not pin; "record" (the default) records them.
  std::string egress_unpinned = "record";
  // .lockstep.yml egress.inspect and egress.ca (absolute paths).
  bool egress_inspect = false;
  std::vector<std::filesystem::path> egress_ca;
  std::filesystem::path state_dir;
};

// What a replay holds the run to (`replay`, and `verify` of a recorded
// run): the recorded inputs pinned, the recorded environments checked.
struct ReplayInputs {
  std::map<std::string, Json> expected_docs;       // display name[#step] -> env document
  std::map<std::string, std::string> image_pins;   // reference -> manifest digest
  std::map<std::string, std::string> action_pins;  // "owner/repo@ref" -> commit
  std::string node_runtime_pin;  // the recorded runtime's digest, used when present
  std::map<std::string, std::string> fetch_pins;  // URL -> sha256 the recorded run received
  std::string until_step;
  bool shell = false;
  Json run_identity;  // {"GITHUB_RUN_ID": ..., "GITHUB_RUN_NUMBER": ...} to restore
  // The source to check out instead of the enclosing repository.
  std::optional<std::string> source_url, source_commit, source_patch, source_ref;
};

// What `replay` and `verify` add to a run.
struct RunExtras {
  // Tests: the executor jobs run with (default: the Linux one). The
  // scheduler and step logic are tested through a stand-in without root.
  executor::Executor* executor = nullptr;
  ReplayInputs replay;
  // Verify: what this build varies in each job, and the variables every job
  // starts with (SOURCE_DATE_EPOCH, TZ, LANG) it overrides.
  JobVariation vary;
  std::map<std::string, std::string> env_defaults;
};

// What the run record says of a run besides its jobs (record.hpp).
struct RunFacts {
  std::chrono::system_clock::time_point started_at, finished_at;
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
  Json options = Json::object();       // env, secret_names, platforms, jobs, matrix (masked)
  Json run_identity = Json::object();  // GITHUB_RUN_ID etc., restored by a replay
  std::string secret_key_id;
};

// What one run did, handed back for the summary, the reports and the record
// (run_record.hpp). A run that stopped before its jobs (a usage or workflow
// error, --list, --dry-run) has `ran` false and nothing to record.
struct RunOutcome {
  bool ran = false;
  // 0 every job passed, 1 a job failed or was cancelled (or a container was
  // not torn down completely), 130 interrupted; before the jobs: 0 or the
  // error's code.
  int exit_code = 0;
  bool interrupted = false;
  bool teardown_failed = false;
  std::string run_id;
  std::filesystem::path run_dir;
  std::vector<JobReport> jobs;  // in plan order
  RunFacts facts;
  // Every secret of the run and every value its steps masked.
  std::shared_ptr<const Masker> masker;
};

RunOutcome run_workflow(const RunOptions& options, const RunExtras& extras = {});

}  // namespace lockstep::runner
