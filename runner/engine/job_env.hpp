#pragma once
// The environment a job's steps see, layered as GitHub layers it: workflow
// env, then job env, then --env from the command line, then what earlier
// steps wrote to $GITHUB_ENV, then the env of the composite action steps a
// step is nested in (outermost first), then the step's own env; lockstep's
// GITHUB_*, RUNNER_* and CI variables last, so a workflow cannot spoof them.
// The `env` expression context follows the same layering, and a step's
// `if:` already sees its own env (as GitHub evaluates them).
#include <map>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "pipeline/expr.hpp"
#include "pipeline/model.hpp"

namespace lockstep::runner {

struct RunContext;

class JobEnv {
 public:
  using Map = std::map<std::string, std::string>;

  // Evaluates the env of `wf` (the job's own workflow: a called workflow's,
  // not its caller's), job env and --env into the base; sets ctx's env.
  Status build(const RunContext& run, const pipeline::Workflow& wf, const pipeline::Job& job,
               pipeline::EvalContext& ctx);

  // What a step's `env` context holds: every layer above the injected
  // variables, the step's own env evaluated. Sets ctx's env to it (for the
  // step's if:, run: and with: expressions).
  Result<Map> step_env(const pipeline::Step& step, pipeline::EvalContext& ctx) const;

  // The process environment ("K=V") from a step_env() result: `injected`
  // last, PATH with the $GITHUB_PATH entries in front.
  std::vector<std::string> process_env(Map env, const Map& injected,
                                       const std::string& base_path) const;

  // The step's full environment ("K=V"), with `injected` last; step_env()
  // then process_env().
  Result<std::vector<std::string>> for_step(const pipeline::Step& step, pipeline::EvalContext& ctx,
                                            const Map& injected, const std::string& base_path);

  const Map& base() const { return base_; }

  // From $GITHUB_ENV and $GITHUB_PATH of a finished step.
  void set(const std::string& key, const std::string& value) { exported_[key] = value; }
  // As GitHub's runner: a directory added again moves to the front.
  void add_path(const std::string& dir) {
    std::erase(path_prepend_, dir);
    path_prepend_.insert(path_prepend_.begin(), dir);
  }

  // The evaluated env of a composite action step, for the steps inside it.
  void push_overrides(Map env) { overrides_.push_back(std::move(env)); }
  void pop_overrides() { overrides_.pop_back(); }

 private:
  Map base_;
  Map exported_;
  std::vector<Map> overrides_;
  std::vector<std::string> path_prepend_;
};

}  // namespace lockstep::runner
