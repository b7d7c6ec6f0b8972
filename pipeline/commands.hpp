#pragma once
// What a step tells the runner: workflow commands on stdout
// ("::error file=a.c,line=3::msg") and the $GITHUB_OUTPUT, $GITHUB_ENV and
// $GITHUB_PATH files it writes. What these give back is text: bytes that are
// not UTF-8 come back as U+FFFD (one per ill-formed sequence), as GitHub's
// runner decodes them, so step outputs and env values are always UTF-8.
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "pipeline/model.hpp"

namespace lockstep::pipeline {

struct WorkflowCommand {
  std::string name;  // "group", "endgroup", "error", "warning", "notice", "add-mask", "debug", ...
  std::vector<std::pair<std::string, std::string>> properties;  // in order, unescaped
  std::string message;                                          // unescaped
  bool legacy = false;  // written as "##[name k=v;k=v]message", the form before "::"

  // The value of a property, or nullopt.
  std::optional<std::string> property(std::string_view key) const;
};

// Parses one line of output (without its newline) as "::name k=v,k=v::message",
// else as the legacy "##[name k=v;k=v]message" (anywhere in the line, escapes
// %3B %0D %0A %5D %25), as GitHub's runner reads both.
// Returns nullopt for a line that is not a command. Names are returned as
// written (lower case in practice); unknown names are returned too, for the
// runner to echo. Escapes: %25 -> %, %0D -> CR, %0A -> LF in messages and
// properties; %3A -> ':' and %2C -> ',' in properties only.
std::optional<WorkflowCommand> parse_command(std::string_view line);

// GitHub's escaping, for a runner that writes commands.
std::string escape_command_data(std::string_view s);
std::string escape_command_property(std::string_view s);

// Follows a step's output line by line, honouring ::stop-commands::TOKEN (no
// command is recognised until a line "::TOKEN::").
class CommandStream {
 public:
  std::optional<WorkflowCommand> feed(std::string_view line);
  bool stopped() const { return !resume_token_.empty(); }

 private:
  std::string resume_token_;
};

// $GITHUB_OUTPUT and $GITHUB_ENV: lines "NAME=VALUE" and heredocs
// "NAME<<DELIMITER" ... "DELIMITER" (value lines joined by "\n"); empty lines
// are skipped, CRLF is accepted. `what` names the file in errors:
// "GITHUB_OUTPUT line 3: invalid line 'oops' (expected NAME=VALUE or
// NAME<<DELIMITER)". Later entries for a name follow earlier ones in the list.
Result<EnvList> parse_key_value_file(std::string_view text, std::string_view what);

// $GITHUB_PATH: one directory per non-empty line, in order.
std::vector<std::string> parse_path_file(std::string_view text);

}  // namespace lockstep::pipeline
