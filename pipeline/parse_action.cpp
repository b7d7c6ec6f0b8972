// The workflow parser, part three: an action's metadata file (action.yml),
// with GitHub's schema: loose at the top level and in inputs (unknown keys
// such as `author` and `branding` are accepted), strict in `runs` and in a
// composite action's steps.
#include <charconv>

#include "common/utf8.hpp"
#include "pipeline/diagnostic.hpp"
#include "pipeline/expr.hpp"
#include "pipeline/parse.hpp"
#include "pipeline/parse_internal.hpp"
#include "pipeline/yaml_documents.hpp"

namespace lockstep::pipeline::detail {

namespace {

// Contexts a composite action's expressions may read (GitHub's action
// schema: no `secrets`, `needs` or `vars`; secrets reach an action as inputs).
constexpr std::string_view kCompositeContexts[] = {"github", "inputs", "strategy", "matrix",
                                                   "steps",  "job",    "runner",   "env"};

}  // namespace

Status WorkflowParser::action_inputs(ActionManifest& a, const YAML::Node& n) {
  LS_TRY(expect_map(n, "'inputs'"));
  for (auto it = n.begin(); it != n.end(); ++it) {
    null_loc_ = loc(it->first);
    if (!it->first.IsScalar() || it->first.Scalar().empty())
      return error(it->first, "expected an input name in 'inputs'");
    ActionInput in;
    in.name = it->first.Scalar();
    in.loc = loc(it->first);
    if (a.find_input(in.name)) return error(it->first, "duplicate input '" + in.name + "'");
    const YAML::Node v = it->second;
    const std::string what = "input '" + in.name + "'";
    if (!v.IsNull()) {
      LS_TRY(expect_map(v, what));
      for (auto kv = v.begin(); kv != v.end(); ++kv) {
        null_loc_ = loc(kv->first);
        if (!kv->first.IsScalar()) return error(kv->first, "expected a string key in " + what);
        const std::string key = kv->first.Scalar();
        const YAML::Node val = kv->second;
        if (key == "description") {
          if (val.IsScalar()) in.description = val.Scalar();
        } else if (key == "required") {
          LS_TRY_ASSIGN(std::string r, scalar(val, "'required' of " + what));
          if (r != "true" && r != "false")
            return error(val,
                         "expected true or false for 'required' of " + what + ", got '" + r + "'");
          in.required = r == "true";
        } else if (key == "default") {
          std::string d;
          if (!val.IsNull()) {
            LS_TRY_ASSIGN(d, scalar(val, "'default' of " + what));
          }
          LS_TRY(check_expr(val, d, "default of " + what, false, nullptr));
          in.default_value = d;
        } else if (key == "deprecationMessage") {
          if (val.IsScalar()) in.deprecation = val.Scalar();
        }
        // Other keys (GitHub's schema is loose here) are accepted and ignored.
      }
    }
    a.inputs.push_back(std::move(in));
  }
  return {};
}

Status WorkflowParser::action_outputs(ActionManifest& a, const YAML::Node& n) {
  LS_TRY(expect_map(n, "'outputs'"));
  for (auto it = n.begin(); it != n.end(); ++it) {
    null_loc_ = loc(it->first);
    if (!it->first.IsScalar() || it->first.Scalar().empty())
      return error(it->first, "expected an output name in 'outputs'");
    ActionOutput out;
    out.name = it->first.Scalar();
    out.loc = loc(it->first);
    for (const auto& o : a.outputs)
      if (o.name == out.name) return error(it->first, "duplicate output '" + out.name + "'");
    const YAML::Node v = it->second;
    const std::string what = "output '" + out.name + "'";
    if (!v.IsNull()) {
      LS_TRY(expect_map(v, what));
      LS_TRY(check_keys(v, {"description", "value"}, {}, what));
      if (v["description"] && v["description"].IsScalar())
        out.description = v["description"].Scalar();
      if (v["value"]) {
        LS_TRY_ASSIGN(out.value, scalar(v["value"], "'value' of " + what));
        LS_TRY(check_expr(v["value"], out.value, "value of " + what, false, nullptr));
      }
    }
    a.outputs.push_back(std::move(out));
  }
  return {};
}

Status WorkflowParser::action_runs(ActionManifest& a, const YAML::Node& key, const YAML::Node& n) {
  LS_TRY(expect_map(n, "'runs'"));
  if (!n["using"]) return error(key, "'runs' has no 'using'");
  LS_TRY_ASSIGN(a.using_text, scalar(n["using"], "'using' in 'runs'"));
  a.using_loc = loc(n["using"]);
  const std::string& u = a.using_text;
  int major = 0;
  if (u.size() > 4 && u.rfind("node", 0) == 0) {
    auto [p, ec] = std::from_chars(u.data() + 4, u.data() + u.size(), major);
    if (ec != std::errc() || p != u.data() + u.size()) major = 0;
  }
  auto need = [&](const char* k) -> Status {
    if (!n[k]) return error(key, "'runs' with 'using: " + u + "' has no '" + k + "'");
    return {};
  };
  if (major >= 12) {
    a.kind = ActionKind::kNode;
    a.node_major = major;
    LS_TRY(check_keys(n, {"using", "main", "pre", "pre-if", "post", "post-if"}, {}, "'runs'"));
    LS_TRY(need("main"));
    LS_TRY_ASSIGN(a.main, scalar(n["main"], "'main' in 'runs'"));
    if (n["pre"]) {
      LS_TRY_ASSIGN(a.pre, scalar(n["pre"], "'pre' in 'runs'"));
    }
    if (n["post"]) {
      LS_TRY_ASSIGN(a.post, scalar(n["post"], "'post' in 'runs'"));
    }
    for (auto [k, field] : {std::pair{"pre-if", &a.pre_if}, std::pair{"post-if", &a.post_if}}) {
      if (!n[k]) continue;
      LS_TRY_ASSIGN(*field, scalar(n[k], std::string("'") + k + "' in 'runs'"));
      LS_TRY(check_expr(n[k], *field, k, true, nullptr));
    }
    for (auto* s : {&a.main, &a.pre, &a.post})
      if (!s->empty() && (s->front() == '/' || s->find("..") != std::string::npos))
        return error(n["main"], "'" + *s + "' must be a path inside the action");
  } else if (u == "docker") {
    a.kind = ActionKind::kDocker;
    LS_TRY(check_keys(n,
                      {"using", "image", "entrypoint", "args", "env", "pre-entrypoint", "pre-if",
                       "post-entrypoint", "post-if"},
                      {}, "'runs'"));
    LS_TRY(need("image"));
    LS_TRY_ASSIGN(a.image, scalar(n["image"], "'image' in 'runs'"));
    if (a.image.empty()) return error(n["image"], "'image' in 'runs' is empty");
    if (n["args"]) {
      LS_TRY_ASSIGN(a.args, string_list(n["args"], "'args' in 'runs'"));
      for (size_t i = 0; i < a.args.size(); ++i)
        LS_TRY(check_expr(n["args"][i], a.args[i], "args", false, nullptr));
    }
    if (n["env"]) {
      LS_TRY_ASSIGN(a.env, env_map(n["env"], "'env' in 'runs'"));
      for (const auto& [k, v] : a.env) LS_TRY(check_expr(n["env"][k], v, "env", false, nullptr));
    }
    for (auto [k, field] :
         {std::pair{"entrypoint", &a.entrypoint}, std::pair{"pre-entrypoint", &a.pre_entrypoint},
          std::pair{"post-entrypoint", &a.post_entrypoint}, std::pair{"pre-if", &a.pre_if},
          std::pair{"post-if", &a.post_if}}) {
      if (n[k]) {
        LS_TRY_ASSIGN(*field, scalar(n[k], std::string("'") + k + "' in 'runs'"));
      }
    }
  } else if (u == "composite") {
    a.kind = ActionKind::kComposite;
    LS_TRY(check_keys(n, {"using", "steps"}, {}, "'runs'"));
    LS_TRY(need("steps"));
    const YAML::Node steps = n["steps"];
    LS_TRY(expect_seq(steps, "'steps' in 'runs'"));
    Job holder;  // collects the steps' expressions
    holder.id = "composite";
    composite_ = true;
    std::map<std::string, int> ids;
    size_t index = 0;
    for (const auto& s : steps) {
      null_loc_ = loc(n["steps"]);
      LS_TRY_ASSIGN(Step st, step(holder, ++index, s));
      if (!st.id.empty()) {
        auto [it, fresh] = ids.emplace(st.id, st.loc.line);
        if (!fresh)
          return error(s["id"], "duplicate step id '" + st.id + "' in the composite action");
      }
      a.steps.push_back(std::move(st));
    }
    composite_ = false;
    for (const auto& site : holder.expressions) {
      LS_TRY_ASSIGN(auto used, contexts_used(site.text, site.condition));
      for (const auto& c : used) {
        if (std::find(std::begin(kCompositeContexts), std::end(kCompositeContexts), c) ==
            std::end(kCompositeContexts))
          return error(site.loc, "'" + c + "' is not available in a composite action (" +
                                     site.what + "); pass the value in as an input");
      }
    }
  } else {
    return error(n["using"], "unknown 'using: " + u +
                                 "' (expected node16, node20, node24, composite or docker)");
  }
  return {};
}

Result<ActionManifest> WorkflowParser::action() {
  ActionManifest a;
  a.file = file_;
  a.source = std::string(source_);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(source_));
  } catch (const YAML::ParserException& e) {
    SourceLoc at = e.mark.is_null() ? SourceLoc{} : SourceLoc{e.mark.line + 1, e.mark.column + 1};
    return error(at, "malformed YAML: " + e.msg);
  }
  if (auto m = find_scalar_not_utf8(root))
    return error(SourceLoc{m->line + 1, m->column + 1}, kNotUtf8AfterEscapes);
  null_loc_ = {1, 1};
  if (root.IsNull()) return error(SourceLoc{1, 1}, "the action's metadata is empty");
  LS_TRY(expect_map(root, "the action's metadata"));
  YAML::Node runs_key, runs;
  bool has_runs = false;
  std::set<std::string> seen;
  for (auto it = root.begin(); it != root.end(); ++it) {
    null_loc_ = loc(it->first);
    if (!it->first.IsScalar()) return error(it->first, "expected a string key");
    const std::string key = it->first.Scalar();
    if (!seen.insert(key).second) return error(it->first, "duplicate key '" + key + "'");
    const YAML::Node v = it->second;
    if (key == "name") {
      LS_TRY_ASSIGN(a.name, scalar(v, "'name'"));
    } else if (key == "description") {
      if (v.IsScalar()) a.description = v.Scalar();
    } else if (key == "inputs") {
      if (!v.IsNull()) LS_TRY(action_inputs(a, v));
    } else if (key == "outputs") {
      if (!v.IsNull()) LS_TRY(action_outputs(a, v));
    } else if (key == "runs") {
      runs_key = it->first;
      runs = v;
      has_runs = true;
    }
    // author, branding and other keys: accepted, as GitHub does.
  }
  if (!has_runs) return error(SourceLoc{1, 1}, "the action has no 'runs'");
  null_loc_ = loc(runs_key);
  LS_TRY(action_runs(a, runs_key, runs));
  if (a.kind != ActionKind::kComposite) {
    for (const auto& o : a.outputs)
      if (!o.value.empty())
        return error(o.loc,
                     "output '" + o.name + "' has a 'value', which only composite actions use");
  }
  return a;
}

}  // namespace lockstep::pipeline::detail

namespace lockstep::pipeline {

Result<ActionManifest> parse_action(std::string_view yaml, const std::string& file) {
  // As for workflows: an action's metadata comes from another repository,
  // and a key or value that is not UTF-8 must not reach nlohmann::json.
  LS_TRY(check_yaml_text(yaml, file, ErrorKind::kWorkflow));
  try {
    return detail::WorkflowParser(yaml, file).action();
  } catch (const YAML::Exception& e) {
    SourceLoc at = e.mark.is_null() ? SourceLoc{} : SourceLoc{e.mark.line + 1, e.mark.column + 1};
    return fail(workflow_error(file, yaml, at, "malformed YAML: " + e.msg));
  }
}

}  // namespace lockstep::pipeline
