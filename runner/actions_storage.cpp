#include "runner/actions.hpp"

namespace lockstep::runner {

Result<ActionResult> run_storage_action(const std::string& name, ActionEnv&) {
  return fail("uses: " + name + " is not available in this build", ErrorKind::kUnsupported);
}

}  // namespace lockstep::runner
