// .lockstep.yml.
#include <cstdint>
#include <string_view>

#include "pipeline/project_config.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace lockstep;
using namespace lockstep::pipeline;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto cfg = parse_project_config(text, ".lockstep.yml");
  if (!cfg) {
    fuzz::require_clean_error(cfg.error());
    return 0;
  }
  for (const auto& [label, image] : cfg->platforms)
    fuzz::require(is_valid_utf8(label) && is_valid_utf8(image), "config values are UTF-8");
  return 0;
}
