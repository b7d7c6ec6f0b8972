#include "pipeline/matrix.hpp"

#include <algorithm>

#include "pipeline/diagnostic.hpp"
#include "pipeline/expr_ast.hpp"

namespace lockstep::pipeline {
namespace {

constexpr size_t kGitHubMatrixCap = 256;

tl::unexpected<Error> bad(std::string message) {
  return fail(std::move(message), ErrorKind::kWorkflow);
}

OrderedValue to_ordered(const Value& v) {
  return OrderedValue::parse(v.dump());
}

// Evaluates a string that may be "${{ expr }}" (value kept with its type),
// text with embedded expressions (a string), or plain text. fromJSON(...) at
// the top is parsed keeping the key order of the JSON text, since the order
// of matrix keys is what orders the axes and the display names.
Result<OrderedValue> evaluate_ordered(const std::string& text, const EvalContext& ctx) {
  if (!has_expression(text)) return OrderedValue(text);
  LS_TRY_ASSIGN(auto parts, expr::split_template(text));
  bool whole = parts.size() == 1 && parts[0].is_expression;
  if (!whole) {
    LS_TRY_ASSIGN(std::string s, interpolate(text, ctx));
    return OrderedValue(std::move(s));
  }
  std::string_view body = parts[0].text;
  auto root = expr::parse(body);
  if (root && (*root)->kind == expr::NodeKind::kCall && (*root)->name == "fromjson") {
    LS_TRY_ASSIGN(Value arg, expr::eval(*(*root)->kids[0], ctx));
    std::string json = to_display_string(arg);
    OrderedValue parsed = OrderedValue::parse(json, nullptr, false);
    if (parsed.is_discarded()) {
      std::string shown = json.substr(0, 40) + (json.size() > 40 ? "..." : "");
      return bad("fromJSON(): '" + shown + "' is not valid JSON");
    }
    return parsed;
  }
  LS_TRY_ASSIGN(Value v, evaluate(body, ctx));
  return to_ordered(v);
}

// Expressions inside values (e.g. an axis element "${{ github.ref }}").
Result<OrderedValue> evaluate_deep(const OrderedValue& v, const EvalContext& ctx) {
  if (v.is_string()) return evaluate_ordered(v.get<std::string>(), ctx);
  if (v.is_array() || v.is_object()) {
    OrderedValue out = v;
    for (auto it = out.begin(); it != out.end(); ++it) {
      LS_TRY_ASSIGN(*it, evaluate_deep(*it, ctx));
    }
    return out;
  }
  return v;
}

// Values of the matrix compare as GitHub does: strings ignoring case,
// numbers by value, the rest structurally.
bool same_value(const OrderedValue& a, const OrderedValue& b) {
  if (a.is_string() && b.is_string()) {
    return expr::iequals(a.get_ref<const std::string&>(), b.get_ref<const std::string&>());
  }
  return a == b;
}

std::string join_keys(const std::vector<std::string>& keys) {
  std::string out;
  for (const auto& k : keys) out += (out.empty() ? "" : ", ") + k;
  return out;
}

}  // namespace

Result<std::vector<OrderedValue>> expand_matrix(const OrderedValue& declared,
                                                const EvalContext& ctx,
                                                std::vector<std::string>* warnings) {
  if (declared.is_null()) return std::vector<OrderedValue>{OrderedValue::object()};
  OrderedValue matrix = declared;
  if (matrix.is_string()) {
    LS_TRY_ASSIGN(matrix, evaluate_ordered(matrix.get<std::string>(), ctx));
  }
  if (!matrix.is_object()) {
    return bad("the matrix must be a mapping, got " + std::string(matrix.type_name()));
  }
  std::vector<std::string> axes;
  std::vector<OrderedValue> axis_values;
  OrderedValue include = OrderedValue::array(), exclude = OrderedValue::array();
  for (auto it = matrix.begin(); it != matrix.end(); ++it) {
    const std::string& key = it.key();
    LS_TRY_ASSIGN(OrderedValue v, evaluate_deep(it.value(), ctx));
    if (key == "include" || key == "exclude") {
      if (!v.is_array()) {
        return bad("matrix '" + key + "' must be a sequence of mappings, got " +
                   std::string(v.type_name()));
      }
      for (const auto& e : v) {
        if (!e.is_object()) {
          return bad("matrix '" + key + "' must be a sequence of mappings, got a " +
                     std::string(e.type_name()) + " in it");
        }
      }
      (key == "include" ? include : exclude) = std::move(v);
      continue;
    }
    if (!v.is_array()) {
      return bad("matrix axis '" + key + "' must be a sequence, got " + std::string(v.type_name()));
    }
    if (v.empty()) return bad("matrix axis '" + key + "' has no values");
    axes.push_back(key);
    axis_values.push_back(std::move(v));
  }
  if (axes.empty() && include.empty()) return bad("the matrix has no axes and no include");

  // Cartesian product, first axis slowest.
  std::vector<OrderedValue> combos;
  if (!axes.empty()) {
    std::vector<size_t> idx(axes.size(), 0);
    bool done = false;
    while (!done) {
      OrderedValue c = OrderedValue::object();
      for (size_t a = 0; a < axes.size(); ++a) c[axes[a]] = axis_values[a][idx[a]];
      combos.push_back(std::move(c));
      // Odometer step: the last axis varies fastest.
      done = true;
      for (size_t a = axes.size(); a-- > 0;) {
        if (++idx[a] < axis_values[a].size()) {
          done = false;
          break;
        }
        idx[a] = 0;
      }
    }
  }

  for (const auto& ex : exclude) {
    for (auto it = ex.begin(); it != ex.end(); ++it) {
      if (std::find(axes.begin(), axes.end(), it.key()) == axes.end()) {
        return bad("matrix exclude key '" + it.key() +
                   "' is not an axis (the matrix has: " + join_keys(axes) + ")");
      }
    }
    std::erase_if(combos, [&](const OrderedValue& c) {
      for (auto it = ex.begin(); it != ex.end(); ++it) {
        if (!same_value(c[it.key()], it.value())) return false;
      }
      return true;
    });
  }

  const size_t originals = combos.size();
  for (const auto& in : include) {
    bool matched = false;
    for (size_t i = 0; i < originals; ++i) {
      OrderedValue& c = combos[i];
      bool fits = true;
      for (auto it = in.begin(); it != in.end() && fits; ++it) {
        bool is_axis = std::find(axes.begin(), axes.end(), it.key()) != axes.end();
        if (is_axis && !same_value(c[it.key()], it.value())) fits = false;
      }
      if (!fits) continue;
      matched = true;
      for (auto it = in.begin(); it != in.end(); ++it) {
        if (std::find(axes.begin(), axes.end(), it.key()) == axes.end()) c[it.key()] = it.value();
      }
    }
    if (!matched) combos.push_back(in);
  }

  if (combos.empty()) return bad("the matrix has no combinations left after exclude");
  if (combos.size() > kGitHubMatrixCap && warnings) {
    warnings->push_back("the matrix expands to " + std::to_string(combos.size()) +
                        " jobs; GitHub refuses more than 256, lockstep runs them all");
  }
  return combos;
}

Result<std::string> display_name(const Job& job, const OrderedValue& combination,
                                 const EvalContext& ctx) {
  std::string base = job.name.empty() ? job.id : job.name;
  if (has_expression(job.name)) {
    EvalContext with_matrix = ctx;
    with_matrix.contexts["matrix"] = Value::parse(combination.dump());
    return interpolate(job.name, with_matrix);
  }
  if (combination.empty()) return base;
  std::string values;
  for (const auto& v : combination) {
    values += values.empty() ? "" : ", ";
    values += v.is_array() || v.is_object() ? v.dump() : to_display_string(Value::parse(v.dump()));
  }
  return base + " (" + values + ")";
}

Status check_matrix_keys(const Workflow& wf, const Job& job,
                         const std::vector<OrderedValue>& combinations) {
  std::vector<std::string> defined;
  for (const auto& c : combinations) {
    for (auto it = c.begin(); it != c.end(); ++it) {
      if (std::find(defined.begin(), defined.end(), it.key()) == defined.end()) {
        defined.push_back(it.key());
      }
    }
  }
  for (const ExprSite& site : job.expressions) {
    // The matrix's own expressions are evaluated before there is a matrix.
    if (site.in_matrix) continue;
    LS_TRY_ASSIGN(auto used, matrix_keys_used(site.text, site.condition));
    for (const std::string& key : used) {
      bool ok = std::any_of(defined.begin(), defined.end(),
                            [&](const std::string& d) { return expr::iequals(d, key); });
      if (ok) continue;
      std::string has = defined.empty() ? "job '" + job.id + "' has no matrix"
                                        : "the matrix has: " + join_keys(defined);
      return fail(workflow_error(wf.file, wf.source, site.loc,
                                 "undefined matrix key '" + key + "' (" + has + ")"));
    }
  }
  return {};
}

bool matrix_depends_on_needs(const Job& job) {
  for (const ExprSite& site : job.expressions) {
    if (!site.in_matrix) continue;
    auto used = contexts_used(site.text, site.condition);
    if (used && std::find(used->begin(), used->end(), "needs") != used->end()) return true;
  }
  return false;
}

Result<std::vector<JobInstance>> expand_job(const Workflow& wf, const Job& job,
                                            const EvalContext& ctx,
                                            std::vector<std::string>* warnings) {
  std::vector<std::string> local_warnings;
  auto combos = expand_matrix(job.strategy.matrix, ctx, &local_warnings);
  if (!combos) {
    SourceLoc at = job.strategy.matrix_loc.line ? job.strategy.matrix_loc : job.loc;
    // A matrix made from needs outputs cannot be known before those jobs ran;
    // say so, since the evaluation error alone ("'' is not valid JSON") puzzles.
    std::string which =
        matrix_depends_on_needs(job)
            ? "job '" + job.id + "', whose matrix reads outputs of the jobs it needs"
            : "job '" + job.id + "'";
    return fail(
        workflow_error(wf.file, wf.source, at, combos.error().message() + " (" + which + ")"));
  }
  if (warnings) {
    for (const auto& w : local_warnings) warnings->push_back(w + " (job '" + job.id + "')");
  }
  LS_TRY(check_matrix_keys(wf, job, *combos));
  std::vector<JobInstance> out;
  for (auto& c : *combos) {
    JobInstance inst;
    inst.job = &job;
    auto name = display_name(job, c, ctx);
    if (!name) {
      SourceLoc at = job.loc;
      for (const auto& site : job.expressions) {
        if (site.what == "'name'") at = site.loc;
      }
      return fail(workflow_error(wf.file, wf.source, at, name.error().message()));
    }
    inst.display_name = std::move(*name);
    inst.matrix = std::move(c);
    out.push_back(std::move(inst));
  }
  return out;
}

Result<std::vector<JobInstance>> expand_jobs(const Workflow& wf, const EvalContext& ctx,
                                             std::vector<std::string>* warnings) {
  std::vector<JobInstance> out;
  for (const Job& job : wf.jobs) {
    LS_TRY_ASSIGN(auto instances, expand_job(wf, job, ctx, warnings));
    for (auto& i : instances) out.push_back(std::move(i));
  }
  return out;
}

}  // namespace lockstep::pipeline
