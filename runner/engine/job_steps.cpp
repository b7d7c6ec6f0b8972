#include <algorithm>

#include "pipeline/action.hpp"
#include "pipeline/shell.hpp"
#include "runner/engine/job_internal.hpp"

// The step loop of a job: if:, environment, shells, timeouts,
// continue-on-error, post steps, workflow commands and the files steps talk
// back through.
namespace lockstep::runner::detail {

namespace {

constexpr const char* kDeprecatedCommand =
    "The `%s` command is deprecated and will be disabled soon. Please upgrade to using "
    "Environment Files. For more information see: "
    "https://github.blog/changelog/2022-10-11-github-actions-deprecating-save-state-and-set-"
    "output-commands/";
constexpr const char* kDisabledCommand =
    "The `%s` command is disabled. Please upgrade to using Environment Files or opt into "
    "unsecure command execution by setting the `ACTIONS_ALLOW_UNSECURE_COMMANDS` environment "
    "variable to `true`. For more information see: "
    "https://github.blog/changelog/2020-10-01-github-actions-deprecating-set-env-and-add-path-"
    "commands/";

// As .NET's bool.TryParse, which GitHub's runner reads the variable with:
// "true" in any case, blanks around it allowed.
bool parses_as_true(std::string v) {
  const char* ws = " \t\r\n";
  size_t b = v.find_first_not_of(ws);
  if (b == std::string::npos) return false;
  v = v.substr(b, v.find_last_not_of(ws) - b + 1);
  for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return v == "true";
}

std::string with_command(const char* fmt, const std::string& command) {
  std::string s = fmt;
  s.replace(s.find("%s"), 2, command);
  return s;
}

// The files a step process gets, by variable.
constexpr std::pair<const char*, const char*> kStepFiles[] = {
    {"GITHUB_OUTPUT", "output_"},        {"GITHUB_ENV", "env_"},     {"GITHUB_PATH", "path_"},
    {"GITHUB_STEP_SUMMARY", "summary_"}, {"GITHUB_STATE", "state_"},
};

}  // namespace

JobOutcome JobExecution::run_steps(const fs::path& job_dir) {
  job_dir_ = job_dir;
  bool failed = false;
  std::string failure_reason;
  report_.steps.resize(job_.steps.size());
  for (size_t i = 0; i < job_.steps.size(); ++i) {
    report_.steps[i].name = step_display_name(job_.steps[i], i);
    report_.steps[i].id =
        job_.steps[i].id.empty() ? "__step" + std::to_string(i + 1) : job_.steps[i].id;
  }
  if (auto pre = run_pre_steps(failed, failure_reason); !pre) {
    failed = true;
    failure_reason = pre.error().message();
    log_->note(failure_reason);
  }
  for (size_t i = 0; i < job_.steps.size(); ++i) {
    const pipeline::Step& step = job_.steps[i];
    StepReport& sr = report_.steps[i];
    auto begin = std::chrono::steady_clock::now();

    ctx_.status = token_.cancelled() ? pipeline::JobStatus::kCancelled
                  : failed           ? pipeline::JobStatus::kFailure
                                     : pipeline::JobStatus::kSuccess;
    ctx_.contexts["job"]["status"] = failed ? "failure" : "success";
    // The step's env first: its if: sees it (GitHub evaluates them in this order).
    auto env = job_env_.step_env(step, ctx_);
    Result<bool> should =
        env ? pipeline::evaluate_if(step.if_expr, ctx_) : Result<bool>(tl::unexpected(env.error()));
    std::optional<executor::ProcessResult> pr;
    std::string error;
    if (!should) {
      error = std::string(first_line_of(should.error()));
      if (!env) error = "step '" + sr.name + "': " + error;
    } else if (!*should) {
      sr.outcome = sr.conclusion = JobResult::kSkipped;
      ctx_.contexts["steps"][sr.id] = {
          {"outcome", "skipped"}, {"conclusion", "skipped"}, {"outputs", Value::object()}};
      continue;
    } else {
      stop_here_ = is_until_step(step, i, sr);
      if (!stop_here_) log_->note("step: " + sr.name);
      auto r = run_one_step(step, i, sr, std::move(*env));
      if (stop_here_ && r) {
        sr.outcome = sr.conclusion = JobResult::kSkipped;
        sr.reason = "--until";
        log_->note("stopped before step '" + sr.name + "' (--until)");
        if (run_.replay.shell_at_stop) open_shell();
        for (size_t k = i + 1; k < job_.steps.size(); ++k) report_.steps[k].reason = "--until";
        if (failed) return failure(failure_reason);
        return {JobResult::kSuccess, "stopped before step '" + sr.name + "' (--until)", {}, false};
      }
      if (r)
        pr = *r;
      else
        error = r.error().message();
    }

    sr.duration = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - begin);
    bool ok = pr && pr->ok();
    if (ok) {
      sr.outcome = JobResult::kSuccess;
    } else {
      sr.outcome = (pr && pr->kind == executor::ExitKind::kCancelled) ? JobResult::kCancelled
                                                                      : JobResult::kFailure;
      sr.reason = pr ? pr->reason : error;
    }
    auto coe = eval_bool_text(step.continue_on_error, ctx_, false,
                              "step '" + sr.name + "' continue-on-error");
    bool step_coe = coe && *coe;
    sr.conclusion =
        (sr.outcome == JobResult::kFailure && step_coe) ? JobResult::kSuccess : sr.outcome;
    sr.log_tail = log_->take_tail();
    Value& sc = ctx_.contexts["steps"][sr.id];
    if (!sc.contains("outputs")) sc["outputs"] = Value::object();
    sc["outcome"] = to_string(sr.outcome);
    sc["conclusion"] = to_string(sr.conclusion);
    if (sr.outcome != JobResult::kSuccess) {
      log_->note("step '" + sr.name + "' failed: " + sr.reason +
                 (sr.conclusion == JobResult::kSuccess ? " (continue-on-error)" : ""));
    }
    if (sr.outcome == JobResult::kFailure && run_.replay.shell_at_stop && !shell_opened_) {
      shell_opened_ = true;
      log_->note("opening a shell at the failed step '" + sr.name + "'");
      open_shell();
    }
    if (sr.conclusion == JobResult::kCancelled && !failed) {
      failed = true;
      failure_reason = "step '" + sr.name + "': " + sr.reason;
    } else if (sr.conclusion == JobResult::kFailure && !failed) {
      failed = true;
      failure_reason = "step '" + sr.name + "' failed: " + sr.reason;
    }
  }
  if (token_.cancelled()) return {JobResult::kCancelled, "cancelled", {}, false};
  if (failed) return failure(failure_reason);
  return {JobResult::kSuccess, "", {}, false};
}

