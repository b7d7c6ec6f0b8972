// The text side of expressions and walks over parsed trees: number
// literals, ${{ }} splitting, and the questions asked of a tree (does it
// call a status function, which contexts and matrix keys does it read).
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

#include "pipeline/expr_ast.hpp"

namespace lockstep::pipeline::expr {

// Parses a number as GitHub's lexer does: decimal with optional fraction and
// exponent, or 0x hexadecimal, optionally negative.
bool parse_number_literal(std::string_view s, double& out) {
  std::string_view body = s;
  bool neg = false;
  if (!body.empty() && (body[0] == '-' || body[0] == '+')) {
    neg = body[0] == '-';
    body.remove_prefix(1);
  }
  if (body.empty()) return false;
  if (body == "Infinity") {
    out = neg ? -INFINITY : INFINITY;
    return true;
  }
  if (body.size() > 2 && body[0] == '0' && (body[1] == 'x' || body[1] == 'X')) {
    double v = 0;
    for (char c : body.substr(2)) {
      if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
      int d = std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : std::tolower(c) - 'a' + 10;
      v = v * 16 + d;
    }
    out = neg ? -v : v;
    return true;
  }
  if (body.size() > 2 && body[0] == '0' && (body[1] == 'o' || body[1] == 'O')) {
    double v = 0;
    for (char c : body.substr(2)) {
      if (c < '0' || c > '7') return false;
      v = v * 8 + (c - '0');
    }
    out = neg ? -v : v;
    return true;
  }
  size_t i = 0;
  auto digits = [&] {
    size_t s0 = i;
    while (i < body.size() && std::isdigit(static_cast<unsigned char>(body[i]))) ++i;
    return i - s0;
  };
  size_t int_digits = digits();
  size_t frac_digits = 0;
  if (i < body.size() && body[i] == '.') {
    ++i;
    frac_digits = digits();
  }
  if (int_digits + frac_digits == 0) return false;
  if (i < body.size() && (body[i] == 'e' || body[i] == 'E')) {
    ++i;
    if (i < body.size() && (body[i] == '+' || body[i] == '-')) ++i;
    if (digits() == 0) return false;
  }
  if (i != body.size()) return false;
  std::string text(body);
  double v = std::strtod(text.c_str(), nullptr);
  out = neg ? -v : v;
  return true;
}

bool calls_status_function(const Node& n) {
  if (n.kind == NodeKind::kCall &&
      (n.name == "success" || n.name == "failure" || n.name == "cancelled" || n.name == "always")) {
    return true;
  }
  for (const auto& k : n.kids) {
    if (calls_status_function(*k)) return true;
  }
  return false;
}

void collect_matrix_keys(const Node& n, std::vector<std::string>& out) {
  if ((n.kind == NodeKind::kProperty || n.kind == NodeKind::kIndex) &&
      n.kids[0]->kind == NodeKind::kContext && n.kids[0]->name == "matrix") {
    std::string key;
    if (n.kind == NodeKind::kProperty) {
      key = n.name;
    } else if (n.kids[1]->kind == NodeKind::kLiteral && n.kids[1]->literal.is_string()) {
      key = n.kids[1]->literal.get<std::string>();
    }
    if (!key.empty() && std::find(out.begin(), out.end(), key) == out.end()) out.push_back(key);
  }
  for (const auto& k : n.kids) collect_matrix_keys(*k, out);
}

void collect_contexts(const Node& n, std::vector<std::string>& out) {
  if (n.kind == NodeKind::kContext && std::find(out.begin(), out.end(), n.name) == out.end()) {
    out.push_back(n.name);
  }
  for (const auto& k : n.kids) collect_contexts(*k, out);
}

Result<std::vector<TemplatePart>> split_template(std::string_view text) {
  std::vector<TemplatePart> parts;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t open = text.find("${{", pos);
    if (open == std::string_view::npos) {
      parts.push_back({false, text.substr(pos)});
      break;
    }
    if (open > pos) parts.push_back({false, text.substr(pos, open - pos)});
    // The body ends at the first "}}" outside a string literal.
    size_t i = open + 3;
    bool in_string = false;
    size_t close = std::string_view::npos;
    for (; i < text.size(); ++i) {
      if (text[i] == '\'') {
        if (in_string && i + 1 < text.size() && text[i + 1] == '\'') {
          ++i;
        } else {
          in_string = !in_string;
        }
      } else if (!in_string && text.compare(i, 2, "}}") == 0) {
        close = i;
        break;
      }
    }
    if (close == std::string_view::npos) {
      return fail("'${{' at offset " + std::to_string(open) + " has no closing '}}'",
                  ErrorKind::kWorkflow);
    }
    parts.push_back({true, text.substr(open + 3, close - open - 3)});
    pos = close + 2;
  }
  return parts;
}

}  // namespace lockstep::pipeline::expr
