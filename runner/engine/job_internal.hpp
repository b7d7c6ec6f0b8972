#pragma once
// Internals of one job's execution (JobExecution), shared by the job_*.cpp
// files that split its work by concern. Not included outside runner/.
#include <chrono>
#include <deque>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string_view>

#include "cache/volumes.hpp"
#include "common/fs.hpp"
#include "pipeline/commands.hpp"
#include "pipeline/env_hash.hpp"
#include "pipeline/expr.hpp"
#include "pipeline/options.hpp"
#include "pipeline/workflow_call.hpp"
#include "runner/engine/action_source.hpp"
#include "runner/engine/actions.hpp"
#include "runner/engine/container_config.hpp"
#include "runner/engine/hash_files.hpp"
#include "runner/engine/job.hpp"
#include "runner/engine/job_env.hpp"
#include "runner/engine/lock_use.hpp"
#include "runner/engine/network.hpp"
#include "runner/engine/node_runtime.hpp"
#include "runner/engine/services.hpp"

namespace lockstep::runner::detail {
namespace fs = std::filesystem;
using pipeline::EvalContext;
using pipeline::Value;

inline constexpr const char* kContainerRoot = "/__w";
inline constexpr const char* kContainerTemp = "/__w/_temp";
inline constexpr const char* kContainerHome = "/github/home";
inline constexpr auto kStopGrace = std::chrono::seconds(10);
inline constexpr const char* kContainerToolCache = "/__t";

// What one step process talks back through ($GITHUB_OUTPUT, $GITHUB_ENV,
// $GITHUB_PATH, $GITHUB_STATE, $GITHUB_STEP_SUMMARY and workflow commands),
// and where that goes.
struct StepIo {
  std::string id;   // the step's id in the current `steps` context
  std::string tag;  // names its files in _temp ("3", "3.1", "pre3", "post3")
  // save-state and $GITHUB_STATE of an action: its state, read by its later
  // stages as STATE_<name>. Null for run steps.
  std::map<std::string, std::string>* state = nullptr;
  bool allow_unsecure = false;  // ACTIONS_ALLOW_UNSECURE_COMMANDS=true: set-env, add-path
  std::string failed;           // a workflow command that failed the step
};

// A step's `uses:` resolved for this job: the action's code and metadata,
// and where the job sees its directory.
struct JobAction {
  pipeline::ActionRef ref;
  ResolvedAction resolved;
  std::string dir;  // container path of the action's directory
};

std::string step_display_name(const pipeline::Step& s, size_t index);
Result<std::string> eval_string(const std::string& text, const EvalContext& ctx,
                                const std::string& what);
Result<bool> eval_bool_text(const std::string& text, const EvalContext& ctx, bool dflt,
                            const std::string& what);
Result<std::optional<std::chrono::milliseconds>> eval_minutes(const std::string& text,
                                                              const EvalContext& ctx,
                                                              const std::string& what);
bool image_has_bash(const std::vector<fs::path>& layers);
// The job's log file and the console: every line masked, timestamped in the
// file, prefixed on the console. Keeps the last lines for the report.
// The job's log file and the console: every line masked, timestamped in the
// file, prefixed on the console. Keeps the last lines for the report
// (job_log.cpp).
class JobLog {
 public:
  JobLog(Console& console, const Masker& masker, std::string prefix, const fs::path& file);

  void line(executor::Stream stream, std::string_view raw,
            std::chrono::system_clock::time_point when);
  void note(const std::string& text);
  // ::group:: on a terminal folds the group's lines into one line, printed
  // when the group ends; elsewhere the title is a line and the lines follow.
  void begin_group(const std::string& title);
  void end_group();
  // The lines logged since the last take_tail(), joined; the tail is emptied.
  std::string take_tail();

 private:
  Console& console_;
  const Masker& masker_;
  std::string prefix_;
  std::mutex mu_;
  std::ofstream out_;
  std::deque<std::string> tail_;
  bool folding_ = false;  // lines come from one step's sink at a time
  size_t folded_ = 0;
  std::string group_title_;
};

// A disorderfs view of a directory, directory entries in reverse order
// (verify's dir-order variation); unmounted when destroyed.
struct DisorderMount {
  Status mount(const std::filesystem::path& real, const std::filesystem::path& view);
  void unmount();
  ~DisorderMount() { unmount(); }
  std::filesystem::path view;
  std::filesystem::path bind;  // the real directory, where disorderfs may reach it
};

// One job instance from start to end (run_job). Its work is split by
// concern: job.cpp (the job's course: contexts, if:, outputs, teardown),
// job_container.cpp (image, spec and options of its container),
// job_steps.cpp (the step loop, step processes, workflow commands),
// job_actions.cpp (repository actions, pre and post stages),
// job_services.cpp (services, volumes, the `job` context), job_network.cpp
// (the egress network), job_replay.cpp (environment hashes, replay pins and
// checks, --until and --shell), job_variation.cpp (verify's variations).
class JobExecution {
 public:
  JobExecution(RunContext& run, const pipeline::JobInstance& inst, size_t index, MatrixPosition pos,
               const std::vector<const JobReport*>& needed, CancelToken& token, JobReport& report);
  // Runs the job; its report is complete when this returns.
  JobOutcome run();

