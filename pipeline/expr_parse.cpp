// Lexer and recursive-descent parser for GitHub Actions expressions.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

#include "common/utf8.hpp"
#include "pipeline/diagnostic.hpp"
#include "pipeline/expr_ast.hpp"

namespace lockstep::pipeline::expr {

namespace {

enum class Tok {
  kEnd,
  kNumber,
  kString,
  kIdent,
  kLParen,
  kRParen,
  kLBracket,
  kRBracket,
  kDot,
  kComma,
  kStar,
  kNot,
  kLt,
  kLe,
  kGt,
  kGe,
  kEq,
  kNe,
  kAnd,
  kOr,
};

struct Token {
  Tok kind = Tok::kEnd;
  size_t pos = 0;  // 0-based offset in the expression
  std::string text;
  Value value;  // numbers and strings
};

// GitHub nests at most 50 levels; the limit also keeps the recursion bounded.
constexpr int kMaxDepth = 50;
constexpr size_t kMaxTokens = 2000;

struct FunctionSpec {
  std::string_view name;
  size_t min_args;
  size_t max_args;  // SIZE_MAX: variadic
};
constexpr size_t kMany = static_cast<size_t>(-1);
constexpr FunctionSpec kFunctions[] = {
    {"contains", 2, 2}, {"startswith", 2, 2}, {"endswith", 2, 2}, {"format", 1, kMany},
    {"join", 1, 2},     {"tojson", 1, 1},     {"fromjson", 1, 1}, {"hashfiles", 1, kMany},
    {"success", 0, 0},  {"failure", 0, 0},    {"always", 0, 0},   {"cancelled", 0, 0},
};
constexpr std::string_view kContexts[] = {"github", "env",    "job",     "jobs",
                                          "steps",  "runner", "matrix",  "strategy",
                                          "needs",  "inputs", "secrets", "vars"};

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool ident_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
}
bool ident_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}

class Lexer {
 public:
  explicit Lexer(std::string_view text) : s_(text) {}

  Result<std::vector<Token>> run() {
    std::vector<Token> out;
    while (true) {
      while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
      Token t;
      t.pos = pos_;
      if (pos_ >= s_.size()) {
        out.push_back(t);
        return out;
      }
      char c = s_[pos_];
      char n = pos_ + 1 < s_.size() ? s_[pos_ + 1] : '\0';
      bool after_value =
          !out.empty() && (out.back().kind == Tok::kIdent || out.back().kind == Tok::kRParen ||
                           out.back().kind == Tok::kRBracket);
      if (std::isdigit(static_cast<unsigned char>(c)) ||
          (c == '-' && (std::isdigit(static_cast<unsigned char>(n)) || n == '.' || n == 'I')) ||
          (c == '.' && std::isdigit(static_cast<unsigned char>(n)) && !after_value)) {
        LS_TRY(number(t));
      } else if (c == '\'') {
        LS_TRY(string(t));
      } else if (ident_start(c)) {
        size_t start = pos_;
        while (pos_ < s_.size() && ident_char(s_[pos_])) ++pos_;
        t.kind = Tok::kIdent;
        t.text = std::string(s_.substr(start, pos_ - start));
      } else {
        LS_TRY(op(t, c, n));
      }
      out.push_back(std::move(t));
    }
  }

 private:
  Status number(Token& t) {
    size_t start = pos_++;
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      char prev = s_[pos_ - 1];
      bool hex = pos_ - start >= 2 && (s_[start + 1] == 'x' || s_[start + 1] == 'X' ||
                                       (pos_ - start >= 3 && s_[start] == '-' &&
                                        (s_[start + 2] == 'x' || s_[start + 2] == 'X')));
      if (std::isalnum(static_cast<unsigned char>(c)) || c == '.' ||
          ((c == '+' || c == '-') && (prev == 'e' || prev == 'E') && !hex)) {
        ++pos_;
      } else {
        break;
      }
    }
    t.kind = Tok::kNumber;
    t.text = std::string(s_.substr(start, pos_ - start));
    double v = 0;
    if (!parse_number_literal(t.text, v)) {
      return fail("invalid number '" + t.text + "' at position " + std::to_string(start + 1),
                  ErrorKind::kWorkflow);
    }
    t.value = make_number(v);
    return {};
  }

  Status string(Token& t) {
    size_t start = pos_++;
    std::string v;
    while (true) {
      if (pos_ >= s_.size()) {
        return fail("unterminated string starting at position " + std::to_string(start + 1),
                    ErrorKind::kWorkflow);
      }
      char c = s_[pos_++];
      if (c == '\'') {
        if (pos_ < s_.size() && s_[pos_] == '\'') {
          v += '\'';
          ++pos_;
          continue;
        }
        break;
      }
      v += c;
    }
    t.kind = Tok::kString;
    t.text = std::string(s_.substr(start, pos_ - start));
    t.value = std::move(v);
    return {};
  }

  Status op(Token& t, char c, char n) {
    auto two = [&](Tok k) {
      t.kind = k;
      t.text = std::string(s_.substr(pos_, 2));
      pos_ += 2;
    };
    auto one = [&](Tok k) {
      t.kind = k;
      t.text = std::string(1, c);
      pos_ += 1;
    };
    switch (c) {
      case '(':
        one(Tok::kLParen);
        return {};
      case ')':
        one(Tok::kRParen);
        return {};
      case '[':
        one(Tok::kLBracket);
        return {};
      case ']':
        one(Tok::kRBracket);
        return {};
      case '.':
        one(Tok::kDot);
        return {};
      case ',':
        one(Tok::kComma);
        return {};
      case '*':
        one(Tok::kStar);
        return {};
      case '!':
        if (n == '=')
          two(Tok::kNe);
        else
          one(Tok::kNot);
        return {};
      case '<':
        if (n == '=')
          two(Tok::kLe);
        else
          one(Tok::kLt);
        return {};
      case '>':
        if (n == '=')
          two(Tok::kGe);
        else
          one(Tok::kGt);
        return {};
      case '=':
        if (n == '=') {
          two(Tok::kEq);
          return {};
        }
        break;
      case '&':
        if (n == '&') {
          two(Tok::kAnd);
          return {};
        }
        break;
      case '|':
        if (n == '|') {
          two(Tok::kOr);
          return {};
        }
        break;
      case '"':
        return fail("unexpected '\"' at position " + std::to_string(pos_ + 1) +
                        " (strings use single quotes)",
                    ErrorKind::kWorkflow);
      default:
        break;
    }
    // The whole character, not its first byte: the message stays UTF-8.
    unsigned char lead = static_cast<unsigned char>(c);
    size_t len = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    return fail("unexpected character '" + to_valid_utf8(s_.substr(pos_, len)) + "' at position " +
                    std::to_string(pos_ + 1),
                ErrorKind::kWorkflow);
  }

  std::string_view s_;
  size_t pos_ = 0;
};

