// ${{ }} expressions: the input is one expression (also tried as a template
// and as an if: condition), evaluated against contexts shaped like a run's.
#include <cstdint>
#include <string>
#include <string_view>

#include "pipeline/expr.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace lockstep;
using namespace lockstep::pipeline;

namespace {

const EvalContext& context() {
  static const EvalContext ctx = [] {
    EvalContext c;
    c.contexts["github"] = {{"ref", "refs/heads/main"},
                            {"sha", std::string(40, 'a')},
                            {"event", {{"commits", Value::array({{{"id", 1}}, {{"id", 2}}})}}}};
    c.contexts["env"] = {{"CC", "gcc"}, {"EMPTY", ""}, {"N", "14"}};
    c.contexts["matrix"] = {{"os", "linux"}, {"version", 14}, {"flags", {"-O2", "-g"}}};
    c.contexts["steps"] = {{"build",
                            {{"outputs", {{"json", "{\"a\":[1,2,{\"b\":null}]}"}}},
                             {"outcome", "success"},
                             {"conclusion", "success"}}}};
    c.contexts["needs"] = {
        {"setup", {{"result", "success"}, {"outputs", {{"matrix", "{\"os\":[\"a\",\"b\"]}"}}}}}};
    c.contexts["secrets"] = {{"TOKEN", "s3cr3t"}};
    c.hash_files = [](const std::vector<std::string>&) -> Result<std::string> {
      return std::string(64, '0');
    };
    return c;
  }();
  return ctx;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  // Expressions come from a workflow, which is refused unless it is UTF-8.
  if (!is_valid_utf8(text)) return 0;
  const EvalContext& ctx = context();
  if (auto st = check_syntax(text); !st) fuzz::require_clean_error(st.error());
  if (auto v = evaluate(text, ctx)) {
    (void)to_display_string(*v);
    (void)is_truthy(*v);
    (void)loose_equal(*v, *v);
  } else {
    fuzz::require_clean_error(v.error());
  }
  if (auto b = evaluate_if(text, ctx); !b) fuzz::require_clean_error(b.error());
  if (auto s = interpolate(text, ctx); !s) fuzz::require_clean_error(s.error());
  if (auto st = check_template(text); !st) fuzz::require_clean_error(st.error());
  if (auto k = matrix_keys_used(text, true); !k) fuzz::require_clean_error(k.error());
  if (auto k = contexts_used(text, false); !k) fuzz::require_clean_error(k.error());
  return 0;
}