JobOutcome JobExecution::run_posts(JobOutcome result) {
  for (auto it = posts_.rbegin(); it != posts_.rend(); ++it) {
    bool job_ok = result.result == JobResult::kSuccess;
    if (it->builtin) {
      auto r = it->builtin(job_ok);
      if (!r) {
        log_->note("post '" + it->step + "': " + r.error().message());
        if (job_ok) result = failure("post '" + it->step + "': " + r.error().message());
      }
      continue;
    }
    StepReport sr;
    sr.name = it->step;
    auto begin = std::chrono::steady_clock::now();
    ctx_.status = result.result == JobResult::kCancelled ? pipeline::JobStatus::kCancelled
                  : job_ok                               ? pipeline::JobStatus::kSuccess
                                                         : pipeline::JobStatus::kFailure;
    ctx_.contexts["job"]["status"] = job_ok ? "success" : "failure";
    auto should = pipeline::evaluate_if(it->condition.empty() ? "always()" : it->condition, ctx_);
    std::optional<executor::ProcessResult> pr;
    std::string error;
    if (!should) {
      error = std::string(first_line_of(should.error()));
    } else if (!*should) {
      sr.outcome = sr.conclusion = JobResult::kSkipped;
      report_.post_steps.push_back(std::move(sr));
      continue;
    } else {
      log_->note("step: " + sr.name);
      auto r = it->run(sr);
      if (r)
        pr = *r;
      else
        error = r.error().message();
    }
    sr.duration = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - begin);
    sr.outcome = pr && pr->ok() ? JobResult::kSuccess : JobResult::kFailure;
    sr.conclusion = sr.outcome;
    if (sr.outcome != JobResult::kSuccess) {
      sr.reason = pr ? pr->reason : error;
      log_->note("step '" + sr.name + "' failed: " + sr.reason);
      if (job_ok) result = failure("step '" + sr.name + "' failed: " + sr.reason);
    }
    sr.log_tail = log_->take_tail();
    report_.post_steps.push_back(std::move(sr));
  }
  return result;
}

