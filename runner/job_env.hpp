#pragma once
// The environment a job's steps see, layered as GitHub layers it: workflow
// env, then job env, then --env from the command line, then what earlier
// steps wrote to $GITHUB_ENV, then the step's own env; lockstep's GITHUB_*,
// RUNNER_* and CI variables last, so a workflow cannot spoof them. The `env`
// expression context follows the same layering.
#include <map>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "pipeline/expr.hpp"
#include "pipeline/model.hpp"

namespace lockstep::runner {

struct RunShared;

class JobEnv {
 public:
  // Evaluates workflow env, job env and --env into the base; sets ctx's env.
  Status build(const RunShared& run, const pipeline::Job& job, pipeline::EvalContext& ctx);

  // The step's full environment ("K=V"), with `injected` last. Sets ctx's env
  // to what the step sees (for its run: and with: expressions).
  Result<std::vector<std::string>> for_step(const pipeline::Step& step, pipeline::EvalContext& ctx,
                                            const std::map<std::string, std::string>& injected,
                                            const std::string& base_path);

  const std::map<std::string, std::string>& base() const { return base_; }

  // From $GITHUB_ENV and $GITHUB_PATH of a finished step.
  void set(const std::string& key, const std::string& value) { exported_[key] = value; }
  void add_path(const std::string& dir) { path_prepend_.insert(path_prepend_.begin(), dir); }

 private:
  std::map<std::string, std::string> base_;
  std::map<std::string, std::string> exported_;
  std::vector<std::string> path_prepend_;
};

}  // namespace lockstep::runner
