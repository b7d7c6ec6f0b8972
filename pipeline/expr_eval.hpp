#pragma once
// Internal to the expression engine: evaluated values with identity.
#include <memory>
#include <string>
#include <vector>

#include "pipeline/expr_ast.hpp"

namespace lockstep::pipeline::expr {

const Value& null_value();

// A value during evaluation: points into the contexts or into a value the
// evaluation made (kept alive by `hold`). The pointer is the identity that
// == uses for arrays and objects. `filtered` marks the result of .* whose
// property accesses map over the elements.
struct Ref {
  const Value* p = nullptr;
  std::shared_ptr<const Value> hold;
  bool filtered = false;

  const Value& value() const { return p ? *p : null_value(); }
  static Ref own(Value v, bool filtered = false);
  static Ref borrow(const Value& v, const Ref& parent);
};

Result<Ref> eval_ref(const Node& n, const EvalContext& ctx);
Result<Ref> call_function(const std::string& name, const std::vector<Ref>& args,
                          const EvalContext& ctx);
bool refs_loose_equal(const Ref& a, const Ref& b);
bool is_truthy_value(const Value& v);

}  // namespace lockstep::pipeline::expr