Result<executor::ProcessResult> JobExecution::run_one_step(const pipeline::Step& step, size_t i,
                                                           StepReport& sr, JobEnv::Map env) {
  const std::string what = "step '" + sr.name + "'";
  StepIo io;
  io.id = sr.id;
  io.tag = std::to_string(i + 1);
  if (step.uses) {
    LS_TRY_ASSIGN(pipeline::ActionRef ref, pipeline::parse_action_ref(*step.uses));
    if (ref.builtin()) return run_builtin_step(step, &sr, sr.id, i, what);
    return run_action(step, io, std::move(env), &sr, i, what);
  }
  if (!step.run) return fail(what + " has neither run nor uses", ErrorKind::kWorkflow);
  return run_script(step, io, std::move(env), &sr, i, what);
}

Result<std::map<std::string, std::string>> JobExecution::step_files(StepIo& io,
                                                                    const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& [var, prefix] : kStepFiles) {
    std::string name = prefix + io.tag;
    LS_TRY(write_file(temp_host_ / name, ""));
    out[var] = dir + "/" + name;
  }
  return out;
}

Result<executor::ProcessResult> JobExecution::run_script(const pipeline::Step& step, StepIo& io,
                                                         JobEnv::Map env, StepReport* sr,
                                                         size_t index, const std::string& what) {
  std::map<std::string, std::string> injected = injected_env(io.id);
  LS_TRY_ASSIGN(auto files, step_files(io, ctemp_));
  for (const auto& [var, path] : files)
    if (var != std::string("GITHUB_STATE")) injected[var] = path;
  const Value& gh = ctx_.contexts["github"];
  if (gh.contains("action_path") && gh["action_path"].is_string())
    injected["GITHUB_ACTION_PATH"] = gh["action_path"].get<std::string>();
  io.allow_unsecure = env.count("ACTIONS_ALLOW_UNSECURE_COMMANDS") &&
                      parses_as_true(env["ACTIONS_ALLOW_UNSECURE_COMMANDS"]);
  std::vector<std::string> penv = job_env_.process_env(std::move(env), injected, default_path_);
  LS_TRY_ASSIGN(std::string script, eval_string(*step.run, ctx_, what + " run"));

  // Defaults of the workflow and the job apply to the workflow's own run
  // steps, not to those of composite actions (which name their shell).
  bool nested = composite_depth_ > 0;
  std::string shell = step.shell;
  if (shell.empty() && !nested)
    shell = !job_.defaults.shell.empty() ? job_.defaults.shell : wf_.defaults.shell;
  LS_TRY_ASSIGN(shell, eval_string(shell, ctx_, what + " shell"));
  std::string script_name = "step_" + io.tag + pipeline::script_extension(shell);
  LS_TRY(write_file(temp_host_ / script_name, script, 0755));
  LS_TRY_ASSIGN(std::vector<std::string> argv,
                pipeline::resolve_shell(shell, bash_, ctemp_ + "/" + script_name));

  std::string wd = step.working_directory;
  if (wd.empty() && !nested)
    wd = !job_.defaults.working_directory.empty() ? job_.defaults.working_directory
                                                  : wf_.defaults.working_directory;
  LS_TRY_ASSIGN(wd, eval_string(wd, ctx_, what + " working-directory"));
  if (wd.empty())
    wd = workspace_;
  else if (wd[0] != '/')
    wd = workspace_ + "/" + wd;

  executor::ProcessSpec ps;
  ps.argv = std::move(argv);
  ps.env = std::move(penv);
  ps.workdir = wd;
  std::optional<std::chrono::milliseconds> step_timeout;
  if (!nested) {
    LS_TRY_ASSIGN(step_timeout,
                  eval_minutes(step.timeout_minutes, ctx_, what + " timeout-minutes"));
  }
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline_ - std::chrono::steady_clock::now());
  if (left.count() <= 0) left = std::chrono::milliseconds(1);
  ps.timeout = step_timeout ? std::min(*step_timeout, left) : left;

  if (sr) {
    pipeline::StepEnvInputs hin;
    hin.index = index;
    hin.id = step.id;
    hin.name = sr->name;
    hin.kind = "run";
    hin.script = secret_free(script);
    hin.argv = ps.argv;
    hin.workdir = wd;
    for (const auto& e : ps.env) {
      auto eq = e.find('=');
      hin.env[e.substr(0, eq)] = secret_free(e.substr(eq + 1));
    }
    hin.timeout_ms = step_timeout ? step_timeout->count() : 0;
    auto coe = eval_bool_text(step.continue_on_error, ctx_, false, "continue-on-error");
    hin.continue_on_error = coe && *coe;
    LS_TRY(compute_step_hash(hin, *sr));
  }
  LS_TRY(own_workspace());
  if (sr) {
    last_ps_ = ps;
    if (stop_here_) return stopped_result();
  }
  LS_TRY_ASSIGN(executor::ProcessResult pr, exec_step(*container_, ps, io));
  report_.network = executor::to_string(pr.network);  // as the executor applied it
  if (sr) sr->exit_code = pr.kind == executor::ExitKind::kExited ? pr.exit_code : -1;
  if (pr.kind == executor::ExitKind::kTimedOut && !step_timeout)
    pr.reason = "job timed out after " + std::to_string(job_timeout_.count() / 60000) + " minutes";
  return pr;
}

