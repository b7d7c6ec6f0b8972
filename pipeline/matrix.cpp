#include "pipeline/matrix.hpp"

#include <algorithm>
#include <set>

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

// A scalar as an expression value, for GitHub's loose equality.
Value scalar_value(const OrderedValue& v) {
  switch (v.type()) {
    case OrderedValue::value_t::boolean:
      return v.get<bool>();
    case OrderedValue::value_t::number_integer:
      return v.get<int64_t>();
    case OrderedValue::value_t::number_unsigned:
      return v.get<uint64_t>();
    case OrderedValue::value_t::number_float:
      return v.get<double>();
    case OrderedValue::value_t::string:
      return v.get<std::string>();
    default:
      return nullptr;
  }
}

// The expression a matrix evaluation failed in (its text as written), so
// that the error can point at it.
struct Failed {
  std::string text;
};

// Evaluates a string that may be "${{ expr }}" (value kept with its type),
// text with embedded expressions (a string), or plain text. fromJSON(...) at
// the top is parsed keeping the key order of the JSON text, since the order
// of matrix keys is what orders the axes and the display names.
Result<OrderedValue> evaluate_ordered(const std::string& text, const EvalContext& ctx,
                                      Failed* failed = nullptr) {
  if (!has_expression(text)) return OrderedValue(text);
  auto note = [&](Error e) {
    if (failed && failed->text.empty()) failed->text = text;
    return fail(std::move(e));
  };
  auto parts = expr::split_template(text);
  if (!parts) return note(std::move(parts.error()));
  bool whole = parts->size() == 1 && (*parts)[0].is_expression;
  if (!whole) {
    auto s = interpolate(text, ctx);
    if (!s) return note(std::move(s.error()));
    return OrderedValue(std::move(*s));
  }
  std::string_view body = (*parts)[0].text;
  auto root = expr::parse(body);
  if (root && (*root)->kind == expr::NodeKind::kCall && (*root)->name == "fromjson") {
    auto arg = expr::eval(*(*root)->kids[0], ctx);
    if (!arg) return note(std::move(arg.error()));
    std::string json = to_display_string(*arg);
    OrderedValue parsed = OrderedValue::parse(json, nullptr, false);
    if (parsed.is_discarded()) {
      std::string shown = json.substr(0, 40) + (json.size() > 40 ? "..." : "");
      return note(Error("fromJSON(): '" + shown + "' is not valid JSON", 0, ErrorKind::kWorkflow));
    }
    return parsed;
  }
  auto v = evaluate(body, ctx);
  if (!v) return note(std::move(v.error()));
  return to_ordered(*v);
}

// A mapping key: itself, or the string its expression evaluates to (a
// number or boolean as text); a sequence, a mapping or nothing is an error.
Result<std::string> evaluate_key(const std::string& key, const EvalContext& ctx, Failed* failed) {
  if (!has_expression(key)) return key;
  LS_TRY_ASSIGN(OrderedValue v, evaluate_ordered(key, ctx, failed));
  auto refuse = [&](const std::string& why) {
    if (failed && failed->text.empty()) failed->text = key;
    return bad("the key '" + key + "' " + why);
  };
  if (v.is_array() || v.is_object())
    return refuse("evaluates to a " + std::string(v.is_array() ? "sequence" : "mapping") +
                  "; a key is a string");
  std::string s = to_display_string(scalar_value(v));
  if (s.empty()) return refuse("evaluates to an empty string");
  return s;
}

// Expressions inside values (e.g. an axis element "${{ github.ref }}") and
// keys, as GitHub's template reader evaluates them: a key that holds an
// expression becomes the string it evaluates to; a sequence item that
// evaluates to a sequence is spliced into its parent sequence.
Result<OrderedValue> evaluate_deep(const OrderedValue& v, const EvalContext& ctx,
                                   Failed* failed = nullptr) {
  if (v.is_string()) return evaluate_ordered(v.get<std::string>(), ctx, failed);
  if (v.is_array()) {
    OrderedValue out = OrderedValue::array();
    for (const auto& e : v) {
      LS_TRY_ASSIGN(OrderedValue item, evaluate_deep(e, ctx, failed));
      if (e.is_string() && item.is_array())
        for (auto& x : item) out.push_back(std::move(x));
      else
        out.push_back(std::move(item));
    }
    return out;
  }
  if (v.is_object()) {
    OrderedValue out = OrderedValue::object();
    for (auto it = v.begin(); it != v.end(); ++it) {
      LS_TRY_ASSIGN(std::string key, evaluate_key(it.key(), ctx, failed));
      if (out.contains(key)) {
        if (failed && failed->text.empty()) failed->text = it.key();
        return bad("duplicate key '" + key + "' (from '" + it.key() + "')");
      }
      LS_TRY_ASSIGN(out[key], evaluate_deep(it.value(), ctx, failed));
    }
    return out;
  }
  return v;
}

