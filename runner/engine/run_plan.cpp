#include "runner/engine/run_plan.hpp"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <set>

#include "pipeline/diagnostic.hpp"
#include "pipeline/lock_inputs.hpp"
#include "pipeline/matrix.hpp"
#include "pipeline/options.hpp"
#include "runner/engine/action_source.hpp"

namespace lockstep::runner {

namespace {

// What success()/failure() see in a job's if: from the jobs it needs.
// success() holds only when every one succeeded (a skipped one did not).
pipeline::JobStatus needs_status(const std::vector<const JobReport*>& needed) {
  auto outcome = [](const JobReport* r) -> const JobOutcome& { return r->outcome; };
  switch (combined(needed, outcome)) {
    case JobResult::kFailure:
      return pipeline::JobStatus::kFailure;
    case JobResult::kCancelled:
      return pipeline::JobStatus::kCancelled;
    case JobResult::kSuccess:
    case JobResult::kSkipped:
      break;
  }
  for (const JobReport* r : needed)
    if (r->outcome.result == JobResult::kSkipped) return pipeline::JobStatus::kFailure;
  return pipeline::JobStatus::kSuccess;
}

// A called workflow's result, as a later job's `needs.<caller>.result`: it
// failed (or was cancelled) when one of its jobs did; jobs its if: skipped do
// not fail it; it is skipped only when every job was.
JobResult call_result(const std::vector<const JobReport*>& jobs) {
  return combined(jobs, [](const JobReport* r) -> const JobOutcome& { return r->outcome; });
}

Expansion settled(JobResult result, std::string reason) {
  return {{}, JobOutcome{result, std::move(reason), {}, false}};
}

Expansion failed(const std::string& what, const Error& e) {
  return settled(JobResult::kFailure, what + std::string(pipeline::first_line(e)));
}

void print_warnings(const std::vector<std::string>& warnings) {
  for (const auto& w : warnings) std::fprintf(stderr, "lockstep: warning: %s\n", w.c_str());
}

}  // namespace

bool matrix_matches(const pipeline::OrderedValue& m,
                    const std::vector<std::pair<std::string, std::string>>& filter) {
  for (const auto& [k, v] : filter) {
    if (!m.is_object() || !m.contains(k)) return false;
    if (pipeline::to_display_string(pipeline::Value::parse(m[k].dump())) != v) return false;
  }
  return true;
}

RunPlan::RunPlan(Context ctx, std::vector<pipeline::JobInstance> plan) : ctx_(std::move(ctx)) {
  for (const auto& inst : plan) ++total_[key_of(inst)];
  for (auto& inst : plan) add(std::move(inst));
}

size_t RunPlan::add(pipeline::JobInstance inst) {
  const Key k = key_of(inst);
  const bool placeholder = pipeline::is_stand_in(inst);
  instances_.push_back(std::move(inst));
  reports_.emplace_back();
  positions_.push_back(placeholder ? MatrixPosition{} : MatrixPosition{seen_[k]++, total_[k]});
  by_job_[k].push_back(instances_.size() - 1);
  return instances_.size() - 1;
}

ScheduledJob RunPlan::entry(size_t i) const {
  const auto& inst = instances_[i];
  const auto& job = *inst.job;
  ScheduledJob sj;
  for (const auto& n : job.needs)
    if (auto it = by_job_.find({inst.scope.get(), n}); it != by_job_.end())
      sj.needs.insert(sj.needs.end(), it->second.begin(), it->second.end());
  // Matrix siblings: the instances of one job of one call.
  sj.group = std::to_string(reinterpret_cast<uintptr_t>(inst.scope.get())) + "/" + job.id;
  sj.fail_fast = job.strategy.fail_fast != "false";
  sj.max_parallel = job.strategy.max_parallel.value_or(0);
  sj.expands = pipeline::is_stand_in(inst) || job.call.has_value();
  // Reserve what the job's limits ask for, when they are plain text.
  if (job.container && !pipeline::has_expression(job.container->options)) {
    if (auto o = pipeline::parse_container_options(job.container->options)) {
      if (o->cpus_milli) sj.cpu_millis = static_cast<uint64_t>(*o->cpus_milli);
      if (o->memory_bytes) sj.memory_bytes = static_cast<uint64_t>(*o->memory_bytes);
    }
  }
  return sj;
}

std::vector<ScheduledJob> RunPlan::schedule() {
  std::lock_guard lk(mu_);
  std::vector<ScheduledJob> out;
  for (size_t i = 0; i < instances_.size(); ++i) out.push_back(entry(i));
  return out;
}

// What `needs` sees of instance d, complete once the scheduler lets a job
// that needs it start: a needed instance that never ran (cancelled, skipped,
// a stand-in that settled) gets its row and the scheduler's outcome; a call
// is its called workflow's result and outputs.
const JobReport* RunPlan::report_of(size_t d, const std::vector<JobOutcome>& outcomes) {
  if (is_call(instances_[d])) return call_report(d, outcomes);
  JobReport& r = reports_[d];
  if (r.display_name.empty() && d < outcomes.size()) {
    r.job_id = instances_[d].job->id;
    r.display_name = instances_[d].display_name;
    r.matrix = instances_[d].matrix;
    r.outcome = outcomes[d];
  }
  return &r;
}

const JobReport* RunPlan::call_report(size_t d, const std::vector<JobOutcome>& outcomes) {
  const auto& di = instances_[d];
  JobReport r;
  r.job_id = di.job->id;
  r.display_name = di.display_name;
  r.matrix = di.matrix;
  auto c = call_of_.find(d);
  if (c == call_of_.end()) {  // skipped or failed before it called anything
    if (d < outcomes.size()) r.outcome = outcomes[d];
    call_reports_.push_back(std::move(r));
    return &call_reports_.back();
  }
  const auto& scope = c->second;
  std::vector<const JobReport*> jobs;
  for (const auto& j : scope->workflow().jobs)
    if (auto it = by_job_.find({scope.get(), j.id}); it != by_job_.end())
      for (size_t k : it->second) jobs.push_back(report_of(k, outcomes));
  r.outcome.result = call_result(jobs);
  if (r.outcome.result != JobResult::kSuccess)
    r.outcome.reason = "a job of " + scope->called->name() + " did not succeed";
  // Outputs of a call that succeeded, and only those it sets: with a matrix
  // on the calling job, `needs` takes each output from the last call that set
  // it (GitHub: "the last successful completing reusable workflow of the
  // matrix which actually sets a value").
  if (r.outcome.result == JobResult::kSuccess) {
    pipeline::EvalContext ctx = ctx_.base;
    ctx.contexts["inputs"] = scope->inputs;
    auto outs = pipeline::call_outputs(*scope->called, needs_context(jobs), ctx);
    if (outs) {
      for (auto& [k, v] : *outs)
        if (!v.empty()) r.outputs[k] = std::move(v);
    } else {
      r.outcome = {JobResult::kFailure, std::string(pipeline::first_line(outs.error())), {}, false};
    }
  }
  call_reports_.push_back(std::move(r));
  return &call_reports_.back();
}

std::vector<const JobReport*> RunPlan::needed(const pipeline::JobInstance& inst,
                                              const std::vector<JobOutcome>& outcomes) {
  std::vector<const JobReport*> out;
  for (const auto& n : inst.job->needs) {
    auto it = by_job_.find({inst.scope.get(), n});
    if (it == by_job_.end()) {
      if (auto g = ctx_.given_needs.find(n); !inst.scope && g != ctx_.given_needs.end())
        out.push_back(&g->second);
      continue;
    }
    for (size_t d : it->second) out.push_back(report_of(d, outcomes));
  }
  return out;
}

Expansion RunPlan::expand(size_t i, const std::vector<JobOutcome>& done) {
  std::lock_guard lk(mu_);
  const pipeline::JobInstance& inst = instances_[i];
  auto need = needed(inst, done);
  pipeline::EvalContext ctx = ctx_.base;
  if (inst.scope) ctx.contexts["inputs"] = inst.scope->inputs;
  ctx.contexts["needs"] = needs_context(need);
  Expansion e = pipeline::is_stand_in(inst) ? expand_matrix(i, need, std::move(ctx))
                                            : expand_call(i, need, std::move(ctx));
  if (e.outcome) return e;
  // Entries after all of them: a called job's needs name jobs declared after
  // it too.
  for (size_t k : became_[i]) e.jobs.push_back(entry(k));
  return e;
}

// A matrix from needs outputs: its instances, once the jobs it needs succeeded.
Expansion RunPlan::expand_matrix(size_t i, const std::vector<const JobReport*>& need,
                                 pipeline::EvalContext ctx) {
  const pipeline::JobInstance inst = instances_[i];
  const auto& job = *inst.job;
  for (const JobReport* r : need) {
    const auto& o = r->outcome;
    if (o.counted() != JobResult::kSuccess)
      return settled(JobResult::kSkipped, "a job it needs did not succeed");
  }
  std::vector<std::string> w;
  auto m = pipeline::expand_job(pipeline::workflow_of(inst, *ctx_.workflow), job, ctx, &w);
  print_warnings(w);
  if (!m) return failed("matrix: ", m.error());
  // --matrix selects among the instances of a job named with --job (or of
  // every job without --job); a called job's instances all run.
  const bool filtered =
      !inst.scope && (ctx_.jobs.empty() ||
                      std::find(ctx_.jobs.begin(), ctx_.jobs.end(), job.id) != ctx_.jobs.end());
  std::vector<pipeline::JobInstance> chosen;
  for (auto& one : *m) {
    if (filtered && !matrix_matches(one.matrix, ctx_.matrix_filter)) continue;
    if (filtered && ctx_.matrix_exact && !ctx_.matrix_exact->empty() &&
        Json::parse(one.matrix.dump()) != *ctx_.matrix_exact)
      continue;
    if (inst.scope) one.display_name = inst.scope->prefix() + one.display_name;
    one.scope = inst.scope;
    chosen.push_back(std::move(one));
  }
  const Key key = key_of(inst);
  total_[key] = chosen.size();
  by_job_[key].clear();  // from now on the job is its instances
  became_[i].clear();
  for (auto& one : chosen) became_[i].push_back(add(std::move(one)));
  return {};
}

// A call: the caller's if:, its inputs and secrets, then the called jobs.
Expansion RunPlan::expand_call(size_t i, const std::vector<const JobReport*>& need,
                               pipeline::EvalContext ctx) {
  const pipeline::JobInstance inst = instances_[i];
  const auto& job = *inst.job;
  ctx = pipeline::instance_context(ctx, inst, positions_[i].index, positions_[i].total);
  ctx.contexts["secrets"] = inst.scope ? inst.scope->secrets : ctx_.secrets;
  ctx.status = needs_status(need);
  auto go = pipeline::evaluate_if(job.if_expr, ctx);
  if (!go) return failed("", go.error());
  if (!*go) {
    std::string why = job.if_expr.empty() ? "a job it needs did not succeed"
                                          : "if: " + job.if_expr + " was false";
    ctx_.console->line(inst.display_name, "skipped: " + why);
    return settled(JobResult::kSkipped, why);
  }
  auto scope = pipeline::make_call_scope(inst, *ctx_.workflow, *ctx_.calls, ctx);
  if (!scope) return failed("", scope.error());
  auto secrets = pipeline::bind_secrets(pipeline::workflow_of(inst, *ctx_.workflow), job,
                                        *(*scope)->called, ctx);
  if (!secrets) return failed("", secrets.error());
  for (auto it = secrets->begin(); it != secrets->end(); ++it)
    if (it.value().is_string()) ctx_.masker->add(it.value().get<std::string>());
  (*scope)->secrets = std::move(*secrets);
  std::vector<std::string> w;
  auto jobs = pipeline::expand_call(*scope, ctx_.base, &w);
  print_warnings(w);
  if (!jobs) return failed("", jobs.error());
  call_of_[i] = *scope;
  for (const auto& one : *jobs)
    if (!pipeline::is_stand_in(one)) ++total_[key_of(one)];
  became_[i].clear();
  for (auto& one : *jobs) became_[i].push_back(add(std::move(one)));
  return {};
}

// A called job's record: the call it belongs to, and the repositories of the
// workflows on its way as inputs (a replay pins them, an export carries their
// trees).
void RunPlan::describe(const pipeline::JobInstance& inst, JobReport& report) const {
  if (!inst.scope) return;
  report.call = pipeline::call_document(*inst.scope);
  std::map<std::string, bool> pinned;
  if (ctx_.actions)
    for (const auto& r : ctx_.actions->resolved()) pinned[r.key] = r.pinned;
  std::set<std::string> done;
  for (const pipeline::CallScope* s = inst.scope.get(); s; s = s->parent.get()) {
    const auto& c = *s->called;
    if (c.repository.empty()) continue;
    std::string key = c.repository + "@" + c.ref;
    if (!done.insert(key).second) continue;
    report.inputs.push_back({"workflow", key, c.commit, pinned.count(key) && pinned[key]});
  }
}

RunPlan::Start RunPlan::start(size_t i, const std::vector<JobOutcome>& done) {
  std::lock_guard lk(mu_);
  Start s;
  s.instance = &instances_[i];
  s.report = &reports_[i];
  s.position = positions_[i];
  s.needed = needed(instances_[i], done);
  describe(instances_[i], *s.report);
  return s;
}

std::vector<JobReport> RunPlan::reports(const std::vector<JobOutcome>& outcomes) {
  std::lock_guard lk(mu_);
  std::vector<JobReport> out;
  std::set<size_t> children;
  for (const auto& [stand_in, kids] : became_) children.insert(kids.begin(), kids.end());
  auto emit = [&](size_t i) {
    JobReport& r = reports_[i];
    if (r.display_name.empty()) {
      r.job_id = instances_[i].job->id;
      r.display_name = instances_[i].display_name;
      r.matrix = instances_[i].matrix;
      describe(instances_[i], r);
    }
    r.outcome = outcomes[i];
    out.push_back(std::move(r));
  };
  std::function<void(size_t)> emit_tree = [&](size_t i) {
    if (auto it = became_.find(i); it != became_.end()) {
      for (size_t k : it->second) emit_tree(k);
      return;
    }
    emit(i);
  };
  for (size_t i = 0; i < reports_.size(); ++i)
    if (!children.count(i)) emit_tree(i);
  return out;
}

}  // namespace lockstep::runner
