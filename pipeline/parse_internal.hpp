#pragma once
// Internal to the workflow parser: shared between parse.cpp (document, top
// level, scalars) and parse_job.cpp (jobs, steps, containers, strategy).
#include <yaml-cpp/yaml.h>

#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "pipeline/action.hpp"
#include "pipeline/model.hpp"

namespace lockstep::pipeline::detail {

class WorkflowParser {
 public:
  WorkflowParser(std::string_view source, const std::string& file);

  Result<Workflow> run();
  // parse_action.cpp: the text is an action's metadata file.
  Result<ActionManifest> action();

 private:
  using Keys = std::vector<std::string_view>;

  // Errors.
  SourceLoc loc(const YAML::Node& n) const;
  tl::unexpected<Error> error(SourceLoc at, std::string message) const;
  tl::unexpected<Error> error(const YAML::Node& at, std::string message) const {
    return error(loc(at), std::move(message));
  }
  static std::string kind_of(const YAML::Node& n);

  // Walks a mapping's keys: refuses non-string and duplicate keys, keys in
  // `unsupported` ("... is not supported by lockstep") and keys not in
  // `known` ("unknown key ... (did you mean ...?)"). `where` names the
  // mapping for messages.
  Status check_keys(const YAML::Node& map, const Keys& known, const Keys& unsupported,
                    const std::string& where) const;
  // "an expression as a key ... is not supported by lockstep": `key` holds
  // ${{ }} where lockstep does not evaluate keys (everywhere but the matrix).
  tl::unexpected<Error> unsupported_key(const YAML::Node& key, const std::string& where) const;

  // Typed reads; `what` names the value ("'run' in step 2 of job 'build'").
  Status expect_map(const YAML::Node& n, const std::string& what) const;
  Status expect_seq(const YAML::Node& n, const std::string& what) const;
  // Refuses a custom YAML tag (`if: !cancelled()` parses as tag + text).
  Status check_tag(const YAML::Node& n) const;
  Result<std::string> scalar(const YAML::Node& n, const std::string& what) const;
  Result<std::vector<std::string>> string_or_list(const YAML::Node& n,
                                                  const std::string& what) const;
  Result<std::vector<std::string>> string_list(const YAML::Node& n, const std::string& what) const;
  Result<EnvList> env_map(const YAML::Node& n, const std::string& what) const;
  Result<std::map<std::string, std::string>> string_map(const YAML::Node& n,
                                                        const std::string& what) const;
  // A scalar that may be an expression; records it in `sites` when it holds
  // one (or is an if:), after checking its syntax.
  Status check_expr(const YAML::Node& n, const std::string& text, const std::string& what,
                    bool condition, std::vector<ExprSite>* sites) const;
  // "true"/"false" or an expression (fail-fast, continue-on-error).
  Result<std::string> bool_or_expr(const YAML::Node& n, const std::string& what,
                                   const std::string& site, std::vector<ExprSite>* sites) const;
  // A positive number or an expression (timeout-minutes).
  Result<std::string> number_or_expr(const YAML::Node& n, const std::string& what,
                                     const std::string& site, std::vector<ExprSite>* sites) const;
  Result<OrderedValue> to_value(const YAML::Node& n, const std::string& what,
                                std::vector<ExprSite>* sites) const;
  Result<RunDefaults> defaults(const YAML::Node& n, const std::string& where) const;

  // parse_job.cpp
  Result<Job> job(const std::string& id, const YAML::Node& key, const YAML::Node& n);
  Status job_entry(Job& job, const std::string& where, const std::string& key, const YAML::Node& k,
                   const YAML::Node& v);
  // Records the step's expressions in job.expressions, after the job's own.
  Result<Step> step(Job& job, size_t index, const YAML::Node& n);
  Status step_entry(Step& step, Job& job, const std::string& where, const std::string& key,
                    const YAML::Node& k, const YAML::Node& v);
  Result<ContainerDecl> container(Job& job, const YAML::Node& n, const std::string& where,
                                  bool service, std::vector<std::string>* ports);
  Result<Strategy> strategy(Job& job, const YAML::Node& n, const std::string& where);
  Result<OrderedValue> matrix(Job& job, const YAML::Node& n, const std::string& where);

  // parse_call.cpp: a job with `uses:` (the parts it shares with other jobs
  // go through job_entry), and `on.workflow_call`.
  Result<Job> call_job(Job job, const YAML::Node& key, const YAML::Node& n);
  Status on_trigger(const YAML::Node& n);
  Result<Concurrency> concurrency(const YAML::Node& n) const;
  Status call_inputs(WorkflowCallTrigger& t, const YAML::Node& n);
  Status call_secrets(WorkflowCallTrigger& t, const YAML::Node& n);
  Status call_outputs(WorkflowCallTrigger& t, const YAML::Node& n);

  // parse_action.cpp
  Status action_inputs(ActionManifest& a, const YAML::Node& n);
  Status action_outputs(ActionManifest& a, const YAML::Node& n);
  Status action_runs(ActionManifest& a, const YAML::Node& key, const YAML::Node& n);

  // Steps being parsed belong to a composite action, not a job: `run` needs
  // `shell`, there is no `timeout-minutes`, and messages say so.
  bool composite_ = false;
  // Where an empty (null) value is reported: its key. Set by every loop over
  // mapping entries before it looks at a value.
  mutable SourceLoc null_loc_;
  std::string_view source_;
  std::string file_;
  Workflow wf_;
};

}  // namespace lockstep::pipeline::detail
