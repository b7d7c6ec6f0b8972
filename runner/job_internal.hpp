#pragma once
// Internals of one job's execution, shared by job.cpp (setup, container) and
// job_steps.cpp (the step loop). Not included outside runner/.
#include <deque>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>

#include "cache/volumes.hpp"
#include "common/fs.hpp"
#include "pipeline/commands.hpp"
#include "pipeline/env_hash.hpp"
#include "pipeline/expr.hpp"
#include "pipeline/options.hpp"
#include "pipeline/workflow_call.hpp"
#include "runner/action_source.hpp"
#include "runner/actions.hpp"
#include "runner/container_config.hpp"
#include "runner/hash_files.hpp"
#include "runner/job.hpp"
#include "runner/job_env.hpp"
#include "runner/lock_use.hpp"
#include "runner/network.hpp"
#include "runner/node_runtime.hpp"
#include "runner/services.hpp"

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
class JobLog {
 public:
  JobLog(RunShared& run, std::string prefix, const fs::path& file)
      : run_(run), prefix_(std::move(prefix)), out_(file, std::ios::app) {}

  void line(executor::Stream stream, std::string_view raw,
            std::chrono::system_clock::time_point when) {
    std::string masked = run_.masker->mask(raw);
    if (folding_)
      ++folded_;  // the log file keeps every line; the terminal shows the group's one line
    else
      run_.console->line(prefix_, masked, stream == executor::Stream::kStderr);
    std::lock_guard lk(mu_);
    auto secs = std::chrono::duration_cast<std::chrono::milliseconds>(when.time_since_epoch());
    out_ << secs.count() / 1000 << '.' << (secs.count() % 1000) / 100
         << (stream == executor::Stream::kStderr ? " E " : " O ") << masked << '\n';
    tail_.push_back(std::move(masked));
    if (tail_.size() > 30) tail_.pop_front();
  }

  void note(const std::string& text) {
    std::string masked = run_.masker->mask(text);
    run_.console->line(prefix_, masked);
    std::lock_guard lk(mu_);
    out_ << "-- " << masked << '\n';
    tail_.push_back(masked);
    if (tail_.size() > 30) tail_.pop_front();
  }

  // ::group:: on a terminal folds the group's lines into one line, printed
  // when the group ends; elsewhere the title is a line and the lines follow.
  void begin_group(const std::string& title) {
    end_group();
    std::string masked = run_.masker->mask(title);
    {
      std::lock_guard lk(mu_);
      out_ << "-- group: " << masked << '\n';
    }
    if (run_.console->color()) {
      folding_ = true;
      folded_ = 0;
      group_title_ = masked;
    } else {
      run_.console->line(prefix_, "\u25b8 " + masked);
    }
  }
  void end_group() {
    if (!folding_) return;
    folding_ = false;
    run_.console->line(prefix_, "\u25b8 " + group_title_ + " (" + std::to_string(folded_) +
                                    (folded_ == 1 ? " line" : " lines") + ")");
  }

  // The lines logged since the last take_tail(), joined; the tail is emptied.
  std::string take_tail() {
    std::lock_guard lk(mu_);
    std::string s;
    for (const auto& l : tail_) s += l + "\n";
    tail_.clear();
    return s;
  }

 private:
  RunShared& run_;
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

class JobExecution {
 public:
  JobExecution(RunShared& run, const pipeline::JobInstance& inst, size_t index, MatrixPosition pos,
               const std::vector<const JobReport*>& needed, CancelToken& token, JobReport& report)
      : run_(run),
        inst_(inst),
        job_(*inst.job),
        wf_(pipeline::workflow_of(inst, *run.workflow)),
        index_(index),
        pos_(pos),
        needed_(needed),
        token_(token),
        report_(report) {}

  JobOutcome run() {
    auto start = std::chrono::steady_clock::now();
    JobOutcome o = run_inner();
    // Step scripts and files hold whatever the steps were given, secrets
    // included: like GitHub's runner, lockstep keeps none of them after the
    // job.
    if (!temp_host_.empty()) {
      if (auto r = remove_tree(temp_host_); !r && log_)
        log_->note("remove " + temp_host_.string() + ": " + r.error().message());
    }
    release_volumes();
    o.duration = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    // What goes into the record and reports holds no secret: a reason may
    // quote a command or an error that carried one.
    o.reason = run_.masker->mask(o.reason);
    for (auto* list : {&report_.steps, &report_.pre_steps, &report_.post_steps})
      for (auto& st : *list) st.reason = run_.masker->mask(st.reason);
    report_.outcome = o;
    return o;
  }