Result<executor::ProcessResult> JobExecution::exec_step(executor::Container& in,
                                                        const executor::ProcessSpec& ps,
                                                        StepIo& io) {
  pipeline::CommandStream commands;
  auto sink = [&](executor::Stream stream, std::string_view line,
                  std::chrono::system_clock::time_point when) {
    if (stream == executor::Stream::kStdout) {
      if (auto cmd = commands.feed(line)) {
        if (handle_command(*cmd, io)) return;
      }
    }
    log_->line(stream, line, when);
  };
  auto exec_result = in.exec(ps, sink);
  log_->end_group();  // a group the step never closed
  LS_TRY_ASSIGN(executor::ProcessResult pr, std::move(exec_result));

  // What the step handed back.
  auto read = [&](const char* prefix) { return read_file(temp_host_ / (prefix + io.tag)); };
  LS_TRY_ASSIGN(std::string out_text, read("output_"));
  LS_TRY_ASSIGN(auto outputs, pipeline::parse_key_value_file(out_text, "GITHUB_OUTPUT"));
  for (const auto& [k, v] : outputs) ctx_.contexts["steps"][io.id]["outputs"][k] = v;
  LS_TRY_ASSIGN(std::string env_text, read("env_"));
  LS_TRY_ASSIGN(auto exported, pipeline::parse_key_value_file(env_text, "GITHUB_ENV"));
  for (const auto& [k, v] : exported) job_env_.set(k, v);
  LS_TRY_ASSIGN(std::string path_text, read("path_"));
  for (const auto& dir : pipeline::parse_path_file(path_text)) job_env_.add_path(dir);
  LS_TRY_ASSIGN(std::string state_text, read("state_"));
  LS_TRY_ASSIGN(auto state, pipeline::parse_key_value_file(state_text, "GITHUB_STATE"));
  if (io.state)
    for (const auto& [k, v] : state) (*io.state)[k] = v;
  if (!io.failed.empty() && pr.ok()) {
    pr.exit_code = 1;
    pr.reason = io.failed;
  }
  return pr;
}

