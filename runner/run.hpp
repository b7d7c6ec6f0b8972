#pragma once
// One `lockstep run`: workflow -> job instances -> scheduled containers ->
// summary and reports. The exit code follows the CLI contract: 0 all jobs
// passed, 1 a job failed (or a job's container could not be torn down
// completely), 2 usage or workflow error, 4 every job passed but
// the run record, a report or the provenance could not be written, 130
// interrupted.
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/json.hpp"
#include "executor/executor.hpp"
#include "pipeline/egress_allow.hpp"
#include "pipeline/model.hpp"
#include "runner/action_source.hpp"
#include "runner/job.hpp"

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
  std::optional<size_t> max_jobs;                // --jobs N
  bool list = false;                             // --list
  bool dry_run = false;                          // --dry-run
  pipeline::EnvList env;                         // --env K=V
  std::map<std::string, std::string> vars;       // --var K=V: the `vars` context
  std::map<std::string, std::string> secrets;    // --secret, --secret-file
  std::map<std::string, std::string> platforms;  // --platform LABEL=IMAGE
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

// What `replay` and `verify` add to a run, and what a run hands back to them.
struct RunExtras {
  // Tests: the executor jobs run with (default: the Linux one). The
  // scheduler and step logic are tested through a stand-in without root.
  executor::Executor* executor = nullptr;
  std::string kind = "run";  // run | replay | verify (the record's kind, the builder id)
  std::string replay_of;
  std::filesystem::path workflow_display;          // the original path, when running from a copy
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
  std::map<std::string, std::string> env_defaults;  // override SOURCE_DATE_EPOCH/TZ/LANG
  RunShared::Variation vary;
  Json verify;  // stored in the record (kind verify)
  bool write_record = true;
  bool quiet_summary = false;
  // Out.
  std::string run_id;
  std::filesystem::path run_dir;
  Json record;
};

inline constexpr int kExitNotRecorded = 4;

int run_workflow(const RunOptions& options, RunExtras* extras = nullptr);

}  // namespace lockstep::runner
