#pragma once
// Runs one job instance: resolves its image, starts its container, runs its
// steps in order (if:, env, shells, timeouts, continue-on-error, step outputs
// through $GITHUB_OUTPUT/$GITHUB_ENV/$GITHUB_PATH), streams every line to the
// console and the job's log, and reports what happened.
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/json.hpp"
#include "executor/executor.hpp"
#include "pipeline/lockfile.hpp"
#include "pipeline/model.hpp"
#include "runner/engine/images.hpp"
#include "runner/engine/node_runtime.hpp"
#include "runner/engine/output.hpp"
#include "runner/engine/scheduler.hpp"

namespace lockstep::runner {

class RunNetwork;  // runner/engine/network.hpp

struct StepReport {
  std::string name;
  std::string id;
  JobResult outcome = JobResult::kSkipped;     // before continue-on-error
  JobResult conclusion = JobResult::kSkipped;  // after it
  std::string reason;
  std::chrono::milliseconds duration{0};
  std::string log_tail;  // last lines, masked, for reports
  std::string env_hash;  // chained from the job's (docs/environment-hash.md)
  Json env_doc;          // the canonical document it was computed from
  int exit_code = -1;    // of the step's process, when it ran one
};

struct ServiceReport {
  std::string name, image, manifest_digest;
  std::filesystem::path log_file;
};

// An input of a job as it resolved: an image (job container, service or
// Docker action), an actions/checkout, an action repository or lockstep's
// Node.js runtime, and whether lockstep.lock (or a replay) pinned it.
struct ResolvedInput {
  std::string kind;  // "image", "checkout", "action", "workflow" or "runtime"
  // image reference as written; checkout "URL@REF" (REF "HEAD" when none);
  // action and workflow "owner/repo@ref"; runtime "node v20.20.2"
  std::string reference;
  std::string resolved;  // manifest digest or commit
  bool pinned = false;   // taken from lockstep.lock
};

struct JobReport {
  std::string job_id;
  std::string display_name;
  pipeline::OrderedValue matrix;
  JobOutcome outcome;
  std::vector<StepReport> steps;  // parallel to the job's declared steps
  // Actions' pre stages (before the first step) and post stages (after the
  // last, in reverse order), named "Pre <step>" / "Post <step>".
  std::vector<StepReport> pre_steps, post_steps;
  std::map<std::string, std::string> outputs;
  std::string image;         // reference as written (after expressions)
  std::string image_digest;  // manifest digest it resolved to
  // Images and checkouts, in the order resolved.
  std::vector<ResolvedInput> inputs;
  std::string network;
  executor::ResourceUsage usage;
  std::filesystem::path log_file;
  std::string env_hash;  // docs/environment-hash.md; empty when the job never started
  Json env_doc;
  std::chrono::system_clock::time_point started_at{};
  std::vector<ServiceReport> services;
  std::vector<std::string> artifacts;  // names uploaded by this job
  // Network egress: {"dns": [...], "connections": [...], "fetches": [...]}
  // (docs/network.md); null otherwise.
  Json egress;
  // A job of a called workflow: pipeline::call_document() of its call (the
  // workflow file and commit, the calling jobs, the inputs); null otherwise.
  Json call;
};

class ActionSources;  // runner/engine/action_source.hpp
class RemoteCache;    // runner/engine/remote_cache.hpp

// runs-on labels of GitHub's hosted runners that run in lockstep's stand-in
// image (project.hpp hosted_label_images()); each is announced once a run.
struct HostedLabels {
  std::set<std::string> defaulted;
  bool first_use(const std::string& label) {
    std::lock_guard lk(mu);
    return defaulted.count(label) && told.insert(label).second;
  }