 private:
  JobOutcome failure(std::string reason) {
    return {JobResult::kFailure, std::move(reason), {}, continue_on_error_};
  }

  JobOutcome run_inner() {
    report_.job_id = job_.id;
    report_.display_name = inst_.display_name;
    report_.matrix = inst_.matrix;
    fs::path job_dir =
        run_.run_dir / "jobs" / (std::to_string(index_ + 1) + "-" + slug(inst_.display_name));
    std::error_code ec;
    fs::create_directories(job_dir, ec);
    if (ec) return failure("create " + job_dir.string() + ": " + ec.message());
    report_.log_file = job_dir / "log.txt";
    job_dir_ = job_dir;
    log_ = std::make_unique<JobLog>(run_, inst_.display_name, report_.log_file);

    croot_ = run_.vary.workspace_root.empty() ? kContainerRoot : run_.vary.workspace_root;
    ctemp_ = croot_ + "/_temp";
    chome_ = run_.vary.home.empty() ? kContainerHome : run_.vary.home;
    report_.started_at = std::chrono::system_clock::now();
    build_base_context();
    auto coe = eval_bool_text(job_.continue_on_error, ctx_, false,
                              "job '" + job_.id + "' continue-on-error");
    if (!coe) return failure(coe.error().message());
    continue_on_error_ = *coe;

    // The job's if: sees the status of the jobs it needs.
    ctx_.status = needs_status();
    auto run_it = pipeline::evaluate_if(job_.if_expr, ctx_);
    if (!run_it) return failure(std::string(first_line_of(run_it.error())));
    if (!*run_it) {
      std::string why = job_.if_expr.empty() ? "a job it needs did not succeed"
                                             : "if: " + job_.if_expr + " was false";
      log_->note("skipped: " + why);
      return {JobResult::kSkipped, why, {}, false};
    }
    ctx_.status = pipeline::JobStatus::kSuccess;
    if (token_.cancelled()) return {JobResult::kCancelled, "cancelled", {}, false};

    auto env = job_env_.build(run_, wf_, job_, ctx_);
    if (!env) return failure(env.error().message());

    auto timeout =
        eval_minutes(job_.timeout_minutes, ctx_, "job '" + job_.id + "' timeout-minutes");
    if (!timeout) return failure(timeout.error().message());
    deadline_ = std::chrono::steady_clock::now() + timeout->value_or(std::chrono::minutes(360));
    job_timeout_ = timeout->value_or(std::chrono::minutes(360));

    auto started = start_container(job_dir);
    if (!started) {
      stop_services();
      if (container_) (void)container_->stop(std::chrono::seconds(5));
      return failure(started.error().message());
    }

    JobOutcome result = run_posts(run_steps(job_dir));
    report_.usage = container_->usage();
    if (report_.usage.oom_killed && result.result == JobResult::kFailure &&
        result.reason.find("out of memory") == std::string::npos)
      result.reason += " (the container ran out of memory)";
    token_.on_cancel(nullptr);
    stop_services();
    // Returns once the job's processes are dead; the rest of the teardown
    // (the init's exit, the cgroup) overlaps the next job (executor.hpp).
    auto stopped = run_.executor->retire(
        std::move(container_), std::chrono::duration_cast<std::chrono::milliseconds>(kStopGrace));
    container_.reset();
    // A download that broke its pin is the reason, even when the step that
    // got the proxy's refusal failed first.
    if (auto n = finish_network();
        !n && (result.result == JobResult::kSuccess || result.result == JobResult::kFailure))
      result = failure(n.error().message());
    disorder_.unmount();
    if (!stopped && result.result == JobResult::kSuccess)
      return failure("stop container: " + stopped.error().message());

    if (result.result == JobResult::kSuccess || result.result == JobResult::kFailure) {
      for (const auto& [name, text] : job_.outputs) {
        auto v = pipeline::interpolate(text, ctx_);
        if (!v)
          log_->note("output '" + name + "': " + std::string(first_line_of(v.error())));
        else if (run_.masker->mask(*v) != *v)  // as GitHub's runner: never passed on
          log_->note("warning: Skip output '" + name + "' since it may contain secret.");
        else
          report_.outputs[name] = *v;
      }
    }
    return result;
  }

