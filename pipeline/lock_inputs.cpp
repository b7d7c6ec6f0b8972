#include "pipeline/lock_inputs.hpp"

#include <algorithm>
#include <array>
#include <string_view>

#include "pipeline/action.hpp"
#include "pipeline/matrix.hpp"
#include "pipeline/parse.hpp"
#include "pipeline/workflow_call.hpp"

namespace lockstep::pipeline {

namespace {

constexpr std::array<std::string_view, 6> kKnownBeforeRun = {"github", "inputs",   "vars",
                                                             "matrix", "strategy", "runner"};

// Evaluates `text` for `use`; fills use.unlockable instead when the text
// reads a context that only exists at run time. `matrix_from_needs`: the
// instance stands for a matrix made from needs outputs, so matrix and
// strategy are not known either.
Status evaluate_input(InputUse& use, std::string& out, const std::string& text,
                      const EvalContext& ctx, bool matrix_from_needs, bool inputs_unknown) {
  use.text = text;
  if (!has_expression(text)) {
    out = text;
    return {};
  }
  LS_TRY_ASSIGN(std::vector<std::string> used, contexts_used(text, false));
  for (const auto& c : used) {
    if (std::find(kKnownBeforeRun.begin(), kKnownBeforeRun.end(), c) == kKnownBeforeRun.end()) {
      use.unlockable = "reads '" + c + "', known only at run time";
      return {};
    }
    if (matrix_from_needs && (c == "matrix" || c == "strategy")) {
      use.unlockable = "reads '" + c + "', made from needs outputs at run time";
      return {};
    }
    if (inputs_unknown && c == "inputs") {
      use.unlockable = "reads 'inputs', given from needs outputs at run time";
      return {};
    }
  }
  auto v = interpolate(text, ctx);
  if (!v)
    return fail(std::move(v.error())
                    .context("job '" + use.job_id + "' " + use.what)
                    .set_kind(ErrorKind::kWorkflow));
  out = *v;
  return {};
}

Status collect_one(const JobInstance& inst, const EvalContext& ctx,
                   const std::map<std::string, std::string>& platforms,
                   std::vector<InputUse>& out) {
  const Job& job = *inst.job;
  // A stand-in (null matrix): its matrix is made at run time.
  const bool dynamic = is_stand_in(inst);
  // A called job whose inputs come from needs outputs.
  const bool inputs_unknown = inst.scope && !inst.scope->inputs_known;
  auto evaluate_into = [dynamic, inputs_unknown](InputUse& use, std::string& o,
                                                 const std::string& text, const EvalContext& c) {
    return evaluate_input(use, o, text, c, dynamic, inputs_unknown);
  };
  auto base_use = [&](InputUse::Kind kind, std::string what) {
    InputUse u;
    u.kind = kind;
    u.job_id = job.id;
    u.instance = inst.display_name;
    u.what = std::move(what);
    return u;
  };
  if (job.container) {
    InputUse u = base_use(InputUse::Kind::kImage, "container");
    LS_TRY(evaluate_into(u, u.reference, job.container->image, ctx));
    out.push_back(std::move(u));
  } else {
    for (const auto& label : job.runs_on) {
      InputUse u = base_use(InputUse::Kind::kImage, "runs-on");
      std::string l;
      LS_TRY(evaluate_into(u, l, label, ctx));
      if (!u.unlockable.empty()) {
        out.push_back(std::move(u));
        break;
      }
      if (auto it = platforms.find(l); it != platforms.end()) {
        u.what = "runs-on '" + l + "'";
        u.reference = it->second;
        out.push_back(std::move(u));
        break;
      }
    }
  }
  for (const auto& svc : job.services) {
    InputUse u = base_use(InputUse::Kind::kImage, "service '" + svc.name + "'");
    LS_TRY(evaluate_into(u, u.reference, svc.container.image, ctx));
    // An image that evaluates to nothing: the service is not started.
    if (u.unlockable.empty() && u.reference.empty()) continue;
    out.push_back(std::move(u));
  }
  for (size_t i = 0; i < job.steps.size(); ++i) {
    const Step& s = job.steps[i];
    if (!s.uses) continue;
    std::string action = s.uses->substr(0, s.uses->find('@'));
    if (action != "actions/checkout") {
      // An action from a repository (not built in): its ref is pinned.
      auto ref = parse_action_ref(*s.uses);
      if (!ref || ref->builtin() || ref->kind != ActionRef::Kind::kRepository) continue;
      InputUse u = base_use(InputUse::Kind::kAction, "step " + std::to_string(i + 1));
      u.reference = ref->repository();
      u.ref = ref->ref;
      u.text = *s.uses;
      out.push_back(std::move(u));
      continue;
    }
    InputUse u = base_use(InputUse::Kind::kCheckout, "step " + std::to_string(i + 1));
    auto get = [&](const char* k) {
      auto it = s.with.find(k);
      return it == s.with.end() ? std::string() : it->second;
    };
    LS_TRY(evaluate_into(u, u.reference, get("repository"), ctx));
    if (u.unlockable.empty()) {
      std::string text = u.text;
      LS_TRY(evaluate_into(u, u.ref, get("ref"), ctx));
      if (!u.unlockable.empty())
        u.text = get("ref");
      else
        u.text = text.empty() ? get("ref") : text;
    }
    out.push_back(std::move(u));
  }
  return {};
}

}  // namespace

const char* to_string(InputUse::Kind kind) {
  switch (kind) {
    case InputUse::Kind::kImage:
      return "image";
    case InputUse::Kind::kCheckout:
      return "checkout";
    case InputUse::Kind::kAction:
      return "action";
  }
  return "?";
}

EvalContext instance_context(const EvalContext& base, const JobInstance& inst, size_t index,
                             size_t total) {
  EvalContext ctx = base;
  Value& c = ctx.contexts;
  const Job& job = *inst.job;
  c["github"]["job"] = job.id;
  // A called job reads its call's inputs; the run's own jobs the base's.
  if (inst.scope) c["inputs"] = inst.scope->inputs;
  c["matrix"] = inst.matrix.is_object() && !inst.matrix.empty() ? Value::parse(inst.matrix.dump())
                                                                : Value::object();
  c["strategy"] = {{"fail-fast", job.strategy.fail_fast != "false"},
                   {"job-index", static_cast<int64_t>(index)},
                   {"job-total", static_cast<int64_t>(total)},
                   {"max-parallel", job.strategy.max_parallel.value_or(static_cast<int>(total))}};
  c["runner"] = {{"os", "Linux"},        {"arch", "X64"},        {"name", "lockstep"},
                 {"temp", "/__w/_temp"}, {"tool_cache", "/__t"}, {"debug", ""}};
  return ctx;
}

Result<std::vector<InputUse>> collect_instance_inputs(
    const std::vector<JobInstance>& instances, const EvalContext& base,
    const std::map<std::string, std::string>& platforms) {
  // Matrix positions count per job of each call (a called workflow's job
  // ids are its own).
  std::map<std::pair<const CallScope*, std::string>, size_t> total, seen;
  for (const auto& inst : instances) ++total[{inst.scope.get(), inst.job->id}];
  std::vector<InputUse> out;
  for (const auto& inst : instances) {
    const std::pair<const CallScope*, std::string> key{inst.scope.get(), inst.job->id};
    EvalContext ctx = instance_context(base, inst, seen[key]++, total[key]);
    LS_TRY(collect_one(inst, ctx, platforms, out));
  }
  return out;
}

Result<std::vector<InputUse>> collect_inputs(const Workflow& wf, const EvalContext& base,
                                             const std::map<std::string, std::string>& platforms,
                                             const CallGraph* calls) {
  std::vector<JobInstance> instances;
  for (const auto& job : wf.jobs) {
    if (matrix_depends_on_needs(job)) {
      // One stand-in: what does not read the matrix is locked as usual.
      instances.push_back({&job, OrderedValue(), job.id});
      continue;
    }
    LS_TRY_ASSIGN(auto mine, expand_job(wf, job, base));
    for (auto& i : mine) instances.push_back(std::move(i));
  }
  if (calls) {
    LS_TRY_ASSIGN(instances, preview_instances(instances, wf, *calls, base));
  }
  return collect_instance_inputs(instances, base, platforms);
}

}  // namespace lockstep::pipeline
