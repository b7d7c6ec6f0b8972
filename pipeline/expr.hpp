#pragma once
// GitHub Actions expressions (${{ ... }}): lexer, parser and evaluator with
// GitHub's literals, operators, precedence, loose equality and coercion rules,
// property/index access, object filters (.*) and built-in functions.
//
// Precedence, tightest first: ( ) [ ] . ! then < <= > >= then == != then &&
// then ||. Comparison rules (GitHub's "loose equality"): values of different
// types are coerced to numbers (null -> 0, false/true -> 0/1, a string is
// parsed as a JSON number, '' -> 0, anything else NaN; arrays and objects ->
// NaN); strings compare case-insensitively; arrays and objects are equal only
// when they are the same instance; NaN equals nothing. && and || return one of
// their operands, not a boolean.
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "pipeline/model.hpp"

namespace lockstep::pipeline {

// What success()/failure()/cancelled() see: the status of the job so far (for
// a step's if) or of the jobs it needs (for a job's if).
enum class JobStatus { kSuccess, kFailure, kCancelled };

struct EvalContext {
  // Object whose members are the named contexts: github, env, job, steps,
  // runner, matrix, strategy, needs, inputs, secrets, vars. A missing context
  // evaluates to null.
  Value contexts = Value::object();
  JobStatus status = JobStatus::kSuccess;
  // hashFiles(patterns...): returns the hex digest; unset -> hashFiles() fails.
  std::function<Result<std::string>(const std::vector<std::string>&)> hash_files;
};

// Evaluates one expression (the text inside ${{ }}, without the braces).
// Errors (kWorkflow) are one line: "invalid expression 'a ==': unexpected end
// of expression" for syntax, "format(): ..." etc. for evaluation.
Result<Value> evaluate(std::string_view expr, const EvalContext& ctx);

// Replaces every ${{ expr }} in `text` by its value converted to a string as
// GitHub does (see to_display_string); text without ${{ is returned as is.
Result<std::string> interpolate(std::string_view text, const EvalContext& ctx);

// Evaluates an if: condition, written with or without ${{ }}. Unless the
// expression calls success(), failure(), cancelled() or always(), it is
// evaluated as success() && (cond), as GitHub does. Empty: success().
Result<bool> evaluate_if(std::string_view cond, const EvalContext& ctx);

// Syntax check of one expression: tokens, grammar, known contexts, known
// functions and their argument counts. Nothing is evaluated.
Status check_syntax(std::string_view expr);
// check_syntax on every ${{ }} of a template string; also refuses an
// unterminated "${{".
Status check_template(std::string_view text);
// check_syntax for an if: condition (with or without ${{ }}).
Status check_condition(std::string_view cond);

// True when `text` contains "${{".
bool has_expression(std::string_view text);

// The matrix keys that a template (or an if: condition when is_condition)
// references as matrix.KEY or matrix['KEY'], in order of appearance, without
// duplicates. Fails like check_template on a bad expression.
Result<std::vector<std::string>> matrix_keys_used(std::string_view text, bool is_condition);

// The named contexts (lower case: "needs", "matrix", ...) that a template or
// an if: condition reads, in order of appearance, without duplicates.
Result<std::vector<std::string>> contexts_used(std::string_view text, bool is_condition);

// GitHub's conversions, exposed for the runner and the matrix code.
bool is_truthy(const Value& v);
// null -> "", booleans "true"/"false", numbers without a trailing ".0"
// (15 significant digits), strings as is, arrays "Array", objects "Object".
std::string to_display_string(const Value& v);
// Loose equality on values (arrays/objects by value here, since detached
// values carry no identity).
bool loose_equal(const Value& a, const Value& b);

}  // namespace lockstep::pipeline
