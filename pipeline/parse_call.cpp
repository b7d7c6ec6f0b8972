// The workflow parser, part four: reusable workflows. A job that calls one
// (`jobs.<id>.uses`, with `with` and `secrets`), and `on.workflow_call` of a
// workflow that may be called (its inputs, secrets and outputs), with
// GitHub's schema: a calling job has only the keys GitHub allows it.
#include <set>

#include "pipeline/diagnostic.hpp"
#include "pipeline/expr.hpp"
#include "pipeline/parse.hpp"
#include "pipeline/parse_internal.hpp"

namespace lockstep::pipeline::detail {

namespace {

// What GitHub allows in a job that calls a reusable workflow.
const std::vector<std::string_view> kCallKeys = {
    "name", "uses", "with", "secrets", "strategy", "needs", "if", "permissions", "concurrency"};

// Keys of a job that runs steps, refused in a calling job by name.
const std::vector<std::string_view> kStepJobKeys = {
    "runs-on", "container",         "services", "env",      "timeout-minutes",
    "steps",   "continue-on-error", "outputs",  "defaults", "environment"};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

Result<Job> WorkflowParser::call_job(Job job, const YAML::Node& key, const YAML::Node& n) {
  const std::string where = "job '" + job.id + "'";
  std::set<std::string> seen;
  for (auto it = n.begin(); it != n.end(); ++it) {
    const YAML::Node k = it->first;
    if (!k.IsScalar()) return error(k, "expected a string key in " + where + ", got " + kind_of(k));
    const std::string& name = k.Scalar();
    if (!seen.insert(name).second) return error(k, "duplicate key '" + name + "' in " + where);
    if (std::find(kCallKeys.begin(), kCallKeys.end(), name) != kCallKeys.end()) continue;
    if (std::find(kStepJobKeys.begin(), kStepJobKeys.end(), name) != kStepJobKeys.end())
      return error(k, "'" + name + "' is not allowed in " + where +
                          ", which calls a reusable workflow (a calling job has only name, "
                          "uses, with, secrets, strategy, needs, if, permissions and "
                          "concurrency)");
    return error(k, "unknown key '" + name + "' in " + where + did_you_mean(name, kCallKeys));
  }
  JobCall call;
  for (auto it = n.begin(); it != n.end(); ++it) {
    null_loc_ = loc(it->first);
    const std::string k = it->first.Scalar();
    const YAML::Node v = it->second;
    const std::string what = "'" + k + "' in " + where;
    if (k == "uses") {
      LS_TRY_ASSIGN(call.uses, scalar(v, what));
      call.uses_loc = loc(v);
      if (has_expression(call.uses))
        return error(v,
                     "'uses' cannot hold an expression (GitHub resolves reusable workflows "
                     "before the run starts)");
      auto ref = parse_workflow_ref(call.uses);
      if (!ref) return error(v, std::string(ref.error().message()));
      if (ref->ref.rfind("refs/", 0) == 0)
        return error(v, "'" + ref->ref + "' in '" + call.uses +
                            "': GitHub refuses ref prefixes such as refs/heads/ and refs/tags/ "
                            "(name the branch, tag or commit)");
    } else if (k == "with") {
      LS_TRY(expect_map(v, what));
      std::set<std::string> names;
      for (auto w = v.begin(); w != v.end(); ++w) {
        null_loc_ = loc(w->first);
        if (!w->first.IsScalar() || w->first.Scalar().empty())
          return error(w->first, "expected an input name in " + what);
        const std::string input = w->first.Scalar();
        if (!names.insert(lower(input)).second)
          return error(w->first, "duplicate input '" + input + "' in " + what);
        const YAML::Node val = w->second;
        if (val.IsMap() || val.IsSequence())
          return error(val, "expected a string, number or boolean for input '" + input + "' in " +
                                what + ", got " + kind_of(val));
        OrderedValue value = "";
        if (!val.IsNull()) {
          LS_TRY_ASSIGN(value, to_value(val, "input '" + input + "' of 'with'", &job.expressions));
        }
        call.with.emplace_back(input, std::move(value));
        call.with_locs.push_back(loc(w->first));
      }
    } else if (k == "secrets") {
      if (v.IsScalar()) {
        if (v.Scalar() != "inherit")
          return error(v, "expected 'inherit' or a mapping of secrets for " + what + ", got '" +
                              v.Scalar() + "'");
        call.inherit_secrets = true;
        continue;
      }
      LS_TRY(expect_map(v, what));
      std::set<std::string> names;
      for (auto s = v.begin(); s != v.end(); ++s) {
        null_loc_ = loc(s->first);
        if (!s->first.IsScalar() || s->first.Scalar().empty())
          return error(s->first, "expected a secret name in " + what);
        const std::string name = s->first.Scalar();
        if (!names.insert(lower(name)).second)
          return error(s->first, "duplicate secret '" + name + "' in " + what);
        std::string value;
        if (!s->second.IsNull()) {
          LS_TRY_ASSIGN(value, scalar(s->second, "secret '" + name + "' in " + what));
        }
        LS_TRY(check_expr(s->second, value, "secret '" + name + "' of 'secrets'", false,
                          &job.expressions));
        call.secrets.emplace_back(name, value);
        call.secret_locs.push_back(loc(s->first));
      }
    } else {
      LS_TRY(job_entry(job, where, k, it->first, v));
    }
  }
  if (call.uses.empty()) return error(key, where + " has an empty 'uses'");
  job.call = std::move(call);
  return job;
}

Status WorkflowParser::on_trigger(const YAML::Node& n) {
  // Only workflow_call matters to lockstep; every other event is accepted
  // and ignored, as `on` always was.
  auto is_call = [](const YAML::Node& e) { return e.IsScalar() && e.Scalar() == "workflow_call"; };
  if (is_call(n)) {
    wf_.workflow_call = WorkflowCallTrigger{{}, {}, {}, loc(n)};
    return {};
  }
  if (n.IsSequence()) {
    for (const auto& e : n)
      if (is_call(e)) wf_.workflow_call = WorkflowCallTrigger{{}, {}, {}, loc(e)};
    return {};
  }
  if (!n.IsMap()) return {};
  for (auto it = n.begin(); it != n.end(); ++it) {
    if (!is_call(it->first)) continue;
    null_loc_ = loc(it->first);
    WorkflowCallTrigger t;
    t.loc = loc(it->first);
    const YAML::Node v = it->second;
    if (!v.IsNull()) {
      const std::string where = "'on.workflow_call'";
      LS_TRY(expect_map(v, where));
      LS_TRY(check_keys(v, {"inputs", "secrets", "outputs"}, {}, where));
      for (auto kv = v.begin(); kv != v.end(); ++kv) {
        null_loc_ = loc(kv->first);
        const std::string key = kv->first.Scalar();
        if (kv->second.IsNull()) continue;
        if (key == "inputs") {
          LS_TRY(call_inputs(t, kv->second));
        } else if (key == "secrets") {
          LS_TRY(call_secrets(t, kv->second));
        } else {
          LS_TRY(call_outputs(t, kv->second));
        }
      }
    }
    wf_.workflow_call = std::move(t);
  }
  return {};
}

Status WorkflowParser::call_inputs(WorkflowCallTrigger& t, const YAML::Node& n) {
  const std::string where = "'on.workflow_call.inputs'";
  LS_TRY(expect_map(n, where));
  std::set<std::string> names;
  for (auto it = n.begin(); it != n.end(); ++it) {
    null_loc_ = loc(it->first);
    if (!it->first.IsScalar() || it->first.Scalar().empty())
      return error(it->first, "expected an input name in " + where);
    WorkflowInput in;
    in.name = it->first.Scalar();
    in.loc = loc(it->first);
    if (!names.insert(lower(in.name)).second)
      return error(it->first, "duplicate input '" + in.name + "' in " + where);
    const std::string what = "input '" + in.name + "' of 'on.workflow_call'";
    const YAML::Node v = it->second;
    LS_TRY(expect_map(v, what));
    LS_TRY(check_keys(v, {"description", "type", "required", "default"}, {}, what));
    if (!v["type"]) return error(it->first, what + " has no 'type' (boolean, number or string)");
    for (auto kv = v.begin(); kv != v.end(); ++kv) {
      null_loc_ = loc(kv->first);
      const std::string key = kv->first.Scalar();
      const YAML::Node val = kv->second;
      if (key == "type") {
        LS_TRY_ASSIGN(std::string type, scalar(val, "'type' of " + what));
        if (type == "string") {
          in.type = InputType::kString;
        } else if (type == "boolean") {
          in.type = InputType::kBoolean;
        } else if (type == "number") {
          in.type = InputType::kNumber;
        } else {
          return error(val, "unknown type '" + type + "' of " + what +
                                " (a workflow_call input is a boolean, number or string)");
        }
      } else if (key == "required") {
        LS_TRY_ASSIGN(std::string r, scalar(val, "'required' of " + what));
        if (r != "true" && r != "false")
          return error(val,
                       "expected true or false for 'required' of " + what + ", got '" + r + "'");
        in.required = r == "true";
      } else if (key == "default") {
        if (!val.IsNull() && !val.IsScalar())
          return error(val, "expected a string, number or boolean for the default of " + what +
                                ", got " + kind_of(val));
        if (!val.IsNull()) {
          LS_TRY_ASSIGN(in.default_value, to_value(val, "default of " + what, nullptr));
          in.default_loc = loc(val);
        }
      } else if (key == "description") {
        LS_TRY_ASSIGN(std::string d, scalar(val, "'description' of " + what));
        (void)d;
      }
    }
    // A default that is not an expression must have the input's type.
    if (in.default_value &&
        !(in.default_value->is_string() && has_expression(in.default_value->get<std::string>()))) {
      const OrderedValue& d = *in.default_value;
      bool ok = in.type == InputType::kString ||
                (in.type == InputType::kBoolean && d.is_boolean()) ||
                (in.type == InputType::kNumber && d.is_number());
      if (!ok)
        return error(in.default_loc, "the default of " + what + " is not a " +
                                         (in.type == InputType::kBoolean ? "boolean" : "number"));
    }
    t.inputs.push_back(std::move(in));
  }
  return {};
}

Status WorkflowParser::call_secrets(WorkflowCallTrigger& t, const YAML::Node& n) {
  const std::string where = "'on.workflow_call.secrets'";
  LS_TRY(expect_map(n, where));
  std::set<std::string> names;
  for (auto it = n.begin(); it != n.end(); ++it) {
    null_loc_ = loc(it->first);
    if (!it->first.IsScalar() || it->first.Scalar().empty())
      return error(it->first, "expected a secret name in " + where);
    WorkflowSecret s;
    s.name = it->first.Scalar();
    s.loc = loc(it->first);
    if (!names.insert(lower(s.name)).second)
      return error(it->first, "duplicate secret '" + s.name + "' in " + where);
    const std::string what = "secret '" + s.name + "' of 'on.workflow_call'";
    const YAML::Node v = it->second;
    if (!v.IsNull()) {
      LS_TRY(expect_map(v, what));
      LS_TRY(check_keys(v, {"description", "required"}, {}, what));
      if (const YAML::Node r = v["required"]) {
        null_loc_ = loc(v);
        LS_TRY_ASSIGN(std::string text, scalar(r, "'required' of " + what));
        if (text != "true" && text != "false")
          return error(r,
                       "expected true or false for 'required' of " + what + ", got '" + text + "'");
        s.required = text == "true";
      }
    }
    t.secrets.push_back(std::move(s));
  }
  return {};
}

Status WorkflowParser::call_outputs(WorkflowCallTrigger& t, const YAML::Node& n) {
  const std::string where = "'on.workflow_call.outputs'";
  LS_TRY(expect_map(n, where));
  std::set<std::string> names;
  for (auto it = n.begin(); it != n.end(); ++it) {
    null_loc_ = loc(it->first);
    if (!it->first.IsScalar() || !is_valid_id(it->first.Scalar()))
      return error(it->first, "invalid output name in " + where +
                                  ": an output name starts with a letter or '_' and holds only "
                                  "letters, digits, '-' and '_'");
    WorkflowOutput o;
    o.name = it->first.Scalar();
    o.loc = loc(it->first);
    if (!names.insert(lower(o.name)).second)
      return error(it->first, "duplicate output '" + o.name + "' in " + where);
    const std::string what = "output '" + o.name + "' of 'on.workflow_call'";
    const YAML::Node v = it->second;
    LS_TRY(expect_map(v, what));
    LS_TRY(check_keys(v, {"description", "value"}, {}, what));
    if (!v["value"]) return error(it->first, what + " has no 'value'");
    null_loc_ = loc(v);
    LS_TRY_ASSIGN(o.value, scalar(v["value"], "'value' of " + what));
    LS_TRY(check_expr(v["value"], o.value, what, false, nullptr));
    t.outputs.push_back(std::move(o));
  }
  return {};
}

}  // namespace lockstep::pipeline::detail
