#pragma once
// The workflow model: what pipeline::parse_workflow produces from GitHub
// Actions workflow bytes. Plain data; strings that may hold ${{ }} expressions
// are kept unevaluated (they are evaluated per job instance, with its contexts).
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace lockstep::pipeline {

// Expression values are JSON values: null, bool, number, string, array, object.
using Value = nlohmann::json;
// Ordered where declaration order matters (matrix axes, env for display).
using OrderedValue = nlohmann::ordered_json;

struct SourceLoc {
  int line = 0;    // 1-based; 0 = unknown
  int column = 0;  // 1-based
};

// A string of the workflow that may hold ${{ }} expressions, with where it
// came from: the parser syntax-checks each one, and expansion uses them to
// find undefined matrix keys. `what` names the place for messages
// ("'run' of step 2").
struct ExprSite {
  std::string what;
  std::string text;
  SourceLoc loc;
  bool condition = false;  // an if: (expression with or without ${{ }})
  bool in_matrix = false;  // part of strategy.matrix: evaluated before a matrix exists
};

// A key lockstep accepts but does not act on (top-level or job-level
// `permissions` and `concurrency`), kept so the runner can say so.
struct IgnoredKey {
  std::string key;    // "permissions"
  std::string where;  // "the workflow", "job 'build'"
  SourceLoc loc;
};

// An ordered list of "name: value" pairs (values may contain expressions).
using EnvList = std::vector<std::pair<std::string, std::string>>;

struct RunDefaults {
  std::string shell;              // empty: GitHub's default for the image
  std::string working_directory;  // empty: the workspace
};

struct Step {
  std::string id;    // may be empty
  std::string name;  // may be empty: display falls back to run/uses
  std::optional<std::string> run;
  std::optional<std::string> uses;  // "actions/checkout@v4"
  std::map<std::string, std::string> with;
  std::string shell;
  std::string working_directory;
  EnvList env;
  std::string if_expr;            // empty: success()
  std::string timeout_minutes;    // expression or number text; empty: none
  std::string continue_on_error;  // expression or "true"/"false"; empty: false
  SourceLoc loc;
  SourceLoc uses_loc;  // of the uses: value, for messages about the action
};

struct ContainerDecl {
  std::string image;  // may contain expressions
  EnvList env;
  std::string options;  // docker-style options text
  std::vector<std::string> volumes;
  SourceLoc loc;
};

struct ServiceDecl {
  std::string name;
  ContainerDecl container;
  std::vector<std::string> ports;
};

struct Strategy {
  // The matrix as declared: axes in declaration order plus include/exclude,
  // or an expression string (fromJSON(...)) to evaluate at expansion time.
  OrderedValue matrix;             // null when there is no matrix
  std::string fail_fast = "true";  // expression text
  std::optional<int> max_parallel;
  SourceLoc loc;
  SourceLoc matrix_loc;  // of the matrix: value
};

// `jobs.<id>.uses`: the job calls a reusable workflow instead of running
// steps (pipeline/workflow_call.hpp). Values keep their YAML type (a string,
// boolean or number) and may be expressions.
struct JobCall {
  std::string uses;  // as written
  SourceLoc uses_loc;
  std::vector<std::pair<std::string, OrderedValue>> with;  // declaration order
  std::vector<SourceLoc> with_locs;                        // of each key, parallel to `with`
  bool inherit_secrets = false;                            // `secrets: inherit`
  EnvList secrets;                                         // name -> value (expressions)
  std::vector<SourceLoc> secret_locs;                      // parallel to `secrets`
};

// `on.workflow_call` of a reusable workflow.
enum class InputType { kString, kBoolean, kNumber };
struct WorkflowInput {
  std::string name;
  InputType type = InputType::kString;
  bool required = false;
  // A string (may hold expressions over github, inputs and vars), boolean or
  // number; none: false, 0 or "" by type.
  std::optional<OrderedValue> default_value;
  SourceLoc loc;          // of the name
  SourceLoc default_loc;  // of the default
};
struct WorkflowSecret {
  std::string name;
  bool required = false;
  SourceLoc loc;
};
struct WorkflowOutput {
  std::string name;
  std::string value;  // an expression over github, inputs, vars and jobs
  SourceLoc loc;
};
struct WorkflowCallTrigger {
  std::vector<WorkflowInput> inputs;  // declaration order
  std::vector<WorkflowSecret> secrets;
  std::vector<WorkflowOutput> outputs;
  SourceLoc loc;
};

struct Job {
  std::string id;
  std::string name;  // may contain expressions; empty: id
  std::vector<std::string> needs;
  std::string if_expr;
  std::vector<std::string> runs_on;
  std::optional<ContainerDecl> container;
  std::vector<ServiceDecl> services;
  Strategy strategy;
  EnvList env;
  std::string timeout_minutes;    // empty: 360, as GitHub
  std::string continue_on_error;  // empty: false
  std::map<std::string, std::string> outputs;
  RunDefaults defaults;
  std::vector<Step> steps;
  std::optional<JobCall> call;  // set: the job calls a reusable workflow (no steps)
  SourceLoc loc;
  std::vector<SourceLoc> needs_locs;  // parallel to needs
  // Every string of the job that holds an expression, and every if:, in
  // document order (name, runs-on, container, services, env, steps...).
  std::vector<ExprSite> expressions;
};

// The workflow's `concurrency`: runs of one group do not overlap (the
// server acts on it; one `lockstep run` is one run, so it notes it).
struct Concurrency {
  std::string group;               // may hold expressions (github, inputs, vars)
  std::string cancel_in_progress;  // "true", "false" or an expression
  SourceLoc loc;
};

struct Workflow {
  std::string file;  // path as given, for messages
  std::string name;
  EnvList env;
  RunDefaults defaults;
  std::vector<Job> jobs;            // declaration order
  std::string run_name;             // run-name: (display only; may hold expressions)
  std::vector<IgnoredKey> ignored;  // accepted but not acted on
  std::string source;               // the workflow text, to quote lines in later errors
  // `on: workflow_call` (as a string, in a list, or a mapping): the workflow
  // may be called by another one.
  std::optional<WorkflowCallTrigger> workflow_call;
  std::optional<Concurrency> concurrency;
};

// One call of a reusable workflow (pipeline/workflow_call.hpp).
struct CallScope;

// One job x one matrix combination.
struct JobInstance {
  const Job* job = nullptr;
  OrderedValue matrix;       // object: axis -> value, declaration order; null: a stand-in
  std::string display_name;  // "build (gcc, Release)"; "call (linux) / test" in a called workflow
  // The call the job belongs to; null: a job of the run's own workflow.
  std::shared_ptr<const CallScope> scope;
};

}  // namespace lockstep::pipeline