class Parser {
 public:
  explicit Parser(std::vector<Token> toks) : t_(std::move(toks)) {}

  Result<std::unique_ptr<Node>> run() {
    if (peek().kind == Tok::kEnd) return fail("empty expression", ErrorKind::kWorkflow);
    LS_TRY_ASSIGN(auto root, parse_or(0));
    if (peek().kind != Tok::kEnd) return unexpected();
    return root;
  }

 private:
  using NodeP = std::unique_ptr<Node>;

  const Token& peek() const { return t_[i_]; }
  const Token& next() { return t_[i_ < t_.size() - 1 ? i_++ : i_]; }

  tl::unexpected<Error> unexpected() const {
    const Token& t = peek();
    if (t.kind == Tok::kEnd) return fail("unexpected end of expression", ErrorKind::kWorkflow);
    return fail("unexpected '" + t.text + "' at position " + std::to_string(t.pos + 1),
                ErrorKind::kWorkflow);
  }

  Status depth_check(int depth) const {
    if (depth > kMaxDepth) {
      return fail("expression nests deeper than " + std::to_string(kMaxDepth) + " levels",
                  ErrorKind::kWorkflow);
    }
    return {};
  }

  static NodeP make(NodeKind k, NodeP a = nullptr, NodeP b = nullptr) {
    auto n = std::make_unique<Node>();
    n->kind = k;
    if (a) n->kids.push_back(std::move(a));
    if (b) n->kids.push_back(std::move(b));
    return n;
  }

  Result<NodeP> parse_or(int depth) {
    LS_TRY(depth_check(depth));
    LS_TRY_ASSIGN(NodeP left, parse_and(depth));
    while (peek().kind == Tok::kOr) {
      next();
      LS_TRY_ASSIGN(NodeP right, parse_and(depth));
      left = make(NodeKind::kOr, std::move(left), std::move(right));
    }
    return left;
  }

  Result<NodeP> parse_and(int depth) {
    LS_TRY_ASSIGN(NodeP left, parse_equality(depth));
    while (peek().kind == Tok::kAnd) {
      next();
      LS_TRY_ASSIGN(NodeP right, parse_equality(depth));
      left = make(NodeKind::kAnd, std::move(left), std::move(right));
    }
    return left;
  }

  Result<NodeP> parse_equality(int depth) {
    LS_TRY_ASSIGN(NodeP left, parse_comparison(depth));
    while (peek().kind == Tok::kEq || peek().kind == Tok::kNe) {
      CompareOp op = next().kind == Tok::kEq ? CompareOp::kEq : CompareOp::kNe;
      LS_TRY_ASSIGN(NodeP right, parse_comparison(depth));
      left = make(NodeKind::kCompare, std::move(left), std::move(right));
      left->op = op;
    }
    return left;
  }

  Result<NodeP> parse_comparison(int depth) {
    LS_TRY_ASSIGN(NodeP left, parse_unary(depth));
    while (true) {
      CompareOp op;
      switch (peek().kind) {
        case Tok::kLt:
          op = CompareOp::kLt;
          break;
        case Tok::kLe:
          op = CompareOp::kLe;
          break;
        case Tok::kGt:
          op = CompareOp::kGt;
          break;
        case Tok::kGe:
          op = CompareOp::kGe;
          break;
        default:
          return left;
      }
      next();
      LS_TRY_ASSIGN(NodeP right, parse_unary(depth));
      left = make(NodeKind::kCompare, std::move(left), std::move(right));
      left->op = op;
    }
  }