Result<executor::ProcessResult> JobExecution::run_builtin_step(const pipeline::Step& step,
                                                               StepReport* sr,
                                                               const std::string& id, size_t index,
                                                               const std::string& what) {
  ActionEnv env;
  env.run = &run_;
  env.job_display = inst_.display_name;
  env.workspace_host = workspace_host_;
  env.workspace_container = workspace_;
  env.home_host = home_host_;
  env.note = [this](const std::string& line) { log_->note(line); };
  env.inputs = &report_.inputs;
  env.checkouts = &checkouts_;
  for (const auto& [k, v] : step.with) {
    LS_TRY_ASSIGN(env.with[k], eval_string(v, ctx_, what + " with." + k));
  }
  LS_TRY(own_workspace(false));
  if (sr) {
    pipeline::StepEnvInputs hin;
    hin.index = index;
    hin.id = step.id;
    hin.name = sr->name;
    hin.kind = "uses";
    hin.uses = *step.uses;
    for (const auto& [k, v] : env.with) hin.with[k] = secret_free(v);
    hin.workdir = workspace_;
    LS_TRY(compute_step_hash(hin, *sr));
    last_ps_ = {};
    last_ps_.workdir = workspace_;
    if (stop_here_) return stopped_result();
  }
  auto begin = std::chrono::steady_clock::now();
  executor::ProcessResult pr;
  auto r = run_builtin_action(*step.uses, env);
  pr.duration = std::chrono::steady_clock::now() - begin;
  if (!r) {
    if (r.error().kind() == ErrorKind::kUnsupported || r.error().kind() == ErrorKind::kWorkflow)
      return fail(std::move(r.error()));
    pr.exit_code = 1;
    pr.reason = r.error().message();
    return pr;
  }
  for (const auto& [k, v] : r->outputs) ctx_.contexts["steps"][id]["outputs"][k] = v;
  if (step.uses->rfind("actions/upload-artifact", 0) == 0 && r->outputs.count("artifact-id"))
    report_.artifacts.push_back(r->outputs.at("artifact-id"));
  if (r->post)
    posts_.push_back({sr ? sr->name : step_display_name(step, index), r->post, "", nullptr});
  pr.reason = "exit code 0";
  return pr;
}

std::map<std::string, std::string> JobExecution::injected_env(const std::string& action_id) const {
  const Value& gh = run_.github;
  auto gs = [&](const char* k) {
    return gh.contains(k) && gh[k].is_string() ? gh[k].get<std::string>() : std::string();
  };
  return {
      {"CI", "true"},
      {"LOCKSTEP", "true"},
      {"GITHUB_ACTIONS", "true"},
      {"GITHUB_WORKSPACE", workspace_},
      {"GITHUB_WORKFLOW", gs("workflow")},
      {"GITHUB_RUN_ID", gs("run_id")},
      {"GITHUB_RUN_NUMBER", gs("run_number")},
      {"GITHUB_RUN_ATTEMPT", "1"},
      {"GITHUB_JOB", job_.id},
      {"GITHUB_ACTION", action_id},
      {"GITHUB_REPOSITORY", gs("repository")},
      {"GITHUB_REPOSITORY_OWNER", gs("repository_owner")},
      {"GITHUB_SHA", gs("sha")},
      {"GITHUB_REF", gs("ref")},
      {"GITHUB_REF_NAME", gs("ref_name")},
      {"GITHUB_REF_TYPE", gs("ref_type")},
      {"GITHUB_HEAD_REF", gs("head_ref")},
      {"GITHUB_BASE_REF", gs("base_ref")},
      {"GITHUB_EVENT_NAME", gs("event_name")},
      {"GITHUB_ACTOR", gs("actor")},
      {"GITHUB_SERVER_URL", gs("server_url")},
      {"RUNNER_OS", "Linux"},
      {"RUNNER_ARCH", "X64"},
      {"RUNNER_NAME", "lockstep"},
      {"RUNNER_TEMP", ctemp_},
      {"HOME", chome_},
  };
}