  static std::string_view first_line_of(const Error& e) {
    std::string_view m = e.message();
    return m.substr(0, m.find('\n'));
  }

  pipeline::JobStatus needs_status() const {
    for (const JobReport* r : needed_) {
      if (r->outcome.result == JobResult::kCancelled) return pipeline::JobStatus::kCancelled;
    }
    for (const JobReport* r : needed_) {
      if (r->outcome.result == JobResult::kFailure && !r->outcome.continue_on_error)
        return pipeline::JobStatus::kFailure;
      if (r->outcome.result == JobResult::kSkipped) return pipeline::JobStatus::kFailure;
    }
    return pipeline::JobStatus::kSuccess;
  }

  void build_base_context() {
    Value& c = ctx_.contexts;
    c["github"] = run_.github;
    c["github"]["job"] = job_.id;
    c["matrix"] = Value::parse(inst_.matrix.dump());
    if (!inst_.matrix.is_object() || inst_.matrix.empty()) c["matrix"] = Value::object();
    c["strategy"] = {
        {"fail-fast", job_.strategy.fail_fast != "false"},
        {"job-index", static_cast<int64_t>(pos_.index)},
        {"job-total", static_cast<int64_t>(pos_.total)},
        {"max-parallel", job_.strategy.max_parallel.value_or(static_cast<int>(pos_.total))}};
    c["needs"] = needs_context(needed_);
    c["runner"] = {{"os", "Linux"},  {"arch", "X64"},        {"name", "lockstep"},
                   {"temp", ctemp_}, {"tool_cache", "/__t"}, {"debug", ""}};
    c["github"]["workspace"] = croot_ + "/" + run_.repo_name + "/" + run_.repo_name;
    Value secrets = Value::object();
    for (const auto& [k, v] : run_.secrets) secrets[k] = v;
    // A called workflow's jobs see the inputs and secrets their call passed.
    c["secrets"] = inst_.scope ? inst_.scope->secrets : secrets;
    // As on GitHub, github.token is the GITHUB_TOKEN secret (given with
    // --secret GITHUB_TOKEN=...; empty without one).
    c["github"]["token"] =
        run_.secrets.count("GITHUB_TOKEN") ? run_.secrets.at("GITHUB_TOKEN") : "";
    c["inputs"] = inst_.scope ? inst_.scope->inputs : Value::object();
    c["vars"] = run_.vars;
    c["steps"] = Value::object();
    c["job"] = {{"status", "success"}};
  }