  Result<NodeP> parse_unary(int depth) {
    if (peek().kind == Tok::kNot) {
      next();
      LS_TRY(depth_check(depth + 1));
      LS_TRY_ASSIGN(NodeP operand, parse_unary(depth + 1));
      return make(NodeKind::kNot, std::move(operand));
    }
    return parse_postfix(depth);
  }

  Result<NodeP> parse_postfix(int depth) {
    LS_TRY_ASSIGN(NodeP node, parse_primary(depth));
    while (true) {
      if (peek().kind == Tok::kDot) {
        next();
        if (peek().kind == Tok::kStar) {
          next();
          node = make(NodeKind::kFilter, std::move(node));
        } else if (peek().kind == Tok::kIdent) {
          node = make(NodeKind::kProperty, std::move(node));
          node->name = next().text;
        } else {
          return unexpected();
        }
      } else if (peek().kind == Tok::kLBracket) {
        next();
        if (peek().kind == Tok::kStar) {
          next();
          node = make(NodeKind::kFilter, std::move(node));
        } else {
          LS_TRY_ASSIGN(NodeP index, parse_or(depth + 1));
          node = make(NodeKind::kIndex, std::move(node), std::move(index));
        }
        if (peek().kind != Tok::kRBracket) return unexpected();
        next();
      } else {
        return node;
      }
    }
  }

  Result<NodeP> parse_primary(int depth) {
    const Token& t = peek();
    switch (t.kind) {
      case Tok::kNumber:
      case Tok::kString: {
        NodeP n = make(NodeKind::kLiteral);
        n->literal = next().value;
        return n;
      }
      case Tok::kLParen: {
        next();
        LS_TRY_ASSIGN(NodeP inner, parse_or(depth + 1));
        if (peek().kind != Tok::kRParen) return unexpected();
        next();
        return inner;
      }
      case Tok::kIdent:
        return parse_identifier(depth);
      default:
        return unexpected();
    }
  }

  Result<NodeP> parse_identifier(int depth) {
    const Token& t = next();
    NodeP n = make(NodeKind::kLiteral);
    if (t.text == "true" || t.text == "false") {
      n->literal = t.text == "true";
      return n;
    }
    if (t.text == "null") {
      n->literal = nullptr;
      return n;
    }
    if (t.text == "NaN" || t.text == "Infinity") {
      n->literal = t.text == "NaN" ? NAN : INFINITY;
      return n;
    }
    std::string name = lower(t.text);
    if (peek().kind == Tok::kLParen) {
      next();
      n->kind = NodeKind::kCall;
      n->name = name;
      const FunctionSpec* spec = nullptr;
      for (const auto& f : kFunctions) {
        if (f.name == name) spec = &f;
      }
      if (!spec) {
        return fail("unknown function '" + t.text + "' at position " + std::to_string(t.pos + 1),
                    ErrorKind::kWorkflow);
      }
      if (peek().kind != Tok::kRParen) {
        while (true) {
          LS_TRY_ASSIGN(NodeP arg, parse_or(depth + 1));
          n->kids.push_back(std::move(arg));
          if (peek().kind == Tok::kComma) {
            next();
            continue;
          }
          break;
        }
      }
      if (peek().kind != Tok::kRParen) return unexpected();
      next();
      size_t got = n->kids.size();
      if (got < spec->min_args || got > spec->max_args) {
        std::string want = spec->min_args == spec->max_args ? std::to_string(spec->min_args)
                           : spec->max_args == kMany ? "at least " + std::to_string(spec->min_args)
                                                     : std::to_string(spec->min_args) + " or " +
                                                           std::to_string(spec->max_args);
        return fail(
            t.text + "() takes " + want + " argument" +
                (spec->max_args == 1 || (spec->max_args == kMany && spec->min_args == 1) ? ""
                                                                                         : "s") +
                ", got " + std::to_string(got),
            ErrorKind::kWorkflow);
      }
      return n;
    }
    bool known = false;
    for (std::string_view c : kContexts) known = known || c == name;
    if (!known) {
      std::vector<std::string_view> cands(std::begin(kContexts), std::end(kContexts));
      return fail("unknown context '" + t.text + "'" + did_you_mean(t.text, cands),
                  ErrorKind::kWorkflow);
    }
    n->kind = NodeKind::kContext;
    n->name = name;
    return n;
  }

  std::vector<Token> t_;
  size_t i_ = 0;
};

}  // namespace

Result<std::unique_ptr<Node>> parse(std::string_view text) {
  LS_TRY_ASSIGN(auto tokens, Lexer(text).run());
  // Operator chains parse iteratively but evaluate recursively; bounding the
  // tokens bounds the depth of the tree (no real expression comes close).
  if (tokens.size() > kMaxTokens) {
    return fail("expression has more than " + std::to_string(kMaxTokens) + " tokens",
                ErrorKind::kWorkflow);
  }
  return Parser(std::move(tokens)).run();
}

}  // namespace lockstep::pipeline::expr
