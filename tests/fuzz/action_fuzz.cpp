// An action's metadata file (action.yml), as it comes from another
// repository: errors are one line of UTF-8 text of kind workflow, and what
// parses holds only UTF-8 text (inputs become env, outputs the record).
#include <cstdint>
#include <string_view>

#include "pipeline/action.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace lockstep;
using namespace lockstep::pipeline;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto a = parse_action(text, "o/r@v1/action.yml");
  if (!a) {
    fuzz::require_clean_error(a.error());
    fuzz::require(a.error().kind() == ErrorKind::kWorkflow, "an action error is kWorkflow");
    return 0;
  }
  fuzz::require(is_valid_utf8(a->name) && is_valid_utf8(a->main) && is_valid_utf8(a->image),
                "an action's fields are UTF-8");
  for (const auto& in : a->inputs) {
    fuzz::require(is_valid_utf8(in.name), "an input name is UTF-8");
    (void)input_env_name(in.name);
    if (in.default_value) fuzz::require(is_valid_utf8(*in.default_value), "a default is UTF-8");
  }
  for (const auto& out : a->outputs)
    fuzz::require(is_valid_utf8(out.name) && is_valid_utf8(out.value), "an output is UTF-8");
  for (const auto& arg : a->args) fuzz::require(is_valid_utf8(arg), "an argument is UTF-8");
  return 0;
}
