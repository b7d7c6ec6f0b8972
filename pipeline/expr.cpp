// The public expression API: evaluate, interpolate, evaluate_if and the
// syntax checks used at parse time.
#include "pipeline/expr.hpp"

#include "common/utf8.hpp"
#include "pipeline/expr_ast.hpp"
#include "pipeline/expr_eval.hpp"

namespace lockstep::pipeline {
namespace {

// Quotes at most kQuoteMax characters of the expression: messages stay one
// readable line.
constexpr size_t kQuoteMax = 100;

Error invalid(std::string_view text, const Error& why) {
  std::string quoted(utf8_prefix(text, kQuoteMax));
  if (text.size() > kQuoteMax) quoted += "...";
  return Error("invalid expression '" + quoted + "': " + why.message(), 0, ErrorKind::kWorkflow);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() &&
         (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

Result<std::unique_ptr<expr::Node>> parse_checked(std::string_view text) {
  // Positions in messages count from the first non-blank character, as the
  // message quotes the trimmed text.
  text = trim(text);
  auto root = expr::parse(text);
  if (!root) return fail(invalid(text, root.error()));
  return root;
}

// An if: written as exactly one ${{ }} is that expression; one without ${{ is
// an expression as is. Anything else (text around ${{ }}) is a template whose
// string result decides. Returns the expression text, or nullopt for the
// template case.
Result<std::optional<std::string_view>> condition_expression(std::string_view cond) {
  std::string_view t = trim(cond);
  if (!has_expression(t)) return std::optional<std::string_view>(t);
  LS_TRY_ASSIGN(auto parts, expr::split_template(t));
  if (parts.size() == 1 && parts[0].is_expression) {
    return std::optional<std::string_view>(parts[0].text);
  }
  return std::optional<std::string_view>();
}

}  // namespace

bool has_expression(std::string_view text) {
  return text.find("${{") != std::string_view::npos;
}

bool is_truthy(const Value& v) {
  return expr::is_truthy_value(v);
}

std::string to_display_string(const Value& v) {
  switch (v.type()) {
    case Value::value_t::null:
      return "";
    case Value::value_t::boolean:
      return v.get<bool>() ? "true" : "false";
    case Value::value_t::number_integer:
      return std::to_string(v.get<int64_t>());
    case Value::value_t::number_unsigned:
      return std::to_string(v.get<uint64_t>());
    case Value::value_t::number_float:
      return expr::number_to_string(v.get<double>());
    case Value::value_t::string:
      return v.get<std::string>();
    case Value::value_t::array:
      return "Array";
    default:
      return "Object";
  }
}

bool loose_equal(const Value& a, const Value& b) {
  if ((a.is_array() || a.is_object()) && a.type() == b.type()) return a == b;
  return expr::refs_loose_equal(expr::Ref::own(a), expr::Ref::own(b));
}

Result<Value> evaluate(std::string_view text, const EvalContext& ctx) {
  LS_TRY_ASSIGN(auto root, parse_checked(text));
  return expr::eval(*root, ctx);
}

Result<std::string> interpolate(std::string_view text, const EvalContext& ctx) {
  if (!has_expression(text)) return std::string(text);
  LS_TRY_ASSIGN(auto parts, expr::split_template(text));
  std::string out;
  for (const auto& part : parts) {
    if (!part.is_expression) {
      out += part.text;
      continue;
    }
    LS_TRY_ASSIGN(Value v, evaluate(part.text, ctx));
    out += to_display_string(v);
  }
  return out;
}

Result<bool> evaluate_if(std::string_view cond, const EvalContext& ctx) {
  LS_TRY_ASSIGN(auto expression, condition_expression(cond));
  if (!expression) {
    LS_TRY_ASSIGN(std::string s, interpolate(trim(cond), ctx));
    return ctx.status == JobStatus::kSuccess && is_truthy(Value(s));
  }
  if (expression->empty()) return ctx.status == JobStatus::kSuccess;
  LS_TRY_ASSIGN(auto root, parse_checked(*expression));
  if (!expr::calls_status_function(*root) && ctx.status != JobStatus::kSuccess) return false;
  LS_TRY_ASSIGN(Value v, expr::eval(*root, ctx));
  return is_truthy(v);
}

Status check_syntax(std::string_view text) {
  LS_TRY(parse_checked(text));
  return {};
}

Status check_template(std::string_view text) {
  LS_TRY_ASSIGN(auto parts, expr::split_template(text));
  for (const auto& part : parts) {
    if (part.is_expression) LS_TRY(parse_checked(part.text));
  }
  return {};
}

Status check_condition(std::string_view cond) {
  LS_TRY_ASSIGN(auto expression, condition_expression(cond));
  if (!expression) return check_template(trim(cond));
  if (expression->empty()) return {};
  return check_syntax(*expression);
}

namespace {

// Parses every expression of a template (or of an if: condition) and hands
// each tree to `visit`.
template <class F>
Status for_each_expression(std::string_view text, bool is_condition, F visit) {
  std::vector<std::string_view> exprs;
  std::optional<std::string_view> cond_expr;
  if (is_condition) {
    LS_TRY_ASSIGN(cond_expr, condition_expression(text));
  }
  if (cond_expr) {
    if (!cond_expr->empty()) exprs.push_back(*cond_expr);
  } else {
    LS_TRY_ASSIGN(auto parts, expr::split_template(trim(text)));
    for (const auto& p : parts) {
      if (p.is_expression) exprs.push_back(p.text);
    }
  }
  for (std::string_view e : exprs) {
    LS_TRY_ASSIGN(auto root, parse_checked(e));
    visit(*root);
  }
  return {};
}

}  // namespace

Result<std::vector<std::string>> matrix_keys_used(std::string_view text, bool is_condition) {
  std::vector<std::string> keys;
  LS_TRY(for_each_expression(
      text, is_condition, [&](const expr::Node& root) { expr::collect_matrix_keys(root, keys); }));
  return keys;
}

Result<std::vector<std::string>> contexts_used(std::string_view text, bool is_condition) {
  std::vector<std::string> names;
  LS_TRY(for_each_expression(text, is_condition,
                             [&](const expr::Node& root) { expr::collect_contexts(root, names); }));
  return names;
}

}  // namespace lockstep::pipeline