 private:
  std::mutex mu;
  std::set<std::string> told;
};

// Verify: what varies from the defaults in the jobs of one build.
struct JobVariation {
  std::string workspace_root;  // instead of /__w
  std::string hostname;
  std::string domainname;
  std::optional<mode_t> umask;
  std::string home;  // container path of $HOME
  std::optional<std::pair<uint32_t, uint32_t>> uid_gid;
  std::string cpuset;
  // The job's /__w is seen through disorderfs, directory entries in
  // reverse order.
  bool reverse_dir_order = false;
};

// Replay: what each job is held to (run.hpp ReplayInputs, as jobs see it).
struct JobReplay {
  // The environment documents each instance (by display name; "NAME#N" for
  // step N) must arrive at: a job whose hash differs fails before it
  // starts. Null: none.
  const std::map<std::string, Json>* expected_docs = nullptr;
  std::map<std::string, std::string> image_pins;  // reference -> manifest digest
  std::string until_step;  // stop before this step (name, id or 1-based index)
  bool shell_at_stop = false;
};

// The run's context: what every job of one run shares. Owned by the run;
// outlives all jobs. A replay and a verify build reach the jobs only through
// `replay` and `vary`.
struct RunContext {
  std::filesystem::path state_dir;
  std::filesystem::path run_dir;
  std::string run_id;
  const pipeline::Workflow* workflow = nullptr;
  // lockstep.lock in use, if any.
  const pipeline::Lockfile* lock = nullptr;
  // .lockstep.yml defaults (docker syntax), applied below container.options.
  std::string default_options;
  executor::Executor* executor = nullptr;
  // The egress network of the run (made on first use); null: egress is
  // refused.
  RunNetwork* network = nullptr;
  ImageResolver* images = nullptr;
  Console* console = nullptr;
  Masker* masker = nullptr;
  pipeline::Value github = pipeline::Value::object();  // base github context
  pipeline::Value vars = pipeline::Value::object();    // --var K=V
  pipeline::EnvList extra_env;                         // --env K=V
  std::map<std::string, std::string> secrets;          // --secret, --secret-file
  std::map<std::string, std::string> platforms;        // runs-on label -> image
  HostedLabels* hosted = nullptr;                      // labels mapped by default
  std::string repo_name = "workspace";
  // The workflow's own repository (actions/checkout without `repository:`):
  // a URL or local path, the commit to check out, and the --dirty patch.
  std::string source_url;
  std::string source_commit;
  std::string dirty_patch;
  std::string source_tree;
  int64_t source_date_epoch = 315532800;  // the commit's time; 1980-01-01 without one
  // Variables every job starts with, below the workflow's env (a workflow
  // may set them): SOURCE_DATE_EPOCH, TZ, LANG.
  std::map<std::string, std::string> default_env;
  std::string secret_key;  // keys the secret hashes in environment documents
  // --userns: the mapping of every job and service container.
  std::optional<executor::UserNamespace> userns;
  // false: the containers get no cgroup (rootless without a delegated
  // cgroup v2 subtree); recorded in the environment hash.
  bool limits_enforced = true;
  // Actions: where they come from and what they resolved to in this run;
  // lockstep's Node.js runtime, built on first use.
  ActionSources* actions = nullptr;
  // --cache-server: actions/cache asks a lockstep server's shared caches
  // (runner/engine/remote_cache.hpp); null: only this host's.
  std::shared_ptr<const RemoteCache> remote_cache;
  NodeRuntimeOnce* node = nullptr;
  bool frozen = false;
  JobReplay replay;
  JobVariation vary;
};

// --userns: container ids 0..65535 are host ids 100000..165535, uids and
// gids alike; supplementary groups allowed.
executor::UserNamespace default_user_namespace();

// Where an instance sits among its job's matrix combinations.
struct MatrixPosition {
  size_t index = 0;
  size_t total = 1;
};

// Runs `instance` (index `index` in the run). `needed` holds the complete
// reports of every instance of the jobs it needs.
JobOutcome run_job(RunContext& run, const pipeline::JobInstance& instance, size_t index,
                   MatrixPosition pos, const std::vector<const JobReport*>& needed,
                   CancelToken& token, JobReport& report);

// The `needs` expression context from the reports of every instance of the
// jobs an instance needs: per job its result (failure if any instance
// failed) and outputs (merged, later instances winning, as GitHub does).
pipeline::Value needs_context(const std::vector<const JobReport*>& needed);

// "greet-hello-world" style slug for directory names.
std::string slug(const std::string& display_name);

}  // namespace lockstep::runner
