// The workflow parser, and what `lockstep run --list` and `lockstep lock` do
// with a workflow before any container starts: job graph, matrix expansion,
// display names, the inputs a lock pins, the matrix as canonical JSON.
#include <cstdint>
#include <string_view>

#include "common/json.hpp"
#include "pipeline/graph.hpp"
#include "pipeline/lock_inputs.hpp"
#include "pipeline/matrix.hpp"
#include "pipeline/parse.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace lockstep;
using namespace lockstep::pipeline;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto wf = parse_workflow(text, "ci.yml");
  if (!wf) {
    fuzz::require_clean_error(wf.error());
    fuzz::require(wf.error().kind() == ErrorKind::kWorkflow, "a parse error is kWorkflow");
    return 0;
  }
  if (auto g = build_graph(*wf); !g) {
    fuzz::require_clean_error(g.error());
    return 0;
  }
  EvalContext base;
  base.contexts["github"] = {{"workflow", "ci"},
                             {"run_id", "1"},
                             {"ref", "refs/heads/main"},
                             {"repository", "local/x"},
                             {"event", Value::object()}};
  base.contexts["inputs"] = Value::object();
  base.contexts["vars"] = Value::object();
  std::vector<std::string> warnings;
  auto instances = expand_jobs(*wf, base, &warnings);
  if (!instances) {
    fuzz::require_clean_error(instances.error());
    return 0;
  }
  for (const auto& inst : *instances) {
    fuzz::require(is_valid_utf8(inst.display_name), "a display name is UTF-8");
    Value matrix(inst.matrix);
    if (auto c = canonical_json(matrix); !c) fuzz::require_clean_error(c.error());
    for (auto it = inst.matrix.begin(); inst.matrix.is_object() && it != inst.matrix.end(); ++it)
      (void)to_display_string(Value(it.value()));
  }
  auto inputs = collect_instance_inputs(*instances, base, {{"ubuntu-latest", "busybox:1"}});
  if (!inputs) fuzz::require_clean_error(inputs.error());
  return 0;
}
