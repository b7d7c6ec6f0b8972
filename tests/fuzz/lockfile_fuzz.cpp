// lockstep.lock: reading, and for a lock that reads, writing it again must
// give a lock that reads back to the same bytes.
#include <cstdint>
#include <string_view>

#include "pipeline/lockfile.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace lockstep;
using namespace lockstep::pipeline;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto lock = parse_lockfile(text, "lockstep.lock");
  if (!lock) {
    fuzz::require_clean_error(lock.error());
    fuzz::require(lock.error().message().find('\n') == std::string::npos,
                  "a lock error is one line");
    return 0;
  }
  std::string once = serialize_lockfile(*lock);
  auto again = parse_lockfile(once, "lockstep.lock");
  fuzz::require(again.has_value(), "a written lock reads back");
  fuzz::require(serialize_lockfile(*again) == once, "a written lock reads back the same");
  fuzz::require(lock_differences(*lock, *again).empty(), "a lock does not differ from itself");
  return 0;
}