 private:
  // The job's course (job.cpp).
  JobOutcome failure(std::string reason);
  JobOutcome run_inner();
  static std::string_view first_line_of(const Error& e);
  // The status the job's if: sees of the jobs it needs.
  pipeline::JobStatus needs_status() const;
  // github, matrix, strategy, needs, runner, secrets, inputs, vars, steps, job.
  void build_base_context();

  // The job container (job_container.cpp): its image (container.image, else
  // the runs-on label's), workspace, mounts, options, network, actions and
  // environment hash; then the container and its services start.
  Status start_container(const fs::path& job_dir);
  // .lockstep.yml defaults, then the job's container env, volumes and options.
  Status apply_container_options(executor::ContainerSpec& spec);
  Status apply_parsed_options(const pipeline::ContainerOptions& o, executor::ContainerSpec& spec);

  // The egress network (job_network.cpp): joins `spec` to a new namespace
  // when its mode is egress; finish_network() puts the fetch record in the
  // report.
  Status attach_network(const fs::path& job_dir, executor::ContainerSpec& spec);
  // A sibling of the job container (a service, a Docker action) in the job's
  // network: its namespace, the job's /etc/resolv.conf and, for steps
  // (`proxy_env`), the proxy variables.
  void join_job_network(executor::ContainerSpec& spec, const std::string& job_container_id,
                        bool proxy_env);
  Status finish_network();
  void add_run_ca(executor::ContainerSpec& spec) const;

  // Services, volumes and the `job` context (job_services.cpp).
  // The services whose image does not evaluate to "" (GitHub's way to leave
  // a service out, e.g. per matrix entry), images evaluated, in order.
  struct ChosenService {
    const pipeline::ServiceDecl* decl;
    std::string image;
  };
  Status choose_services();
  // Services join the job container's network namespace; the job waits
  // until every one is healthy.
  Status start_services(const fs::path& job_dir, const std::string& job_container_id);
  void stop_services();
  static std::string service_container_id(const std::string& job_container_id,
                                          const std::string& name);
  // job.container.{id,network} and job.services.<id>.{id,network,ports}.
  Status set_job_context(const std::string& job_container_id);
  // One `container.volumes` entry, as docker -v reads it: a host bind
  // (/host:/path), a named volume (NAME:/path) or an anonymous one (/path).
  Status add_volume(const std::string& text, executor::ContainerSpec& spec);
  // Named volumes held while the job runs; anonymous ones removed after it.
  void release_volumes();

  // Environment hashes, replay pins and checks, --until and --shell
  // (job_replay.cpp).
  Status compute_job_hash(const executor::ContainerSpec& spec, const PreparedImage& image);
  Status compute_step_hash(const pipeline::StepEnvInputs& in, StepReport& sr);
  Status check_expected(const std::string& what, const Json& doc);
  std::string secret_free(const std::string& text) const;
  // A replay pins each image to the recorded manifest; else lockstep.lock.
  ImagePin replay_pin(const std::string& image) const;
  bool is_until_step(const pipeline::Step& step, size_t i, const StepReport& sr) const;
  static executor::ProcessResult stopped_result();
  void open_shell();

  // Verify's variations (job_variation.cpp).
  void apply_variation(executor::ContainerSpec& spec);
  // Verify's uid variation: the build's user owns the workspace and $HOME
  // while run steps run; built-in actions (libgit2 refuses to check out into
  // a directory another user owns) find them owned by root again.
  // The workspace and $HOME owned by the ids a run step writes as (for_build)
  // or by host root for built-in actions: --userns and verify's uid variation.
  Status own_workspace(bool for_build = true);

  // Steps (job_steps.cpp).
  JobOutcome run_steps(const fs::path& job_dir);
  // One top-level step: `env` is its step_env(). Computes its environment hash.
  Result<executor::ProcessResult> run_one_step(const pipeline::Step& step, size_t i, StepReport& sr,
                                               JobEnv::Map env);
  // A run: step, top-level (`sr` set: hashed) or inside a composite action.
  Result<executor::ProcessResult> run_script(const pipeline::Step& step, StepIo& io,
                                             JobEnv::Map env, StepReport* sr, size_t index,
                                             const std::string& what);
  // The variables every step process gets, for the step with `github.action` `action_id`.
  std::map<std::string, std::string> injected_env(const std::string& action_id) const;
  // Fresh $GITHUB_* files for a step process; their container paths (under
  // `dir`, the job's /__w/_temp as the process sees it).
  Result<std::map<std::string, std::string>> step_files(StepIo& io, const std::string& dir);
  // Runs `ps` in `in`, handling workflow commands, then reads what the step
  // wrote to its files (outputs to the current steps context).
  Result<executor::ProcessResult> exec_step(executor::Container& in,
                                            const executor::ProcessSpec& ps, StepIo& io);
  bool handle_command(const pipeline::WorkflowCommand& cmd, StepIo& io);
  // actions/checkout & co.; `sr` null inside a composite action.
  Result<executor::ProcessResult> run_builtin_step(const pipeline::Step& step, StepReport* sr,
                                                   const std::string& id, size_t index,
                                                   const std::string& what);
  // Post-job work, run after the steps in reverse order of registration:
  // built-in actions' saves (`builtin`, told whether the job succeeded) and
  // actions' post stages (`run`, when `condition` holds; default always()).
  struct Post {
    std::string step;
    std::function<Status(bool)> builtin;
    std::string condition;
    std::function<Result<executor::ProcessResult>(StepReport&)> run;
  };
  JobOutcome run_posts(JobOutcome result);

