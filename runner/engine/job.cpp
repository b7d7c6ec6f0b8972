#include "runner/engine/job.hpp"

#include "runner/engine/job_internal.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <deque>
#include <fstream>
#include <mutex>

#include "common/fs.hpp"
#include "pipeline/commands.hpp"
#include "pipeline/expr.hpp"
#include "pipeline/options.hpp"
#include "pipeline/shell.hpp"
#include "runner/engine/job_env.hpp"

namespace lockstep::runner {
namespace fs = std::filesystem;
using pipeline::EvalContext;
using pipeline::Value;

std::string slug(const std::string& display_name) {
  std::string s;
  for (char c : display_name) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_') {
      s += c;
    } else if (!s.empty() && s.back() != '-') {
      s += '-';
    }
  }
  while (!s.empty() && s.back() == '-') s.pop_back();
  return s.empty() ? "job" : s.substr(0, 80);
}

pipeline::Value needs_context(const std::vector<const JobReport*>& needed) {
  Value needs = Value::object();
  std::map<std::string, std::vector<const JobReport*>> by_id;
  for (const JobReport* r : needed) by_id[r->job_id].push_back(r);
  for (const auto& [id, reports] : by_id) {
    Value outputs = Value::object();
    for (const JobReport* r : reports)
      for (const auto& [k, v] : r->outputs) outputs[k] = v;
    JobResult result =
        combined(reports, [](const JobReport* r) -> const JobOutcome& { return r->outcome; });
    needs[id] = {{"result", to_string(result)}, {"outputs", outputs}};
  }
  return needs;
}

namespace detail {

std::string step_display_name(const pipeline::Step& s, size_t index) {
  if (!s.name.empty()) return s.name;
  if (s.uses) return *s.uses;
  if (s.run) {
    std::string first = s.run->substr(0, s.run->find('\n'));
    if (first.size() > 60) first = first.substr(0, 57) + "...";
    return first;
  }
  return "step " + std::to_string(index + 1);
}

Result<std::string> eval_string(const std::string& text, const EvalContext& ctx,
                                const std::string& what) {
  auto r = pipeline::interpolate(text, ctx);
  if (!r) return fail(std::move(r.error()).context(what));
  return r;
}

Result<bool> eval_bool_text(const std::string& text, const EvalContext& ctx, bool dflt,
                            const std::string& what) {
  if (text.empty()) return dflt;
  LS_TRY_ASSIGN(std::string v, eval_string(text, ctx, what));
  if (v == "true") return true;
  if (v == "false") return false;
  return fail(what + ": expected true or false, got '" + v + "'", ErrorKind::kWorkflow);
}

// Minutes from a timeout-minutes value (number text or expression).
Result<std::optional<std::chrono::milliseconds>> eval_minutes(const std::string& text,
                                                              const EvalContext& ctx,
                                                              const std::string& what) {
  if (text.empty()) return std::optional<std::chrono::milliseconds>{};
  LS_TRY_ASSIGN(std::string v, eval_string(text, ctx, what));
  char* end = nullptr;
  double minutes = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || !(minutes > 0))
    return fail(what + ": expected a positive number of minutes, got '" + v + "'",
                ErrorKind::kWorkflow);
  return std::optional<std::chrono::milliseconds>(
      std::chrono::milliseconds(static_cast<int64_t>(minutes * 60000)));
}

bool image_has_bash(const std::vector<fs::path>& layers) {
  for (auto it = layers.rbegin(); it != layers.rend(); ++it) {
    for (const char* p : {"bin/bash", "usr/bin/bash"}) {
      struct stat st {};
      if (::lstat((*it / p).c_str(), &st) == 0) return S_ISREG(st.st_mode) || S_ISLNK(st.st_mode);
    }
  }
  return false;
}

JobExecution::JobExecution(RunContext& run, const pipeline::JobInstance& inst, size_t index,
                           MatrixPosition pos, const std::vector<const JobReport*>& needed,
                           CancelToken& token, JobReport& report)
    : run_(run),
      inst_(inst),
      job_(*inst.job),
      wf_(pipeline::workflow_of(inst, *run.workflow)),
      index_(index),
      pos_(pos),
      needed_(needed),
      token_(token),
      report_(report) {}

JobOutcome JobExecution::run() {
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

JobOutcome JobExecution::failure(std::string reason) {
  return {JobResult::kFailure, std::move(reason), {}, continue_on_error_};
}

JobOutcome JobExecution::run_inner() {
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
  log_ =
      std::make_unique<JobLog>(*run_.console, *run_.masker, inst_.display_name, report_.log_file);

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

  auto timeout = eval_minutes(job_.timeout_minutes, ctx_, "job '" + job_.id + "' timeout-minutes");
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

std::string_view JobExecution::first_line_of(const Error& e) {
  std::string_view m = e.message();
  return m.substr(0, m.find('\n'));
}

pipeline::JobStatus JobExecution::needs_status() const {
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

void JobExecution::build_base_context() {
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
  c["github"]["token"] = run_.secrets.count("GITHUB_TOKEN") ? run_.secrets.at("GITHUB_TOKEN") : "";
  c["inputs"] = inst_.scope ? inst_.scope->inputs : Value::object();
  c["vars"] = run_.vars;
  c["steps"] = Value::object();
  c["job"] = {{"status", "success"}};
}

}  // namespace detail

JobOutcome run_job(RunContext& run, const pipeline::JobInstance& instance, size_t index,
                   MatrixPosition pos, const std::vector<const JobReport*>& needed,
                   CancelToken& token, JobReport& report) {
  detail::JobExecution e(run, instance, index, pos, needed, token, report);
  return e.run();
}

executor::UserNamespace default_user_namespace() {
  executor::UserNamespace u;
  u.uid_map = {{0, 100000, 65536}};
  u.gid_map = {{0, 100000, 65536}};
  u.allow_setgroups = true;
  return u;
}

}  // namespace lockstep::runner
