#include <algorithm>

#include "pipeline/shell.hpp"
#include "runner/job_internal.hpp"

// The step loop of a job: if:, environment, shells, timeouts,
// continue-on-error, workflow commands and the files steps talk back through.
namespace lockstep::runner::detail {

JobOutcome JobExecution::run_steps(const fs::path& job_dir) {
  (void)job_dir;
  bool failed = false;
  std::string failure_reason;
  report_.steps.resize(job_.steps.size());
  for (size_t i = 0; i < job_.steps.size(); ++i) {
    const pipeline::Step& step = job_.steps[i];
    StepReport& sr = report_.steps[i];
    sr.name = step_display_name(step, i);
    sr.id = step.id.empty() ? "__step" + std::to_string(i + 1) : step.id;
    auto begin = std::chrono::steady_clock::now();

    ctx_.status = token_.cancelled() ? pipeline::JobStatus::kCancelled
                  : failed           ? pipeline::JobStatus::kFailure
                                     : pipeline::JobStatus::kSuccess;
    ctx_.contexts["job"]["status"] = failed ? "failure" : "success";
    auto should = pipeline::evaluate_if(step.if_expr, ctx_);
    std::optional<executor::ProcessResult> pr;
    std::string error;
    if (!should) {
      error = std::string(first_line_of(should.error()));
    } else if (!*should) {
      sr.outcome = sr.conclusion = JobResult::kSkipped;
      ctx_.contexts["steps"][sr.id] = {
          {"outcome", "skipped"}, {"conclusion", "skipped"}, {"outputs", Value::object()}};
      continue;
    } else {
      stop_here_ = is_until_step(step, i, sr);
      if (!stop_here_) log_->note("step: " + sr.name);
      auto r = run_one_step(step, i, sr);
      if (stop_here_ && r) {
        sr.outcome = sr.conclusion = JobResult::kSkipped;
        sr.reason = "--until";
        log_->note("stopped before step '" + sr.name + "' (--until)");
        if (run_.shell_at_stop) open_shell();
        for (size_t k = i + 1; k < job_.steps.size(); ++k) {
          report_.steps[k].name = step_display_name(job_.steps[k], k);
          report_.steps[k].reason = "--until";
        }
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
      if (pr && pr->kind == executor::ExitKind::kOutOfMemory) sr.reason = pr->reason;
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
    if (sr.outcome == JobResult::kFailure && run_.shell_at_stop && !shell_opened_) {
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

Result<executor::ProcessResult> JobExecution::run_one_step(const pipeline::Step& step, size_t i,
                                                           StepReport& sr) {
  if (step.uses) return run_action_step(step, sr);
  if (!step.run)
    return fail("step '" + sr.name + "' has neither run nor uses", ErrorKind::kWorkflow);

  // Files the step talks back through, fresh for every step.
  std::string n = std::to_string(i + 1);
  std::map<std::string, std::string> files = {{"GITHUB_OUTPUT", "output_" + n},
                                              {"GITHUB_ENV", "env_" + n},
                                              {"GITHUB_PATH", "path_" + n},
                                              {"GITHUB_STEP_SUMMARY", "summary_" + n}};
  std::map<std::string, std::string> injected = injected_env(step, sr);
  for (const auto& [var, name] : files) {
    LS_TRY(write_file(temp_host_ / name, ""));
    injected[var] = ctemp_ + "/" + name;
  }
  LS_TRY_ASSIGN(std::vector<std::string> env,
                job_env_.for_step(step, ctx_, injected, default_path_));
  LS_TRY_ASSIGN(std::string script, eval_string(*step.run, ctx_, "step '" + sr.name + "' run"));

  std::string shell = !step.shell.empty()                      ? step.shell
                      : !job_.defaults.shell.empty()           ? job_.defaults.shell
                      : !run_.workflow->defaults.shell.empty() ? run_.workflow->defaults.shell
                                                               : "";
  std::string script_name = "step_" + n + pipeline::script_extension(shell);
  LS_TRY(write_file(temp_host_ / script_name, script, 0755));
  LS_TRY_ASSIGN(std::vector<std::string> argv,
                pipeline::resolve_shell(shell, bash_, ctemp_ + "/" + script_name));

  std::string wd = !step.working_directory.empty()            ? step.working_directory
                   : !job_.defaults.working_directory.empty() ? job_.defaults.working_directory
                   : !run_.workflow->defaults.working_directory.empty()
                       ? run_.workflow->defaults.working_directory
                       : "";
  LS_TRY_ASSIGN(wd, eval_string(wd, ctx_, "step '" + sr.name + "' working-directory"));
  if (wd.empty())
    wd = workspace_;
  else if (wd[0] != '/')
    wd = workspace_ + "/" + wd;

  executor::ProcessSpec ps;
  ps.argv = std::move(argv);
  ps.env = std::move(env);
  ps.workdir = wd;
  LS_TRY_ASSIGN(auto step_timeout,
                eval_minutes(step.timeout_minutes, ctx_, "step '" + sr.name + "' timeout-minutes"));
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline_ - std::chrono::steady_clock::now());
  if (left.count() <= 0) left = std::chrono::milliseconds(1);
  ps.timeout = step_timeout ? std::min(*step_timeout, left) : left;

  pipeline::StepEnvInputs hin;
  hin.index = i;
  hin.id = step.id;
  hin.name = sr.name;
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
  LS_TRY(compute_step_hash(hin, sr));
  LS_TRY(own_workspace());
  last_ps_ = ps;
  if (stop_here_) return stopped_result();

  bool in_group = false;
  pipeline::CommandStream commands;
  auto sink = [&](executor::Stream stream, std::string_view line,
                  std::chrono::system_clock::time_point when) {
    if (stream == executor::Stream::kStdout) {
      if (auto cmd = commands.feed(line)) {
        if (handle_command(*cmd, in_group)) return;
      }
    }
    log_->line(stream, line, when);
  };
  auto exec_result = container_->exec(ps, sink);
  log_->end_group();  // a group the step never closed
  LS_TRY_ASSIGN(executor::ProcessResult pr, std::move(exec_result));
  report_.network = executor::to_string(pr.network);  // as the executor applied it
  sr.exit_code = pr.kind == executor::ExitKind::kExited ? pr.exit_code : -1;
  if (pr.kind == executor::ExitKind::kTimedOut && !step_timeout)
    pr.reason = "job timed out after " + std::to_string(job_timeout_.count() / 60000) + " minutes";

  // What the step handed back.
  LS_TRY_ASSIGN(std::string out_text, read_file(temp_host_ / files["GITHUB_OUTPUT"]));
  LS_TRY_ASSIGN(auto outputs, pipeline::parse_key_value_file(out_text, "GITHUB_OUTPUT"));
  for (const auto& [k, v] : outputs) ctx_.contexts["steps"][sr.id]["outputs"][k] = v;
  LS_TRY_ASSIGN(std::string env_text, read_file(temp_host_ / files["GITHUB_ENV"]));
  LS_TRY_ASSIGN(auto exported, pipeline::parse_key_value_file(env_text, "GITHUB_ENV"));
  for (const auto& [k, v] : exported) job_env_.set(k, v);
  LS_TRY_ASSIGN(std::string path_text, read_file(temp_host_ / files["GITHUB_PATH"]));
  for (const auto& dir : pipeline::parse_path_file(path_text)) job_env_.add_path(dir);
  return pr;
}

Result<executor::ProcessResult> JobExecution::run_action_step(const pipeline::Step& step,
                                                              StepReport& sr) {
  ActionEnv env;
  env.run = &run_;
  env.job_display = inst_.display_name;
  env.workspace_host = workspace_host_;
  env.workspace_container = workspace_;
  env.home_host = home_host_;
  env.note = [this](const std::string& line) { log_->note(line); };
  env.inputs = &report_.inputs;
  for (const auto& [k, v] : step.with) {
    LS_TRY_ASSIGN(env.with[k], eval_string(v, ctx_, "step '" + sr.name + "' with." + k));
  }
  LS_TRY(own_workspace(false));
  pipeline::StepEnvInputs hin;
  hin.index = static_cast<size_t>(&step - job_.steps.data());
  hin.id = step.id;
  hin.name = sr.name;
  hin.kind = "uses";
  hin.uses = *step.uses;
  for (const auto& [k, v] : env.with) hin.with[k] = secret_free(v);
  hin.workdir = workspace_;
  LS_TRY(compute_step_hash(hin, sr));
  last_ps_ = {};
  last_ps_.workdir = workspace_;
  if (stop_here_) return stopped_result();
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
  for (const auto& [k, v] : r->outputs) ctx_.contexts["steps"][sr.id]["outputs"][k] = v;
  if (step.uses->rfind("actions/upload-artifact", 0) == 0 && r->outputs.count("artifact-id"))
    report_.artifacts.push_back(r->outputs.at("artifact-id"));
  if (r->post) posts_.push_back({sr.name, r->post});
  pr.reason = "exit code 0";
  return pr;
}

std::map<std::string, std::string> JobExecution::injected_env(const pipeline::Step& step,
                                                              const StepReport& sr) const {
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
      {"GITHUB_ACTION", step.id.empty() ? sr.id : step.id},
      {"GITHUB_REPOSITORY", gs("repository")},
      {"GITHUB_SHA", gs("sha")},
      {"GITHUB_REF", gs("ref")},
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

bool JobExecution::handle_command(const pipeline::WorkflowCommand& cmd, bool& in_group) {
  if (cmd.name == "add-mask") {
    run_.masker->add(cmd.message);
    return true;
  }
  if (cmd.name == "group") {
    in_group = true;
    log_->begin_group(cmd.message);
    return true;
  }
  if (cmd.name == "endgroup") {
    in_group = false;
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
  if (cmd.name == "debug") return true;
  return false;
}

}  // namespace lockstep::runner::detail
