#include "runner/engine/job_env.hpp"

#include "runner/engine/job.hpp"

namespace lockstep::runner {

namespace {

Status add_layer(const pipeline::EnvList& list, pipeline::EvalContext& ctx,
                 std::map<std::string, std::string>& into, const std::string& where) {
  for (const auto& [k, v] : list) {
    auto val = pipeline::interpolate(v, ctx);
    if (!val) return fail(std::move(val.error()).context(where + " env " + k));
    into[k] = *val;
    ctx.contexts["env"][k] = *val;
  }
  return {};
}

}  // namespace

Status JobEnv::build(const RunContext& run, const pipeline::Workflow& wf, const pipeline::Job& job,
                     pipeline::EvalContext& ctx) {
  ctx.contexts["env"] = pipeline::Value::object();
  for (const auto& [k, v] : run.default_env) {
    base_[k] = v;
    ctx.contexts["env"][k] = v;
  }
  LS_TRY(add_layer(wf.env, ctx, base_, "workflow"));
  LS_TRY(add_layer(job.env, ctx, base_, "job '" + job.id + "'"));
  for (const auto& [k, v] : run.extra_env) {
    base_[k] = v;
    ctx.contexts["env"][k] = v;
  }
  return {};
}

Result<JobEnv::Map> JobEnv::step_env(const pipeline::Step& step, pipeline::EvalContext& ctx) const {
  Map env = base_;
  for (const auto& [k, v] : exported_) env[k] = v;
  for (const auto& layer : overrides_)
    for (const auto& [k, v] : layer) env[k] = v;
  ctx.contexts["env"] = pipeline::Value::object();
  for (const auto& [k, v] : env) ctx.contexts["env"][k] = v;
  LS_TRY(add_layer(step.env, ctx, env, "step"));
  return env;
}

std::vector<std::string> JobEnv::process_env(Map env, const Map& injected,
                                             const std::string& base_path) const {
  for (const auto& [k, v] : injected) env[k] = v;
  std::string path = env.count("PATH") ? env["PATH"] : base_path;
  for (auto it = path_prepend_.rbegin(); it != path_prepend_.rend(); ++it) path = *it + ":" + path;
  if (!path.empty()) env["PATH"] = path;
  std::vector<std::string> out;
  out.reserve(env.size());
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

Result<std::vector<std::string>> JobEnv::for_step(const pipeline::Step& step,
                                                  pipeline::EvalContext& ctx, const Map& injected,
                                                  const std::string& base_path) {
  LS_TRY_ASSIGN(Map env, step_env(step, ctx));
  return process_env(std::move(env), injected, base_path);
}

}  // namespace lockstep::runner
