// The workflow parser, part two: jobs, steps, containers, services and the
// strategy/matrix.
#include <set>

#include "pipeline/diagnostic.hpp"
#include "pipeline/expr.hpp"
#include "pipeline/options.hpp"
#include "pipeline/parse.hpp"
#include "pipeline/parse_internal.hpp"

namespace lockstep::pipeline::detail {

Result<Job> WorkflowParser::job(const std::string& id, const YAML::Node& key, const YAML::Node& n) {
  Job job;
  job.id = id;
  job.loc = loc(key);
  const std::string where = "job '" + id + "'";
  LS_TRY(expect_map(n, where));
  if (n["uses"]) return call_job(std::move(job), key, n);
  for (auto it = n.begin(); it != n.end(); ++it) {
    const YAML::Node k = it->first;
    if (k.IsScalar() && (k.Scalar() == "with" || k.Scalar() == "secrets"))
      return error(k, "'" + k.Scalar() + "' in " + where +
                          " belongs to a job that calls a reusable workflow (with 'uses')");
  }
  LS_TRY(check_keys(n,
                    {"name", "needs", "if", "runs-on", "container", "services", "strategy", "env",
                     "timeout-minutes", "continue-on-error", "outputs", "defaults", "steps",
                     "permissions", "concurrency"},
                    {"environment"}, where));
  for (auto it = n.begin(); it != n.end(); ++it) {
    null_loc_ = loc(it->first);
    LS_TRY(job_entry(job, where, it->first.Scalar(), it->first, it->second));
  }
  if (!n["runs-on"]) return error(key, where + " has no 'runs-on'");
  if (!n["steps"]) return error(key, where + " has no 'steps'");
  return job;
}

Status WorkflowParser::job_entry(Job& job, const std::string& where, const std::string& key,
                                 const YAML::Node& k, const YAML::Node& v) {
  const std::string what = "'" + key + "' in " + where;
  auto* sites = &job.expressions;
  if (key == "name") {
    LS_TRY_ASSIGN(job.name, scalar(v, what));
    LS_TRY(check_expr(v, job.name, "'name'", false, sites));
  } else if (key == "needs") {
    LS_TRY_ASSIGN(job.needs, string_or_list(v, what));
    if (v.IsScalar()) {
      job.needs_locs.push_back(loc(v));
    } else {
      for (const auto& e : v) job.needs_locs.push_back(loc(e));
    }
  } else if (key == "if") {
    LS_TRY_ASSIGN(job.if_expr, scalar(v, what));
    LS_TRY(check_expr(v, job.if_expr, "'if'", true, sites));
  } else if (key == "runs-on") {
    if (v.IsMap())
      return error(k, "'runs-on' as a mapping (group/labels) is not supported by lockstep");
    LS_TRY_ASSIGN(job.runs_on, string_or_list(v, what));
    for (const auto& label : job.runs_on) LS_TRY(check_expr(v, label, "'runs-on'", false, sites));
  } else if (key == "container") {
    LS_TRY_ASSIGN(job.container, container(job, v, "'container' of " + where, false, nullptr));
  } else if (key == "services") {
    LS_TRY(expect_map(v, what));
    for (auto it = v.begin(); it != v.end(); ++it) {
      null_loc_ = loc(it->first);
      if (!it->first.IsScalar()) return error(it->first, "expected a service name in " + what);
      if (has_expression(it->first.Scalar())) return unsupported_key(it->first, what);
      ServiceDecl s;
      s.name = it->first.Scalar();
      for (const auto& other : job.services) {
        if (other.name == s.name)
          return error(it->first, "duplicate service '" + s.name + "' in " + where);
      }
      LS_TRY_ASSIGN(s.container, container(job, it->second, "service '" + s.name + "' of " + where,
                                           true, &s.ports));
      if (s.container.loc.line == 0) s.container.loc = loc(it->first);
      job.services.push_back(std::move(s));
    }
  } else if (key == "strategy") {
    LS_TRY_ASSIGN(job.strategy, strategy(job, v, "'strategy' of " + where));
    job.strategy.loc = loc(k);
  } else if (key == "env") {
    LS_TRY_ASSIGN(job.env, env_map(v, what));
    for (const auto& [name, value] : job.env) {
      LS_TRY(check_expr(v[name], value, "env '" + name + "'", false, sites));
    }
  } else if (key == "timeout-minutes") {
    LS_TRY_ASSIGN(job.timeout_minutes, number_or_expr(v, what, "'timeout-minutes'", sites));
  } else if (key == "continue-on-error") {
    LS_TRY_ASSIGN(job.continue_on_error, bool_or_expr(v, what, "'continue-on-error'", sites));
  } else if (key == "outputs") {
    LS_TRY_ASSIGN(job.outputs, string_map(v, what));
    for (const auto& [name, value] : job.outputs) {
      LS_TRY(check_expr(v[name], value, "output '" + name + "'", false, sites));
    }
  } else if (key == "defaults") {
    LS_TRY_ASSIGN(job.defaults, defaults(v, where));
  } else if (key == "steps") {
    LS_TRY(expect_seq(v, what));
    if (v.size() == 0) return error(k, what + " is empty");
    std::map<std::string, int> ids;  // id -> line
    size_t index = 0;
    for (const auto& s : v) {
      null_loc_ = loc(k);
      LS_TRY_ASSIGN(Step st, step(job, ++index, s));
      if (!st.id.empty()) {
        auto [it, fresh] = ids.emplace(st.id, st.loc.line);
        if (!fresh) {
          return error(s["id"], "duplicate step id '" + st.id + "' in " + where +
                                    " (first used at line " + std::to_string(it->second) + ")");
        }
      }
      job.steps.push_back(std::move(st));
    }
  } else if (key == "permissions" || key == "concurrency") {
    wf_.ignored.push_back({key, where, loc(k)});
  }
  return {};
}

Result<Step> WorkflowParser::step(Job& job, size_t index, const YAML::Node& n) {
  Step st;
  st.loc = loc(n);
  const std::string where = "step " + std::to_string(index) +
                            (composite_ ? " of the composite action" : " of job '" + job.id + "'");
  LS_TRY(expect_map(n, where));
  if (composite_) {
    LS_TRY(check_keys(n,
                      {"id", "name", "run", "uses", "with", "shell", "working-directory", "env",
                       "if", "continue-on-error"},
                      {}, where));
  } else {
    LS_TRY(check_keys(n,
                      {"id", "name", "run", "uses", "with", "shell", "working-directory", "env",
                       "if", "timeout-minutes", "continue-on-error"},
                      {}, where));
  }
  for (auto it = n.begin(); it != n.end(); ++it) {
    null_loc_ = loc(it->first);
    LS_TRY(step_entry(st, job, where, it->first.Scalar(), it->first, it->second));
  }
  if (st.run && st.uses) {
    return error(n, where + " has both 'run' and 'uses' (a step does one of them)");
  }
  if (!st.run && !st.uses) return error(n, where + " has neither 'run' nor 'uses'");
  if (composite_ && st.run && st.shell.empty())
    return error(
        n, where + " has 'run' without 'shell' (a composite action's run steps name their shell)");
  if (composite_ && st.uses && !st.working_directory.empty())
    return error(n["working-directory"],
                 "'working-directory' in " + where + " applies to 'run' steps only");
  return st;
}

Status WorkflowParser::step_entry(Step& st, Job& job, const std::string& where,
                                  const std::string& key, const YAML::Node& k,
                                  const YAML::Node& v) {
  const std::string what = "'" + key + "' in " + where;
  const std::string step_name = where.substr(0, where.find(" of "));  // "step 2"
  const std::string short_where = "'" + key + "' of " + step_name;
  auto* sites = &job.expressions;
  (void)k;
  if (key == "id") {
    LS_TRY_ASSIGN(st.id, scalar(v, what));
    if (!is_valid_id(st.id)) {
      return error(v, "invalid step id '" + st.id +
                          "': a step id starts with a letter or '_' and holds only letters, "
                          "digits, '-' and '_'");
    }
  } else if (key == "name") {
    LS_TRY_ASSIGN(st.name, scalar(v, what));
    LS_TRY(check_expr(v, st.name, short_where, false, sites));
  } else if (key == "run") {
    LS_TRY_ASSIGN(st.run, scalar(v, what));
    LS_TRY(check_expr(v, *st.run, short_where, false, sites));
  } else if (key == "uses") {
    LS_TRY_ASSIGN(st.uses, scalar(v, what));
    st.uses_loc = loc(v);
    if (has_expression(*st.uses))
      return error(
          v, "'uses' cannot hold an expression (GitHub resolves actions before the job runs)");
    auto ref = parse_action_ref(*st.uses);
    if (!ref) return error(v, std::string(ref.error().message()));
  } else if (key == "with") {
    LS_TRY_ASSIGN(st.with, string_map(v, what));
    for (const auto& [name, value] : st.with) {
      LS_TRY(check_expr(v[name], value, "input '" + name + "' of " + step_name, false, sites));
    }
  } else if (key == "shell") {
    LS_TRY_ASSIGN(st.shell, scalar(v, what));
  } else if (key == "working-directory") {
    LS_TRY_ASSIGN(st.working_directory, scalar(v, what));
    LS_TRY(check_expr(v, st.working_directory, short_where, false, sites));
  } else if (key == "env") {
    LS_TRY_ASSIGN(st.env, env_map(v, what));
    for (const auto& [name, value] : st.env) {
      LS_TRY(check_expr(v[name], value, "env '" + name + "' of " + step_name, false, sites));
    }
  } else if (key == "if") {
    LS_TRY_ASSIGN(st.if_expr, scalar(v, what));
    LS_TRY(check_expr(v, st.if_expr, short_where, true, sites));
  } else if (key == "timeout-minutes") {
    LS_TRY_ASSIGN(st.timeout_minutes, number_or_expr(v, what, short_where, sites));
  } else if (key == "continue-on-error") {
    LS_TRY_ASSIGN(st.continue_on_error, bool_or_expr(v, what, short_where, sites));
  }
  return {};
}

Result<ContainerDecl> WorkflowParser::container(Job& job, const YAML::Node& n,
                                                const std::string& where, bool service,
                                                std::vector<std::string>* ports) {
  ContainerDecl c;
  c.loc = loc(n);
  auto* sites = &job.expressions;
  // "'container'" or "service 'db'": where[] without " of job '...'".
  const std::string place = where.substr(0, where.rfind(" of job"));
  if (n.IsScalar() && !service) {
    c.image = n.Scalar();
    LS_TRY(check_expr(n, c.image, "'image' of " + place, false, sites));
    return c;
  }
  LS_TRY(expect_map(n, where));
  Keys known = {"image", "env", "options", "volumes"};
  Keys unsupported = {"credentials"};
  if (service) {
    known.push_back("ports");
  } else {
    unsupported.push_back("ports");
  }
  LS_TRY(check_keys(n, known, unsupported, where));
  for (auto it = n.begin(); it != n.end(); ++it) {
    null_loc_ = loc(it->first);
    const std::string key = it->first.Scalar();
    const YAML::Node v = it->second;
    const std::string what = "'" + key + "' in " + where;
    if (key == "image") {
      LS_TRY_ASSIGN(c.image, scalar(v, what));
      LS_TRY(check_expr(v, c.image, "'image' of " + place, false, sites));
    } else if (key == "env") {
      LS_TRY_ASSIGN(c.env, env_map(v, what));
      for (const auto& [name, value] : c.env) {
        LS_TRY(check_expr(v[name], value, "env '" + name + "' of " + place, false, sites));
      }
    } else if (key == "options") {
      LS_TRY_ASSIGN(c.options, scalar(v, what));
      if (has_expression(c.options)) {
        LS_TRY(check_expr(v, c.options, "'options' of " + place, false, sites));
      } else if (auto parsed = parse_container_options(c.options); !parsed) {
        return error(v, parsed.error().message());
      }
    } else if (key == "volumes" || (key == "ports" && ports)) {
      LS_TRY_ASSIGN(auto list, string_list(v, what));
      size_t i = 0;
      for (const auto& e : v) {
        LS_TRY(check_expr(e, list[i++], "'" + key + "' of " + place, false, sites));
      }
      (key == "volumes" ? c.volumes : *ports) = std::move(list);
    }
  }
  if (!n["image"]) return error(n, where + " has no 'image'");
  return c;
}

Result<Strategy> WorkflowParser::strategy(Job& job, const YAML::Node& n, const std::string& where) {
  Strategy s;
  LS_TRY(expect_map(n, where));
  LS_TRY(check_keys(n, {"matrix", "fail-fast", "max-parallel"}, {}, where));
  for (auto it = n.begin(); it != n.end(); ++it) {
    null_loc_ = loc(it->first);
    const std::string key = it->first.Scalar();
    const YAML::Node v = it->second;
    const std::string what = "'" + key + "' in " + where;
    if (key == "matrix") {
      s.matrix_loc = loc(v);
      // Matrix expressions are evaluated before the matrix exists: flag them
      // so that they are not checked for matrix keys.
      const size_t first_site = job.expressions.size();
      LS_TRY_ASSIGN(s.matrix, matrix(job, v, "'matrix' of job '" + job.id + "'"));
      for (size_t i = first_site; i < job.expressions.size(); ++i) {
        job.expressions[i].in_matrix = true;
      }
    } else if (key == "fail-fast") {
      LS_TRY_ASSIGN(s.fail_fast, bool_or_expr(v, what, "'fail-fast'", &job.expressions));
    } else if (key == "max-parallel") {
      LS_TRY_ASSIGN(std::string text, scalar(v, what));
      int value = 0;
      bool ok = !text.empty() && text.size() < 9 &&
                text.find_first_not_of("0123456789") == std::string::npos &&
                (value = std::stoi(text)) > 0;
      if (!ok) return error(v, "expected a positive integer for " + what + ", got '" + text + "'");
      s.max_parallel = value;
    }
  }
  return s;
}

Result<OrderedValue> WorkflowParser::matrix(Job& job, const YAML::Node& n,
                                            const std::string& where) {
  auto* sites = &job.expressions;
  if (n.IsScalar()) {
    if (!has_expression(n.Scalar())) {
      return error(n, "expected a mapping or an expression for " + where + ", got a string");
    }
    LS_TRY(check_expr(n, n.Scalar(), "'matrix'", false, sites));
    return OrderedValue(n.Scalar());
  }
  LS_TRY(expect_map(n, where));
  if (n.size() == 0) return error(n, where + " is empty");
  OrderedValue out = OrderedValue::object();
  std::set<std::string> seen;
  for (auto it = n.begin(); it != n.end(); ++it) {
    null_loc_ = loc(it->first);
    if (!it->first.IsScalar()) return error(it->first, "expected a string key in " + where);
    const std::string key = it->first.Scalar();
    if (!seen.insert(key).second)
      return error(it->first, "duplicate key '" + key + "' in " + where);
    // An axis named by an expression: evaluated with the matrix.
    LS_TRY(check_expr(it->first, key, "a key of " + where, false, sites));
    const YAML::Node v = it->second;
    const bool special = key == "include" || key == "exclude";
    const std::string what = special ? "'" + key + "' of " + where : "matrix axis '" + key + "'";
    if (v.IsScalar() && has_expression(v.Scalar())) {
      LS_TRY(check_expr(v, v.Scalar(), what, false, sites));
      out[key] = v.Scalar();
      continue;
    }
    LS_TRY(expect_seq(v, what));
    if (special) {
      for (const auto& e : v) {
        if (!(e.IsMap() || (e.IsScalar() && has_expression(e.Scalar())))) {
          return error(e, "expected mappings in " + what + ", got " + kind_of(e));
        }
      }
    } else if (v.size() == 0) {
      return error(it->first, what + " has no values");
    }
    LS_TRY_ASSIGN(out[key], to_value(v, what, sites));
  }
  return out;
}

}  // namespace lockstep::pipeline::detail