bool JobExecution::handle_command(const pipeline::WorkflowCommand& cmd, StepIo& io) {
  auto command_text = [&] {
    std::string t = "::" + cmd.name;
    for (size_t i = 0; i < cmd.properties.size(); ++i)
      t += (i ? "," : " ") + cmd.properties[i].first + "=" + cmd.properties[i].second;
    return t + "::" + cmd.message;
  };
  auto command_failed = [&](const std::string& why) {
    std::string first = "Unable to process command '" + command_text() + "' successfully.";
    log_->note("error: " + first);
    log_->note("error: " + why);
    if (io.failed.empty()) io.failed = first + " " + why;
  };
  if (cmd.name == "add-mask") {
    run_.masker->add(cmd.message);
    return true;
  }
  if (cmd.name == "group") {
    log_->begin_group(cmd.message);
    return true;
  }
  if (cmd.name == "endgroup") {
    log_->end_group();
    return true;
  }
  if (cmd.name == "error" || cmd.name == "warning" || cmd.name == "notice") {
    std::string where;
    if (auto file = cmd.property("file")) {
      where = *file;
      if (auto line = cmd.property("line")) where += ":" + *line;
      where += ": ";
    }
    log_->note(cmd.name + ": " + where + cmd.message);
    return true;
  }
  if (cmd.name == "set-output" || cmd.name == "save-state") {
    log_->note("warning: " + with_command(kDeprecatedCommand, cmd.name));
    auto name = cmd.property("name");
    if (!name || name->empty()) {
      command_failed("Required field 'name' is missing in ##[" + cmd.name + "] command.");
      return true;
    }
    if (cmd.name == "set-output")
      ctx_.contexts["steps"][io.id]["outputs"][*name] = cmd.message;
    else if (io.state)
      (*io.state)[*name] = cmd.message;
    return true;
  }
  if (cmd.name == "set-env" || cmd.name == "add-path") {
    if (!io.allow_unsecure) {
      command_failed(with_command(kDisabledCommand, cmd.name));
      return true;
    }
    if (cmd.name == "add-path") {
      job_env_.add_path(cmd.message);
      return true;
    }
    auto name = cmd.property("name");
    if (!name || name->empty()) {
      command_failed("Required field 'name' is missing in ##[set-env] command.");
    } else if (*name == "NODE_OPTIONS") {
      log_->note(
          "error: Can't update NODE_OPTIONS environment variable using ::set-env:: command.");
    } else {
      job_env_.set(*name, cmd.message);
    }
    return true;
  }
  // Problem matchers annotate GitHub's UI; lockstep has none to annotate.
  if (cmd.name == "debug" || cmd.name == "add-matcher" || cmd.name == "remove-matcher" ||
      cmd.name == "echo")
    return true;
  return false;
}

executor::ProcessResult JobExecution::stopped_result() {
  executor::ProcessResult pr;
  pr.kind = executor::ExitKind::kCancelled;
  pr.reason = "stopped (--until)";
  return pr;
}

}  // namespace lockstep::runner::detail
