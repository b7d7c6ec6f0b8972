#include "pipeline/shell.hpp"

#include "pipeline/options.hpp"

namespace lockstep::pipeline {

Result<std::vector<std::string>> resolve_shell(std::string shell, bool bash_available,
                                               std::string script_path) {
  if (shell.empty()) {
    if (bash_available) return std::vector<std::string>{"bash", "-e", script_path};
    return std::vector<std::string>{"sh", "-e", script_path};
  }
  if (shell == "bash") {
    return std::vector<std::string>{"bash", "--noprofile", "--norc",
                                    "-eo",  "pipefail",    script_path};
  }
  if (shell == "sh") return std::vector<std::string>{"sh", "-e", script_path};
  if (shell == "python") return std::vector<std::string>{"python", script_path};
  if (shell == "pwsh")
    return std::vector<std::string>{"pwsh", "-command", ". '" + script_path + "'"};
  if (shell == "cmd" || shell == "powershell") {
    return fail("shell '" + shell + "' runs only on Windows; lockstep runs Linux containers",
                ErrorKind::kWorkflow);
  }
  if (shell.find("{0}") == std::string::npos) {
    return fail("unknown shell '" + shell +
                    "' (use bash, sh, python, pwsh or a command with {0} for the script path)",
                ErrorKind::kWorkflow);
  }
  auto words = split_shell_words(shell);
  if (!words) {
    return fail("shell '" + shell + "': " + words.error().message(), ErrorKind::kWorkflow);
  }
  for (std::string& w : *words) {
    for (size_t p = w.find("{0}"); p != std::string::npos;
         p = w.find("{0}", p + script_path.size())) {
      w.replace(p, 3, script_path);
    }
  }
  return std::move(*words);
}

std::string script_extension(std::string_view shell) {
  if (shell.empty() || shell == "bash" || shell == "sh") return ".sh";
  if (shell == "python") return ".py";
  if (shell == "pwsh") return ".ps1";
  return "";
}

}  // namespace lockstep::pipeline
