#include "pipeline/shell.hpp"

#include <gtest/gtest.h>

namespace lockstep::pipeline {
namespace {

using Argv = std::vector<std::string>;

Argv argv(std::string shell, bool bash = true) {
  auto r = resolve_shell(std::move(shell), bash, "/tmp/s/step.sh");
  EXPECT_TRUE(r) << r.error().message();
  return r ? *r : Argv{};
}

TEST(Shell, GitHubTemplates) {
  EXPECT_EQ(argv(""), (Argv{"bash", "-e", "/tmp/s/step.sh"}));
  EXPECT_EQ(argv("", false), (Argv{"sh", "-e", "/tmp/s/step.sh"}));
  EXPECT_EQ(argv("bash"),
            (Argv{"bash", "--noprofile", "--norc", "-eo", "pipefail", "/tmp/s/step.sh"}));
  EXPECT_EQ(argv("bash", false),
            (Argv{"bash", "--noprofile", "--norc", "-eo", "pipefail", "/tmp/s/step.sh"}));
  EXPECT_EQ(argv("sh"), (Argv{"sh", "-e", "/tmp/s/step.sh"}));
  EXPECT_EQ(argv("python"), (Argv{"python", "/tmp/s/step.sh"}));
  EXPECT_EQ(argv("pwsh"), (Argv{"pwsh", "-command", ". '/tmp/s/step.sh'"}));
}

TEST(Shell, CustomCommands) {
  EXPECT_EQ(argv("perl {0}"), (Argv{"perl", "/tmp/s/step.sh"}));
  EXPECT_EQ(argv("bash -x {0}"), (Argv{"bash", "-x", "/tmp/s/step.sh"}));
  EXPECT_EQ(argv("sh -c 'cat {0} && . {0}'"),
            (Argv{"sh", "-c", "cat /tmp/s/step.sh && . /tmp/s/step.sh"}));
  EXPECT_EQ(argv("python3 -u {0}"), (Argv{"python3", "-u", "/tmp/s/step.sh"}));
}

TEST(Shell, Errors) {
  EXPECT_EQ(resolve_shell("zsh", true, "/s").error().message(),
            "unknown shell 'zsh' (use bash, sh, python, pwsh or a command with {0} for the script "
            "path)");
  EXPECT_EQ(resolve_shell("cmd", true, "/s").error().message(),
            "shell 'cmd' runs only on Windows; lockstep runs Linux containers");
  EXPECT_EQ(resolve_shell("powershell", true, "/s").error().kind(), ErrorKind::kWorkflow);
  EXPECT_EQ(resolve_shell("sh -c '{0}", true, "/s").error().message(),
            "shell 'sh -c '{0}': unterminated ' quote");
}

TEST(Shell, ScriptExtensions) {
  EXPECT_EQ(script_extension(""), ".sh");
  EXPECT_EQ(script_extension("bash"), ".sh");
  EXPECT_EQ(script_extension("sh"), ".sh");
  EXPECT_EQ(script_extension("python"), ".py");
  EXPECT_EQ(script_extension("pwsh"), ".ps1");
  EXPECT_EQ(script_extension("perl {0}"), "");
}

}  // namespace
}  // namespace lockstep::pipeline