  Result<void> start_container(const fs::path& job_dir) {
    // Image: container.image, else the runs-on label mapping.
    std::string image;
    if (job_.container) {
      LS_TRY_ASSIGN(
          image, eval_string(job_.container->image, ctx_, "job '" + job_.id + "' container image"));
    } else {
      for (const auto& label : job_.runs_on) {
        LS_TRY_ASSIGN(std::string l, eval_string(label, ctx_, "job '" + job_.id + "' runs-on"));
        if (auto it = run_.platforms.find(l); it != run_.platforms.end()) {
          image = it->second;
          if (run_.hosted && run_.hosted->first_use(l))
            std::fprintf(stderr,
                         "lockstep: note: runs-on '%s' runs in %s (GitHub's hosted runner image "
                         "is a VM, not a container); choose another with runs-on: in "
                         ".lockstep.yml or --platform %s=IMAGE\n",
                         l.c_str(), image.c_str(), l.c_str());
          break;
        }
      }
      if (image.empty()) {
        std::string labels;
        for (const auto& l : job_.runs_on) labels += (labels.empty() ? "" : ", ") + l;
        return fail("job '" + job_.id + "' has no container and runs-on '" + labels +
                        "' is not mapped to an image: add 'container: IMAGE' to the job, or map "
                        "the label with --platform LABEL=IMAGE or in .lockstep.yml",
                    ErrorKind::kWorkflow);
      }
    }
    report_.image = image;
    log_->note("image " + image);
    ImagePin pin = replay_pin(image);
    LS_TRY_ASSIGN(PreparedImage prepared, run_.images->get(pin.lookup));
    LS_TRY(verify_image_pin(pin, image, prepared.record));
    report_.image_digest = prepared.record.manifest.str();
    report_.inputs.push_back({"image", image, report_.image_digest, !pin.locked.empty()});

    // Host side: <job>/w is the container's /__w; <job>/home its $HOME.
    fs::path w = job_dir / "w";
    workspace_host_ = w / run_.repo_name / run_.repo_name;
    temp_host_ = w / "_temp";
    std::error_code ec;
    home_host_ = job_dir / "home";
    for (const auto& d : {workspace_host_, temp_host_, home_host_}) {
      fs::create_directories(d, ec);
      if (ec) return fail("create " + d.string() + ": " + ec.message());
    }
    workspace_ = croot_ + "/" + run_.repo_name + "/" + run_.repo_name;
    bash_ = image_has_bash(prepared.layer_dirs);
    ctx_.hash_files = [this](const std::vector<std::string>& patterns) {
      return hash_workspace_files(workspace_host_, patterns);
    };

    executor::ContainerSpec spec;
    spec.id = "ls-" + run_.run_id + "-" + std::to_string(index_ + 1);
    spec.network.mode = executor::NetworkMode::kEgress;  // unless options say otherwise
    spec.layers = prepared.layer_dirs;
    if (run_.vary.reverse_dir_order) {
      LS_TRY(disorder_.mount(w, job_dir / "w-view"));
      spec.mounts.push_back({disorder_.view, croot_, false});
    } else {
      spec.mounts.push_back({w, croot_, false});
    }
    spec.mounts.push_back({job_dir / "home", chome_, false});
    spec.hostname = "lockstep";
    spec.env = env_from_config(prepared.record.config_json);
    for (const auto& e : spec.env)
      if (e.rfind("PATH=", 0) == 0) default_path_ = e.substr(5);
    spec.user = user_from_config(prepared.record.config_json);
    spec.workdir = workspace_;
    LS_TRY(choose_services());
    std::vector<std::string> service_names;
    for (const auto& svc : services_to_start_) service_names.push_back(svc.decl->name);
    LS_TRY(write_file(job_dir / "hosts", hosts_file(service_names)));
    spec.mounts.push_back({job_dir / "hosts", "/etc/hosts", true});
    LS_TRY(apply_container_options(spec));
    spec.user_namespace = run_.userns;
    apply_variation(spec);
    LS_TRY(attach_network(job_dir, spec));
    LS_TRY(prepare_actions(spec));
    LS_TRY(prepare_checkouts());
    report_.network = executor::to_string(spec.network);
    // The environment hash, before anything runs: a replay refuses here.
    LS_TRY(compute_job_hash(spec, prepared));

    auto c = run_.executor->start(spec);
    if (!c)
      return fail(std::move(c.error()).context("start container for job " + inst_.display_name));
    container_ = std::move(*c);
    executor::Container* raw = container_.get();
    token_.on_cancel([raw] { raw->cancel(std::chrono::seconds(5)); });
    LS_TRY(start_services(job_dir, spec.id));
    return set_job_context(spec.id);
  }

  // Services join the job container's network namespace; the job waits
  // until every one is healthy (job_services.cpp).
  Status start_services(const fs::path& job_dir, const std::string& job_container_id);

  void stop_services() {
    for (auto& s : services_) s->stop();
    services_.clear();
  }

  Status apply_container_options(executor::ContainerSpec& spec) {
    if (!run_.default_options.empty()) {  // .lockstep.yml defaults; the job's options win
      LS_TRY_ASSIGN(pipeline::ContainerOptions d,
                    pipeline::parse_container_options(run_.default_options));
      LS_TRY(apply_parsed_options(d, spec));
    }
    if (!job_.container) return {};
    const auto& decl = *job_.container;
    for (const auto& [k, v] : decl.env) {
      LS_TRY_ASSIGN(std::string val, eval_string(v, ctx_, "container env " + k));
      spec.env.push_back(k + "=" + val);
    }
    for (const auto& vol : decl.volumes) {
      LS_TRY_ASSIGN(std::string v, eval_string(vol, ctx_, "container volume"));
      LS_TRY(add_volume(v, spec));
    }
    if (decl.options.empty()) return {};
    LS_TRY_ASSIGN(std::string text, eval_string(decl.options, ctx_, "container options"));
    LS_TRY_ASSIGN(pipeline::ContainerOptions o, pipeline::parse_container_options(text));
    return apply_parsed_options(o, spec);
  }

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
  RunNetwork::Job net_;