// An include/exclude filter matches as GitHub evaluates it: every leaf of the
// filter value must equal (expression ==: loose, strings ignoring case) the
// value at the same path of the combination; a missing path is null.
bool leaves_match(const OrderedValue& filter, const OrderedValue* actual) {
  if (filter.is_object()) {
    for (auto it = filter.begin(); it != filter.end(); ++it) {
      const OrderedValue* sub = nullptr;
      if (actual && actual->is_object() && actual->contains(it.key())) sub = &(*actual)[it.key()];
      if (!leaves_match(it.value(), sub)) return false;
    }
    return true;
  }
  if (filter.is_array()) {
    for (size_t i = 0; i < filter.size(); ++i) {
      const OrderedValue* sub =
          actual && actual->is_array() && i < actual->size() ? &(*actual)[i] : nullptr;
      if (!leaves_match(filter[i], sub)) return false;
    }
    return true;
  }
  Value other =
      actual && !actual->is_object() && !actual->is_array() ? scalar_value(*actual) : Value();
  if (actual && (actual->is_object() || actual->is_array())) return false;
  return loose_equal(scalar_value(filter), other);
}

// The display-name segments of a value: its scalar leaves, in order, as
// strings; nulls and empty strings are left out (as GitHub does).
void name_segments(const OrderedValue& v, std::vector<std::string>& out) {
  if (v.is_object() || v.is_array()) {
    for (const auto& e : v) name_segments(e, out);
    return;
  }
  if (v.is_null()) return;
  std::string s = to_display_string(scalar_value(v));
  if (!s.empty()) out.push_back(std::move(s));
}

std::string join_keys(const std::vector<std::string>& keys) {
  std::string out;
  for (const auto& k : keys) out += (out.empty() ? "" : ", ") + k;
  return out;
}

// The combinations, and for each the values that name it: a combination of
// the product is named by its axis values only (values an include adds do not
// show in the name), a combination made by an include by all its values.
struct Expansion {
  std::vector<OrderedValue> combinations;
  std::vector<OrderedValue> name_values;
};

