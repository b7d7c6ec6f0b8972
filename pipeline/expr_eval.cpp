// Evaluation of expression trees with GitHub's coercion rules. Intermediate
// values are references into the contexts (or into values the evaluation
// created), so that arrays and objects keep an identity for == and so that
// property access does not copy whole contexts.
#include <cctype>
#include <cmath>
#include <cstdio>
#include <memory>

#include "pipeline/expr_ast.hpp"
#include "pipeline/expr_eval.hpp"

namespace lockstep::pipeline::expr {

const Value& null_value() {
  static const Value kNull;
  return kNull;
}

Ref Ref::own(Value v, bool filtered) {
  Ref r;
  r.hold = std::make_shared<const Value>(std::move(v));
  r.p = r.hold.get();
  r.filtered = filtered;
  return r;
}

Ref Ref::borrow(const Value& v, const Ref& parent) {
  Ref r;
  r.hold = parent.hold;
  r.p = &v;
  return r;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(a[i])) !=
        std::toupper(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string to_upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

Value make_number(double d) {
  // Integral values within 2^53 are kept as integers so that toJSON and the
  // string form print "3", not "3.0".
  if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) <= 9007199254740992.0) {
    if (d == 0) return Value(0);  // also folds -0
    return Value(static_cast<int64_t>(d));
  }
  return Value(d);
}

std::string number_to_string(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  if (d == 0) return "0";
  if (std::trunc(d) == d && std::fabs(d) < 1e15) {
    return std::to_string(static_cast<int64_t>(d));
  }
  // .NET's "G15", as GitHub's runner formats numbers: 15 significant digits,
  // exponent form outside 1e-5..1e15 with an upper-case E.
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.15G", d);
  return buf;
}

static double string_to_number(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  if (s.empty()) return 0;
  if (s == "NaN") return NAN;
  double out = 0;
  // Same grammar as number literals: decimal, exponent, 0x hex, Infinity.
  return parse_number_literal(s, out) ? out : NAN;
}

double to_number(const Value& v) {
  switch (v.type()) {
    case Value::value_t::null:
      return 0;
    case Value::value_t::boolean:
      return v.get<bool>() ? 1 : 0;
    case Value::value_t::number_integer:
    case Value::value_t::number_unsigned:
    case Value::value_t::number_float:
      return v.get<double>();
    case Value::value_t::string:
      return string_to_number(v.get_ref<const std::string&>());
    default:
      return NAN;
  }
}

static bool is_number(const Value& v) {
  return v.is_number();
}

// The type classes GitHub compares within: numbers of any JSON subtype are one.
static int type_class(const Value& v) {
  if (is_number(v)) return 2;
  switch (v.type()) {
    case Value::value_t::null:
      return 0;
    case Value::value_t::boolean:
      return 1;
    case Value::value_t::string:
      return 3;
    case Value::value_t::array:
      return 4;
    case Value::value_t::object:
      return 5;
    default:
      return 6;
  }
}

static bool ref_equal(const Ref& a, const Ref& b) {
  const Value& x = a.value();
  const Value& y = b.value();
  int tx = type_class(x);
  if (tx == type_class(y)) {
    switch (tx) {
      case 0:
        return true;
      case 1:
        return x.get<bool>() == y.get<bool>();
      case 2:
        return x.get<double>() == y.get<double>();
      case 3:
        return iequals(x.get_ref<const std::string&>(), y.get_ref<const std::string&>());
      default:
        return a.p == b.p;  // arrays and objects: the same instance only
    }
  }
  return to_number(x) == to_number(y);  // NaN compares unequal to everything
}

// <0, 0, >0, or 2 for "not comparable" (NaN involved).
static int ref_compare(const Ref& a, const Ref& b) {
  const Value& x = a.value();
  const Value& y = b.value();
  if (x.is_string() && y.is_string()) {
    std::string ux = to_upper(x.get_ref<const std::string&>());
    std::string uy = to_upper(y.get_ref<const std::string&>());
    return ux < uy ? -1 : ux > uy ? 1 : 0;
  }
  double dx = to_number(x), dy = to_number(y);
  if (std::isnan(dx) || std::isnan(dy)) return 2;
  return dx < dy ? -1 : dx > dy ? 1 : 0;
}

bool is_truthy_value(const Value& v) {
  switch (v.type()) {
    case Value::value_t::null:
      return false;
    case Value::value_t::boolean:
      return v.get<bool>();
    case Value::value_t::number_integer:
    case Value::value_t::number_unsigned:
    case Value::value_t::number_float: {
      double d = v.get<double>();
      return d != 0 && !std::isnan(d);
    }
    case Value::value_t::string:
      return !v.get_ref<const std::string&>().empty();
    default:
      return true;
  }
}

static const Value* find_member(const Value& obj, const std::string& name) {
  auto it = obj.find(name);
  if (it != obj.end()) return &*it;
  // Context and object keys are case-insensitive in GitHub.
  for (auto i = obj.begin(); i != obj.end(); ++i) {
    if (iequals(i.key(), name)) return &*i;
  }
  return nullptr;
}