  // Services, volumes and the `job` context (job_services.cpp).
  // The services whose image does not evaluate to "" (GitHub's way to leave
  // a service out, e.g. per matrix entry), images evaluated, in order.
  struct ChosenService {
    const pipeline::ServiceDecl* decl;
    std::string image;
  };
  std::vector<ChosenService> services_to_start_;
  Status choose_services();
  static std::string service_container_id(const std::string& job_container_id,
                                          const std::string& name);
  // job.container.{id,network} and job.services.<id>.{id,network,ports}.
  Status set_job_context(const std::string& job_container_id);
  // One `container.volumes` entry, as docker -v reads it: a host bind
  // (/host:/path), a named volume (NAME:/path) or an anonymous one (/path).
  Status add_volume(const std::string& text, executor::ContainerSpec& spec);
  // Named volumes held while the job runs; anonymous ones removed after it.
  void release_volumes();
  std::vector<cache::VolumeUse> volume_uses_;
  std::vector<fs::path> anonymous_volumes_;
  // Container path -> ("named-volume", NAME) or ("anonymous-volume", ""),
  // for the environment hash's mounts.
  std::map<std::string, std::pair<std::string, std::string>> volume_kinds_;

  // Environment hashes and the run record (job_record.cpp).
  void apply_variation(executor::ContainerSpec& spec);
  Status compute_job_hash(const executor::ContainerSpec& spec, const PreparedImage& image);
  Status compute_step_hash(const pipeline::StepEnvInputs& in, StepReport& sr);
  Status check_expected(const std::string& what, const Json& doc);
  // Verify's uid variation: the build's user owns the workspace and $HOME
  // while run steps run; built-in actions (libgit2 refuses to check out into
  // a directory another user owns) find them owned by root again.
  // The workspace and $HOME owned by the ids a run step writes as (for_build)
  // or by host root for built-in actions: --userns and verify's uid variation.
  Status own_workspace(bool for_build = true);
  std::optional<std::pair<uint32_t, uint32_t>> workspace_owner_;
  std::string secret_free(const std::string& text) const;
  // A replay pins each image to the recorded manifest; else lockstep.lock.
  ImagePin replay_pin(const std::string& image) const;
  bool is_until_step(const pipeline::Step& step, size_t i, const StepReport& sr) const;
  static executor::ProcessResult stopped_result() {
    executor::ProcessResult pr;
    pr.kind = executor::ExitKind::kCancelled;
    pr.reason = "stopped (--until)";
    return pr;
  }
  void open_shell();
  bool stop_here_ = false;
  bool shell_opened_ = false;
  executor::ProcessSpec last_ps_;      // the last step's process (env, workdir)
  Digest chain_;                       // the job's hash, then each step's
  std::string croot_, ctemp_, chome_;  // container paths of /__w, /__w/_temp, $HOME
  executor::ContainerSpec spec_copy_;  // what the job container was started with

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

  // Actions (job_actions.cpp).
  // Resolves the job's repository actions (and those inside composite
  // actions) before its container starts, and what they need mounted.
  Status prepare_actions(executor::ContainerSpec& spec);
  Status prepare_checkouts();
  std::map<std::string, std::string> checkouts_;  // "url@ref" -> commit, resolved at job start
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
  std::map<std::string, std::string> built_;            // built tag -> digest
  std::map<std::string, std::string> built_by_action_;  // action dir|Dockerfile -> tag
  // $GITHUB_EVENT_PATH: the event payload, written once per job; its path in the job.
  Result<std::string> event_file();
  std::map<std::string, JobAction> prepared_;  // by uses text: resolved before the job started
  std::set<std::string> copied_;               // action trees copied into this job's _actions
  std::map<std::string, std::map<std::string, std::string>> states_;  // by step tag
  std::optional<NodeRuntime> node_;  // mounted at kNodeMount when the job uses actions
  fs::path job_dir_;
  int composite_depth_ = 0;

  // Post-job work, run after the steps in reverse order of registration:
  // built-in actions' saves (`builtin`, told whether the job succeeded) and
  // actions' post stages (`run`, when `condition` holds; default always()).
  struct Post {
    std::string step;
    std::function<Status(bool)> builtin;
    std::string condition;
    std::function<Result<executor::ProcessResult>(StepReport&)> run;
  };
  std::vector<Post> posts_;
  JobOutcome run_posts(JobOutcome result);
  fs::path home_host_;

  RunShared& run_;
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
