#include "pipeline/workflow_call.hpp"

#include <algorithm>
#include <set>

#include "pipeline/diagnostic.hpp"
#include "pipeline/env_hash.hpp"
#include "pipeline/expr_ast.hpp"
#include "pipeline/graph.hpp"
#include "pipeline/lock_inputs.hpp"
#include "pipeline/matrix.hpp"

namespace lockstep::pipeline {

namespace {

// The contexts GitHub gives `with:` and `secrets:` of a calling job
// (workflow schema: scalar-needs-context[-with-secrets]).
const std::vector<std::string> kWithContexts = {"github", "inputs",   "vars",
                                                "needs",  "strategy", "matrix"};

const WorkflowInput* find_input(const WorkflowCallTrigger& t, std::string_view name) {
  for (const auto& in : t.inputs)
    if (expr::iequals(in.name, name)) return &in;
  return nullptr;
}

const WorkflowSecret* find_secret(const WorkflowCallTrigger& t, std::string_view name) {
  for (const auto& s : t.secrets)
    if (expr::iequals(s.name, name)) return &s;
  return nullptr;
}

const char* type_name(InputType t) {
  switch (t) {
    case InputType::kBoolean:
      return "a boolean";
    case InputType::kNumber:
      return "a number";
    case InputType::kString:
      break;
  }
  return "a string";
}

std::string kind_of(const Value& v) {
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_null()) return "null";
  return v.is_array() ? "an array" : "an object";
}

std::string names_of(const std::vector<std::string>& names, const std::string& none) {
  if (names.empty()) return none;
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

// A value as YAML typed it: a string that is one ${{ }} keeps the
// expression's type; other strings with expressions are interpolated.
Result<Value> evaluate_typed(const OrderedValue& v, const EvalContext& ctx) {
  if (!v.is_string()) return Value::parse(v.dump());
  const std::string& text = v.get_ref<const std::string&>();
  if (!has_expression(text)) return Value(text);
  LS_TRY_ASSIGN(auto parts, expr::split_template(text));
  if (parts.size() == 1 && parts[0].is_expression) return evaluate(parts[0].text, ctx);
  LS_TRY_ASSIGN(std::string s, interpolate(text, ctx));
  return Value(std::move(s));
}

bool is_expression_value(const OrderedValue& v) {
  return v.is_string() && has_expression(v.get_ref<const std::string&>());
}

// `v` as the input's type, or why not.
Result<Value> to_input_type(const WorkflowInput& in, const std::string& callee, const Value& v) {
  auto wrong = [&] {
    return fail("input '" + in.name + "' of " + callee + " expects " + type_name(in.type) +
                    ", got '" + to_display_string(v) + "' (" + kind_of(v) + ")",
                ErrorKind::kWorkflow);
  };
  switch (in.type) {
    case InputType::kBoolean:
      if (!v.is_boolean()) return wrong();
      return v;
    case InputType::kNumber:
      if (!v.is_number()) return wrong();
      return v;
    case InputType::kString:
      break;
  }
  if (v.is_array() || v.is_object()) return wrong();
  return Value(to_display_string(v));
}

Value zero_of(InputType t) {
  switch (t) {
    case InputType::kBoolean:
      return false;
    case InputType::kNumber:
      return 0;
    case InputType::kString:
      break;
  }
  return "";
}

// The contexts a scalar reads (none for literals).
Result<std::vector<std::string>> reads(const OrderedValue& v) {
  if (!is_expression_value(v)) return std::vector<std::string>{};
  return contexts_used(v.get_ref<const std::string&>(), false);
}

bool reads_context(const OrderedValue& v, std::string_view context) {
  auto used = reads(v);
  return used && std::find(used->begin(), used->end(), context) != used->end();
}

// The job's matrix reads `context` (needs, inputs).
bool matrix_reads(const Job& job, std::string_view context) {
  for (const ExprSite& site : job.expressions) {
    if (!site.in_matrix) continue;
    auto used = contexts_used(site.text, site.condition);
    if (used && std::find(used->begin(), used->end(), context) != used->end()) return true;
  }
  return false;
}

class GraphLoader {
 public:
  GraphLoader(const WorkflowLoader& load, std::string root_identity, const Workflow& root)
      : load_(load) {
    stack_.push_back(
        {root_identity.empty() ? std::string("\x01root") : std::move(root_identity), root.file});
  }

  // Loads what `wf` (read as `self`; null: the run's workflow) calls, at
  // `level` levels of workflows; returns the levels below `wf`.
  Result<int> visit(const Workflow& wf, const CalledWorkflow* self, int level) {
    int below = 0;
    for (const Job& job : wf.jobs) {
      if (!job.call) continue;
      const JobCall& call = *job.call;
      auto at = [&](SourceLoc loc, std::string message) {
        return fail(workflow_error(wf.file, wf.source, loc, std::move(message)));
      };
      auto ref = parse_workflow_ref(call.uses);
      if (!ref) return at(call.uses_loc, std::string(ref.error().message()));
      auto loaded = load_(self, *ref);
      if (!loaded) {
        // A located error (in the called workflow's own file) stays as it is.
        auto located = decode_workflow_error(loaded.error());
        if (located && located->line > 0) return fail(std::move(loaded.error()));
        return at(call.uses_loc,
                  "job '" + job.id + "': " + std::string(first_line(loaded.error())));
      }
      const std::string id = (*loaded)->identity();
      for (size_t i = 0; i < stack_.size(); ++i) {
        if (stack_[i].first != id) continue;
        std::string chain;
        for (size_t k = i; k < stack_.size(); ++k) chain += stack_[k].second + " -> ";
        return at(call.uses_loc, "reusable workflow cycle: " + chain + (*loaded)->name());
      }
      std::shared_ptr<const CalledWorkflow> callee;
      if (auto it = by_identity_.find(id); it != by_identity_.end()) {
        callee = it->second;
      } else {
        callee = *loaded;
        by_identity_[id] = callee;
        graph.workflows.push_back(callee);
      }
      if (level + 1 > kMaxWorkflowLevels) {
        std::string chain;
        for (const auto& s : stack_) chain += s.second + " -> ";
        return at(call.uses_loc, "reusable workflows nested more than " +
                                     std::to_string(kMaxWorkflowLevels) +
                                     " levels deep (GitHub's limit: the top-level workflow and " +
                                     std::to_string(kMaxWorkflowLevels - 1) +
                                     " levels of reusable workflows): " + chain + callee->name());
      }
      LS_TRY(check_call(wf, job, *callee));
      graph.callee[&job] = callee;
      int h = 0;
      if (auto it = height_.find(id); it != height_.end()) {
        h = it->second;
        if (level + 1 + h > kMaxWorkflowLevels)
          return at(call.uses_loc, "calling " + callee->name() + " here makes more than " +
                                       std::to_string(kMaxWorkflowLevels) +
                                       " levels of workflows (GitHub's limit)");
      } else {
        LS_TRY(build_graph(callee->workflow));
        stack_.push_back({id, callee->name()});
        auto sub = visit(callee->workflow, callee.get(), level + 1);
        stack_.pop_back();
        if (!sub) return fail(std::move(sub.error()));
        h = *sub;
        height_[id] = h;
      }
      below = std::max(below, h + 1);
    }
    return below;
  }

  CallGraph graph;

 private:
  // The call of `callee` by `job` (in `wf`) before anything runs.
  static Status check_call(const Workflow& wf, const Job& job, const CalledWorkflow& callee) {
    const JobCall& call = *job.call;
    const std::string name = callee.name();
    auto at = [&](SourceLoc loc, std::string message) {
      return fail(workflow_error(wf.file, wf.source, loc, std::move(message)));
    };
    if (!callee.workflow.workflow_call)
      return at(call.uses_loc, "job '" + job.id + "' calls " + name +
                                   ", which is not a reusable workflow: it has no "
                                   "'on: workflow_call'");
    const WorkflowCallTrigger& t = *callee.workflow.workflow_call;
    std::vector<std::string> input_names, secret_names;
    for (const auto& in : t.inputs) input_names.push_back(in.name);
    for (const auto& s : t.secrets) secret_names.push_back(s.name);
    auto check_contexts = [&](const OrderedValue& v, SourceLoc loc, const std::string& what,
                              bool secrets) -> Status {
      LS_TRY_ASSIGN(auto used, reads(v));
      for (const auto& c : used) {
        bool ok = std::find(kWithContexts.begin(), kWithContexts.end(), c) != kWithContexts.end() ||
                  (secrets && c == "secrets");
        if (!ok)
          return at(loc, "'" + c + "' is not available in " + what + " of job '" + job.id +
                             "' (it may read " + names_of(kWithContexts, "") +
                             (secrets ? ", secrets)" : ")"));
      }
      return {};
    };
    for (size_t i = 0; i < call.with.size(); ++i) {
      const auto& [key, value] = call.with[i];
      const SourceLoc loc = i < call.with_locs.size() ? call.with_locs[i] : call.uses_loc;
      const WorkflowInput* in = find_input(t, key);
      if (!in) {
        std::vector<std::string_view> cands(input_names.begin(), input_names.end());
        std::string hint = did_you_mean(key, cands);
        return at(loc, "input '" + key + "' is not defined in " + name + " (" +
                           (hint.empty() ? "its inputs: " + names_of(input_names, "none")
                                         : hint.substr(2, hint.size() - 3)) +
                           ")");
      }
      LS_TRY(check_contexts(value, loc, "input '" + key + "' in 'with'", false));
      if (!is_expression_value(value)) {
        auto typed = to_input_type(*in, name, Value::parse(value.dump()));
        if (!typed) return at(loc, std::string(typed.error().message()));
      }
    }
    for (const auto& in : t.inputs) {
      if (!in.required) continue;
      bool given = std::any_of(call.with.begin(), call.with.end(),
                               [&](const auto& w) { return expr::iequals(w.first, in.name); });
      if (!given)
        return at(call.uses_loc, "job '" + job.id + "' does not give input '" + in.name +
                                     "', which " + name + " requires");
    }
    if (call.inherit_secrets) return {};
    for (size_t i = 0; i < call.secrets.size(); ++i) {
      const auto& [key, value] = call.secrets[i];
      const SourceLoc loc = i < call.secret_locs.size() ? call.secret_locs[i] : call.uses_loc;
      if (!find_secret(t, key))
        return at(loc, "secret '" + key + "' is not defined in " + name +
                           " (its secrets: " + names_of(secret_names, "none") + ")");
      LS_TRY(check_contexts(OrderedValue(value), loc, "secret '" + key + "' in 'secrets'", true));
    }
    for (const auto& s : t.secrets) {
      if (!s.required) continue;
      bool given = std::any_of(call.secrets.begin(), call.secrets.end(),
                               [&](const auto& p) { return expr::iequals(p.first, s.name); });
      if (!given)
        return at(call.uses_loc, "job '" + job.id + "' does not pass secret '" + s.name +
                                     "', which " + name +
                                     " requires (pass it under 'secrets:' or use 'secrets: "
                                     "inherit')");
    }
    return {};
  }

  const WorkflowLoader& load_;
  std::vector<std::pair<std::string, std::string>> stack_;  // identity, name
  std::map<std::string, std::shared_ptr<const CalledWorkflow>> by_identity_;
  std::map<std::string, int> height_;  // identity -> levels of workflows below it
};

std::string local_name(const JobInstance& inst) {
  if (!inst.scope) return inst.display_name;
  std::string p = inst.scope->prefix();
  return inst.display_name.rfind(p, 0) == 0 ? inst.display_name.substr(p.size())
                                            : inst.display_name;
}

}  // namespace

std::string CalledWorkflow::name() const {
  if (repository.empty()) return "./" + path;
  return repository + "/" + path + "@" + ref;
}

std::string CalledWorkflow::identity() const {
  return repository + "@" + commit + ":" + path;
}

std::shared_ptr<const CalledWorkflow> CallGraph::of(const Job& job) const {
  auto it = callee.find(&job);
  return it == callee.end() ? nullptr : it->second;
}

Result<CallGraph> load_call_graph(const Workflow& root, const WorkflowLoader& load,
                                  const std::string& root_identity,
                                  std::vector<std::string>* warnings) {
  GraphLoader loader(load, root_identity, root);
  LS_TRY_ASSIGN(int below, loader.visit(root, nullptr, 1));
  (void)below;
  if (warnings && loader.graph.workflows.size() > kMaxUniqueWorkflows)
    warnings->push_back(root.file + " calls " + std::to_string(loader.graph.workflows.size()) +
                        " unique reusable workflows; GitHub refuses more than " +
                        std::to_string(kMaxUniqueWorkflows) + ", lockstep runs them all");
  return std::move(loader.graph);
}

std::string CallScope::prefix() const {
  return (parent ? parent->prefix() : std::string()) + caller_name + " / ";
}

int CallScope::levels() const {
  return parent ? parent->levels() + 1 : 2;
}

std::vector<std::string> CallScope::caller_ids() const {
  std::vector<std::string> out = parent ? parent->caller_ids() : std::vector<std::string>{};
  out.push_back(caller->id);
  return out;
}

const Workflow& workflow_of(const JobInstance& instance, const Workflow& root) {
  return instance.scope ? instance.scope->workflow() : root;
}

Result<Value> bind_inputs(const Workflow& caller_wf, const Job& caller,
                          const CalledWorkflow& callee, const EvalContext& ctx) {
  const JobCall& call = *caller.call;
  Value out = Value::object();
  if (!callee.workflow.workflow_call) return out;
  const std::string name = callee.name();
  for (const WorkflowInput& in : callee.workflow.workflow_call->inputs) {
    size_t i = 0;
    while (i < call.with.size() && !expr::iequals(call.with[i].first, in.name)) ++i;
    if (i < call.with.size()) {
      const SourceLoc loc = i < call.with_locs.size() ? call.with_locs[i] : call.uses_loc;
      auto located = [&](const Error& e) {
        return fail(
            workflow_error(caller_wf.file, caller_wf.source, loc, std::string(first_line(e))));
      };
      auto v = evaluate_typed(call.with[i].second, ctx);
      if (!v)
        return located(Error("input '" + in.name + "': " + std::string(first_line(v.error()))));
      auto typed = to_input_type(in, name, *v);
      if (!typed) return located(typed.error());
      out[in.name] = std::move(*typed);
      continue;
    }
    if (!in.default_value) {
      out[in.name] = zero_of(in.type);
      continue;
    }
    auto located = [&](const Error& e) {
      return fail(workflow_error(callee.workflow.file, callee.workflow.source, in.default_loc,
                                 std::string(first_line(e))));
    };
    auto v = evaluate_typed(*in.default_value, ctx);
    if (!v)
      return located(
          Error("default of input '" + in.name + "': " + std::string(first_line(v.error()))));
    auto typed = to_input_type(in, name, *v);
    if (!typed) return located(typed.error());
    out[in.name] = std::move(*typed);
  }
  return out;
}

Result<Value> bind_secrets(const Workflow& caller_wf, const Job& caller,
                           const CalledWorkflow& callee, const EvalContext& ctx) {
  const JobCall& call = *caller.call;
  Value out = Value::object();
  const WorkflowCallTrigger* t =
      callee.workflow.workflow_call ? &*callee.workflow.workflow_call : nullptr;
  if (call.inherit_secrets) {
    if (ctx.contexts.contains("secrets") && ctx.contexts["secrets"].is_object())
      out = ctx.contexts["secrets"];
    for (const WorkflowSecret& s : t ? t->secrets : std::vector<WorkflowSecret>{}) {
      if (!s.required) continue;
      bool have = false;
      for (auto it = out.begin(); it != out.end(); ++it)
        have = have || expr::iequals(it.key(), s.name);
      if (!have)
        return fail(workflow_error(caller_wf.file, caller_wf.source, call.uses_loc,
                                   "secret '" + s.name + "', which " + callee.name() +
                                       " requires, is not among the secrets job '" + caller.id +
                                       "' inherits"));
    }
    return out;
  }
  // "The called workflow is automatically granted access to github.token
  // and secrets.GITHUB_TOKEN" (GitHub), whatever the call passes.
  auto with_token = [&](Value v) {
    if (ctx.contexts.contains("secrets") && ctx.contexts["secrets"].is_object() &&
        ctx.contexts["secrets"].contains("GITHUB_TOKEN") && !v.contains("GITHUB_TOKEN"))
      v["GITHUB_TOKEN"] = ctx.contexts["secrets"]["GITHUB_TOKEN"];
    return v;
  };
  for (size_t i = 0; i < call.secrets.size(); ++i) {
    const auto& [key, text] = call.secrets[i];
    const WorkflowSecret* s = t ? find_secret(*t, key) : nullptr;
    auto v = interpolate(text, ctx);
    if (!v) {
      const SourceLoc loc = i < call.secret_locs.size() ? call.secret_locs[i] : call.uses_loc;
      return fail(workflow_error(caller_wf.file, caller_wf.source, loc,
                                 "secret '" + key + "': " + std::string(first_line(v.error()))));
    }
    out[s ? s->name : key] = std::move(*v);
  }
  return with_token(std::move(out));
}

Result<std::map<std::string, std::string>> call_outputs(const CalledWorkflow& callee,
                                                        const Value& jobs, const EvalContext& ctx) {
  std::map<std::string, std::string> out;
  if (!callee.workflow.workflow_call) return out;
  EvalContext c = ctx;
  c.contexts["jobs"] = jobs;
  for (const WorkflowOutput& o : callee.workflow.workflow_call->outputs) {
    auto v = interpolate(o.value, c);
    if (!v)
      return fail(workflow_error(callee.workflow.file, callee.workflow.source, o.loc,
                                 "output '" + o.name + "': " + std::string(first_line(v.error()))));
    out[o.name] = std::move(*v);
  }
  return out;
}

Result<std::vector<JobInstance>> expand_call(const std::shared_ptr<const CallScope>& scope,
                                             const EvalContext& base,
                                             std::vector<std::string>* warnings) {
  const Workflow& wf = scope->workflow();
  EvalContext ctx = base;
  ctx.contexts["inputs"] = scope->inputs;
  const std::string prefix = scope->prefix();
  std::vector<JobInstance> out;
  for (const Job& job : wf.jobs) {
    if (matrix_depends_on_needs(job)) {
      out.push_back({&job, OrderedValue(), prefix + job.id + " (matrix from needs)", scope});
      continue;
    }
    if (!scope->inputs_known && matrix_reads(job, "inputs")) {
      out.push_back({&job, OrderedValue(), prefix + job.id + " (matrix from inputs)", scope});
      continue;
    }
    LS_TRY_ASSIGN(auto instances, expand_job(wf, job, ctx, warnings));
    for (auto& inst : instances) {
      inst.display_name = prefix + inst.display_name;
      inst.scope = scope;
      out.push_back(std::move(inst));
    }
  }
  return out;
}

Result<std::shared_ptr<CallScope>> make_call_scope(const JobInstance& instance,
                                                   const Workflow& root, const CallGraph& graph,
                                                   const EvalContext& ctx) {
  auto scope = std::make_shared<CallScope>();
  scope->parent = instance.scope;
  scope->caller = instance.job;
  scope->caller_name = local_name(instance);
  scope->called = graph.of(*instance.job);
  if (!scope->called)
    return fail("job '" + instance.job->id + "' calls a workflow that was not loaded",
                ErrorKind::kGeneric);
  const bool before_run = !ctx.contexts.contains("needs");
  const bool parent_unknown = instance.scope && !instance.scope->inputs_known;
  if (before_run || parent_unknown) {
    for (const auto& [k, v] : instance.job->call->with) {
      if ((before_run && reads_context(v, "needs")) ||
          (parent_unknown && reads_context(v, "inputs"))) {
        scope->inputs_known = false;
        return scope;
      }
    }
  }
  LS_TRY_ASSIGN(scope->inputs,
                bind_inputs(workflow_of(instance, root), *instance.job, *scope->called, ctx));
  return scope;
}

Result<std::vector<JobInstance>> preview_instances(const std::vector<JobInstance>& top,
                                                   const Workflow& root, const CallGraph& graph,
                                                   const EvalContext& base,
                                                   std::vector<std::string>* warnings) {
  std::vector<JobInstance> out;
  std::function<Status(const std::vector<JobInstance>&)> walk =
      [&](const std::vector<JobInstance>& list) -> Status {
    std::map<std::pair<const CallScope*, std::string>, size_t> total, seen;
    for (const auto& inst : list) ++total[{inst.scope.get(), inst.job->id}];
    for (const auto& inst : list) {
      const std::pair<const CallScope*, std::string> key{inst.scope.get(), inst.job->id};
      const size_t index = seen[key]++;
      if (!inst.job->call || is_stand_in(inst)) {
        out.push_back(inst);
        continue;
      }
      EvalContext ctx = instance_context(base, inst, index, total[key]);
      ctx.contexts.erase("needs");
      LS_TRY_ASSIGN(auto scope, make_call_scope(inst, root, graph, ctx));
      LS_TRY_ASSIGN(auto jobs, expand_call(scope, base, warnings));
      LS_TRY(walk(jobs));
    }
    return {};
  };
  LS_TRY(walk(top));
  return out;
}

Json call_document(const CallScope& scope) {
  const CalledWorkflow& c = *scope.called;
  return {{"workflow", c.name()},
          {"repository", c.repository},
          {"ref", c.ref},
          {"commit", c.commit},
          {"path", c.path},
          {"digest", c.digest},
          {"callers", scope.caller_ids()},
          {"inputs", without_floats(scope.inputs)}};
}

}  // namespace lockstep::pipeline