Result<Expansion> expand(const OrderedValue& declared, const EvalContext& ctx,
                         std::vector<std::string>* warnings, Failed* failed = nullptr) {
  Expansion out;
  if (declared.is_null()) {
    out.combinations.push_back(OrderedValue::object());
    out.name_values.push_back(OrderedValue::object());
    return out;
  }
  OrderedValue matrix = declared;
  if (matrix.is_string()) {
    LS_TRY_ASSIGN(matrix, evaluate_ordered(matrix.get<std::string>(), ctx, failed));
  }
  if (!matrix.is_object()) {
    return bad("the matrix must be a mapping, got " + std::string(matrix.type_name()));
  }
  std::vector<std::string> axes;
  std::vector<OrderedValue> axis_values;
  OrderedValue include = OrderedValue::array(), exclude = OrderedValue::array();
  std::set<std::string> seen_keys;
  for (auto it = matrix.begin(); it != matrix.end(); ++it) {
    LS_TRY_ASSIGN(std::string key, evaluate_key(it.key(), ctx, failed));
    if (!seen_keys.insert(key).second) {
      if (failed && failed->text.empty()) failed->text = it.key();
      return bad("duplicate matrix key '" + key + "' (from '" + it.key() + "')");
    }
    LS_TRY_ASSIGN(OrderedValue v, evaluate_deep(it.value(), ctx, failed));
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
        if (e.empty()) return bad("an entry of matrix '" + key + "' is empty");
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
  auto is_axis = [&](const std::string& k) {
    return std::find(axes.begin(), axes.end(), k) != axes.end();
  };
  for (const auto& ex : exclude) {
    for (auto it = ex.begin(); it != ex.end(); ++it) {
      if (!is_axis(it.key())) {
        return bad("matrix exclude key '" + it.key() +
                   "' is not an axis (the matrix has: " + join_keys(axes) + ")");
      }
    }
  }

  // Cartesian product, first axis slowest; exclude drops a combination that
  // matches every value of an entry.
  std::vector<OrderedValue> product;
  if (!axes.empty()) {
    std::vector<size_t> idx(axes.size(), 0);
    bool done = false;
    while (!done) {
      OrderedValue c = OrderedValue::object();
      for (size_t a = 0; a < axes.size(); ++a) c[axes[a]] = axis_values[a][idx[a]];
      bool excluded = std::any_of(exclude.begin(), exclude.end(),
                                  [&](const OrderedValue& ex) { return leaves_match(ex, &c); });
      if (!excluded) product.push_back(std::move(c));
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

  // include: an entry's axis keys are its filter, the others its extras. The
  // extras of every matching entry are added in entry order (later ones
  // overwrite earlier extras, never axis values); an entry that matches no
  // combination becomes one, axis keys first.
  std::vector<OrderedValue> filters, extras;
  for (const auto& in : include) {
    OrderedValue f = OrderedValue::object(), x = OrderedValue::object();
    for (auto it = in.begin(); it != in.end(); ++it)
      (is_axis(it.key()) ? f : x)[it.key()] = it.value();
    filters.push_back(std::move(f));
    extras.push_back(std::move(x));
  }
  std::vector<bool> matched(filters.size(), false);
  for (auto& c : product) {
    OrderedValue named = c;
    for (size_t i = 0; i < filters.size(); ++i) {
      if (!leaves_match(filters[i], &c)) continue;
      matched[i] = true;
      for (auto it = extras[i].begin(); it != extras[i].end(); ++it) c[it.key()] = it.value();
    }
    out.combinations.push_back(std::move(c));
    out.name_values.push_back(std::move(named));
  }
  for (size_t i = 0; i < filters.size(); ++i) {
    if (matched[i]) continue;
    OrderedValue c = filters[i];
    for (auto it = extras[i].begin(); it != extras[i].end(); ++it) c[it.key()] = it.value();
    out.name_values.push_back(c);
    out.combinations.push_back(std::move(c));
  }

  if (out.combinations.empty()) return bad("the matrix has no combinations left after exclude");
  if (out.combinations.size() > kGitHubMatrixCap && warnings) {
    warnings->push_back("the matrix expands to " + std::to_string(out.combinations.size()) +
                        " jobs; GitHub refuses more than 256, lockstep runs them all");
  }
  return out;
}

}  // namespace

Result<std::vector<OrderedValue>> expand_matrix(const OrderedValue& declared,
                                                const EvalContext& ctx,
                                                std::vector<std::string>* warnings) {
  LS_TRY_ASSIGN(Expansion e, expand(declared, ctx, warnings));
  return std::move(e.combinations);
}

Result<std::string> display_name(const Job& job, const OrderedValue& combination,
                                 const OrderedValue& name_values, const EvalContext& ctx) {
  if (has_expression(job.name)) {
    EvalContext with_matrix = ctx;
    with_matrix.contexts["matrix"] = Value::parse(combination.dump());
    return interpolate(job.name, with_matrix);
  }
  std::string base = job.name.empty() ? job.id : job.name;
  std::vector<std::string> segments;
  name_segments(name_values, segments);
  if (segments.empty()) return base;
  std::string joined;
  for (const auto& seg : segments) joined += (joined.empty() ? "" : ", ") + seg;
  return base + " (" + joined + ")";
}

Result<std::string> display_name(const Job& job, const OrderedValue& combination,
                                 const EvalContext& ctx) {
  return display_name(job, combination, combination, ctx);
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
  Failed failed;
  auto combos = expand(job.strategy.matrix, ctx, &local_warnings, &failed);
  if (!combos) {
    SourceLoc at = job.strategy.matrix_loc.line ? job.strategy.matrix_loc : job.loc;
    // At the expression (value or key) that failed, when there was one.
    for (const ExprSite& site : job.expressions)
      if (site.in_matrix && !failed.text.empty() && site.text == failed.text) {
        at = site.loc;
        break;
      }
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
  LS_TRY(check_matrix_keys(wf, job, combos->combinations));
  std::vector<JobInstance> out;
  for (size_t i = 0; i < combos->combinations.size(); ++i) {
    OrderedValue& c = combos->combinations[i];
    JobInstance inst;
    inst.job = &job;
    auto name = display_name(job, c, combos->name_values[i], ctx);
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
