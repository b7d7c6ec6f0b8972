#pragma once
// GitHub's `shell:` templates (Linux runners): how a run: script is executed.
//
//   (unspecified)  bash -e {0}, or sh -e {0} when the image has no bash
//   bash           bash --noprofile --norc -eo pipefail {0}
//   sh             sh -e {0}
//   python         python {0}
//   pwsh           pwsh -command ". '{0}'"
//   anything with {0}, e.g. "perl {0}" or "bash -x {0}": split into words as
//   a shell would, {0} replaced by the script path.
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace lockstep::pipeline {

// The argv that runs `script_path` with `shell` (empty: the default above).
// Errors (kWorkflow): Windows-only shells (cmd, powershell) and an unknown
// name without {0}: "unknown shell 'zsh' (use bash, sh, python, pwsh or a
// command with {0} for the script path)".
Result<std::vector<std::string>> resolve_shell(std::string shell, bool bash_available,
                                               std::string script_path);

// The file name extension GitHub gives the script for this shell: ".sh" for
// bash, sh and the default, ".py" for python, ".ps1" for pwsh, "" otherwise.
std::string script_extension(std::string_view shell);

}  // namespace lockstep::pipeline