static Ref property(const Ref& base, const std::string& name) {
  const Value& v = base.value();
  if (base.filtered) {
    // A property of a filtered array maps over its elements, skipping misses.
    Value out = Value::array();
    for (const Value& e : v) {
      if (!e.is_object()) continue;
      if (const Value* m = find_member(e, name)) out.push_back(*m);
    }
    return Ref::own(std::move(out), true);
  }
  if (!v.is_object()) return Ref::own(nullptr);
  const Value* m = find_member(v, name);
  return m ? Ref::borrow(*m, base) : Ref::own(nullptr);
}

static Ref index(const Ref& base, const Ref& key) {
  const Value& v = base.value();
  const Value& k = key.value();
  if (base.filtered) {
    Value out = Value::array();
    for (const Value& e : v) {
      Ref er = Ref::own(e);
      Ref got = index(er, key);
      if (!got.value().is_null()) out.push_back(got.value());
    }
    return Ref::own(std::move(out), true);
  }
  if (v.is_array()) {
    double d = to_number(k);
    if (std::isnan(d) || d < 0 || std::trunc(d) != d || d >= static_cast<double>(v.size())) {
      return Ref::own(nullptr);
    }
    return Ref::borrow(v[static_cast<size_t>(d)], base);
  }
  if (v.is_object()) return property(base, to_display_string(k));
  return Ref::own(nullptr);
}

static Ref filter(const Ref& base) {
  const Value& v = base.value();
  Value out = Value::array();
  if (base.filtered) {
    // Filtering a filtered array flattens one level.
    for (const Value& e : v) {
      if (e.is_array() || e.is_object()) {
        for (const Value& x : e) out.push_back(x);
      }
    }
  } else if (v.is_array() || v.is_object()) {
    for (const Value& x : v) out.push_back(x);
  }
  return Ref::own(std::move(out), true);
}

Result<Ref> eval_ref(const Node& n, const EvalContext& ctx) {
  switch (n.kind) {
    case NodeKind::kLiteral:
      return Ref::own(n.literal);
    case NodeKind::kContext: {
      Ref root;
      root.p = &ctx.contexts;
      const Value* c = ctx.contexts.is_object() ? find_member(ctx.contexts, n.name) : nullptr;
      return c ? Ref::borrow(*c, root) : Ref::own(nullptr);
    }
    case NodeKind::kProperty: {
      LS_TRY_ASSIGN(Ref base, eval_ref(*n.kids[0], ctx));
      return property(base, n.name);
    }
    case NodeKind::kIndex: {
      LS_TRY_ASSIGN(Ref base, eval_ref(*n.kids[0], ctx));
      LS_TRY_ASSIGN(Ref key, eval_ref(*n.kids[1], ctx));
      return index(base, key);
    }
    case NodeKind::kFilter: {
      LS_TRY_ASSIGN(Ref base, eval_ref(*n.kids[0], ctx));
      return filter(base);
    }
    case NodeKind::kNot: {
      LS_TRY_ASSIGN(Ref v, eval_ref(*n.kids[0], ctx));
      return Ref::own(!is_truthy_value(v.value()));
    }
    case NodeKind::kAnd: {
      LS_TRY_ASSIGN(Ref l, eval_ref(*n.kids[0], ctx));
      if (!is_truthy_value(l.value())) return l;
      return eval_ref(*n.kids[1], ctx);
    }
    case NodeKind::kOr: {
      LS_TRY_ASSIGN(Ref l, eval_ref(*n.kids[0], ctx));
      if (is_truthy_value(l.value())) return l;
      return eval_ref(*n.kids[1], ctx);
    }
    case NodeKind::kCompare: {
      LS_TRY_ASSIGN(Ref l, eval_ref(*n.kids[0], ctx));
      LS_TRY_ASSIGN(Ref r, eval_ref(*n.kids[1], ctx));
      bool out = false;
      if (n.op == CompareOp::kEq || n.op == CompareOp::kNe) {
        out = ref_equal(l, r) == (n.op == CompareOp::kEq);
      } else {
        int c = ref_compare(l, r);
        if (c != 2) {
          out = n.op == CompareOp::kLt   ? c < 0
                : n.op == CompareOp::kLe ? c <= 0
                : n.op == CompareOp::kGt ? c > 0
                                         : c >= 0;
        }
      }
      return Ref::own(out);
    }
    case NodeKind::kCall: {
      std::vector<Ref> args;
      for (const auto& k : n.kids) {
        LS_TRY_ASSIGN(Ref a, eval_ref(*k, ctx));
        args.push_back(std::move(a));
      }
      return call_function(n.name, args, ctx);
    }
  }
  return Ref::own(nullptr);
}

Result<Value> eval(const Node& root, const EvalContext& ctx) {
  LS_TRY_ASSIGN(Ref r, eval_ref(root, ctx));
  return r.value();
}

bool refs_loose_equal(const Ref& a, const Ref& b) {
  return ref_equal(a, b);
}

}  // namespace lockstep::pipeline::expr
