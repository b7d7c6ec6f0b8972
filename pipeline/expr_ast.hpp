#pragma once
// Internal to the expression engine: the syntax tree and the parser/evaluator
// entry points that expr.cpp composes.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "pipeline/expr.hpp"

namespace lockstep::pipeline::expr {

enum class NodeKind {
  kLiteral,   // literal
  kContext,   // name: a named context (github, matrix, ...)
  kProperty,  // kids[0].name
  kIndex,     // kids[0][kids[1]]
  kFilter,    // kids[0].*
  kNot,       // !kids[0]
  kAnd,       // kids[0] && kids[1]
  kOr,        // kids[0] || kids[1]
  kCompare,   // kids[0] op kids[1]
  kCall,      // name(kids...)
};

enum class CompareOp { kEq, kNe, kLt, kLe, kGt, kGe };

struct Node {
  NodeKind kind = NodeKind::kLiteral;
  Value literal;
  std::string name;  // context name (lowercase), property name, function name (lowercase)
  CompareOp op = CompareOp::kEq;
  std::vector<std::unique_ptr<Node>> kids;
};

// Parses one expression; errors are "unexpected ... at position N" style
// messages without the "invalid expression" prefix.
Result<std::unique_ptr<Node>> parse(std::string_view text);

Result<Value> eval(const Node& root, const EvalContext& ctx);

// True when the tree calls success(), failure(), cancelled() or always().
bool calls_status_function(const Node& root);

// Appends the matrix keys referenced by the tree.
void collect_matrix_keys(const Node& root, std::vector<std::string>& out);

// Appends the named contexts the tree reads (lower case, no duplicates).
void collect_contexts(const Node& root, std::vector<std::string>& out);

// Splits a template into literal text and ${{ }} bodies, in order. Each part
// is {is_expression, text}.
struct TemplatePart {
  bool is_expression = false;
  std::string_view text;
};
Result<std::vector<TemplatePart>> split_template(std::string_view text);

// Number helpers shared by the evaluator and the functions.
double to_number(const Value& v);
// GitHub number literal grammar: [-+]digits[.digits][e[+-]digits], 0x hex, Infinity.
bool parse_number_literal(std::string_view text, double& out);
Value make_number(double d);
std::string number_to_string(double d);
bool iequals(std::string_view a, std::string_view b);
std::string to_upper(std::string_view s);

}  // namespace lockstep::pipeline::expr