  // Actions (job_actions.cpp).
  // Resolves the job's repository actions (and those inside composite
  // actions) before its container starts, and what they need mounted.
  Status prepare_actions(executor::ContainerSpec& spec);
  Status prepare_checkouts();
  Result<JobAction> job_action(const pipeline::Step& step, const std::string& what);
  Result<std::map<std::string, std::string>> action_inputs(const pipeline::Step& step,
                                                           const pipeline::ActionManifest& m,
                                                           const std::string& what);
  // A `uses:` step that is not built in: at the top level (`sr` set) or
  // inside a composite action.
  Result<executor::ProcessResult> run_action(const pipeline::Step& step, StepIo& io,
                                             JobEnv::Map env, StepReport* sr, size_t index,
                                             const std::string& what);
  enum class Stage { kPre, kMain, kPost };
  Result<executor::ProcessResult> run_node(const JobAction& a, Stage stage,
                                           const std::map<std::string, std::string>& inputs,
                                           StepIo& io, JobEnv::Map env, const std::string& what);
  Result<executor::ProcessResult> run_composite(const pipeline::Step& step, const JobAction& a,
                                                const std::map<std::string, std::string>& inputs,
                                                StepIo& io, JobEnv::Map env,
                                                const std::string& what);
  Result<executor::ProcessResult> run_docker(const std::string& image, const JobAction* a,
                                             Stage stage,
                                             const std::map<std::string, std::string>& inputs,
                                             StepIo& io, JobEnv::Map env, const std::string& what);
  Status run_pre_steps(bool& failed, std::string& reason);
  Json action_document(const JobAction& a) const;
  // The image a Docker action runs: docker://IMAGE, or built from its Dockerfile.
  Result<std::string> docker_action_image(const JobAction& a, const std::string& what);
  // $GITHUB_EVENT_PATH: the event payload, written once per job; its path in the job.
  Result<std::string> event_file();

  // The job's state. Declared in this order for their destruction: the
  // container and its services go before the network, the volumes, the
  // runtime and the disorderfs view they use.
  RunNetwork::Job net_;
  std::vector<ChosenService> services_to_start_;
  std::vector<cache::VolumeUse> volume_uses_;
  std::vector<fs::path> anonymous_volumes_;
  // Container path -> ("named-volume", NAME) or ("anonymous-volume", ""),
  // for the environment hash's mounts.
  std::map<std::string, std::pair<std::string, std::string>> volume_kinds_;
  std::optional<std::pair<uint32_t, uint32_t>> workspace_owner_;
  bool stop_here_ = false;
  bool shell_opened_ = false;
  executor::ProcessSpec last_ps_;                 // the last step's process (env, workdir)
  Digest chain_;                                  // the job's hash, then each step's
  std::string croot_, ctemp_, chome_;             // container paths of /__w, /__w/_temp, $HOME
  executor::ContainerSpec spec_copy_;             // what the job container was started with
  std::map<std::string, std::string> checkouts_;  // "url@ref" -> commit, resolved at start
  std::map<std::string, std::string> built_;      // built tag -> digest
  std::map<std::string, std::string> built_by_action_;  // action dir|Dockerfile -> tag
  std::map<std::string, JobAction> prepared_;  // by uses text: resolved before the job started
  std::set<std::string> copied_;               // action trees copied into this job's _actions
  std::map<std::string, std::map<std::string, std::string>> states_;  // by step tag
  std::optional<NodeRuntime> node_;  // mounted at kNodeMount when the job uses actions
  fs::path job_dir_;
  int composite_depth_ = 0;
  std::vector<Post> posts_;
  fs::path home_host_;

  // What the job was given.
  RunContext& run_;
  const pipeline::JobInstance& inst_;
  const pipeline::Job& job_;
  const pipeline::Workflow& wf_;  // the job's own workflow (a called one's, for called jobs)
  size_t index_;
  MatrixPosition pos_;
  const std::vector<const JobReport*>& needed_;
  CancelToken& token_;
  JobReport& report_;

  EvalContext ctx_;
  JobEnv job_env_;
  std::unique_ptr<JobLog> log_;
  DisorderMount disorder_;  // before container_: unmounted after it stopped
  std::unique_ptr<executor::Container> container_;
  std::vector<std::unique_ptr<Service>> services_;
  bool continue_on_error_ = false;
  bool bash_ = false;
  fs::path workspace_host_, temp_host_;
  std::string workspace_;
  std::string default_path_;
  std::chrono::steady_clock::time_point deadline_;
  std::chrono::milliseconds job_timeout_{0};
};

}  // namespace lockstep::runner::detail
