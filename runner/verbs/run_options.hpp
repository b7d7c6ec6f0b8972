#pragma once
// Command-line pieces shared by the verbs that start runs (run, replay,
// verify) or read a workflow (lock): one parser per option, one message.
#include <filesystem>
#include <map>
#include <string>
#include <utility>

#include "common/error.hpp"
#include "pipeline/project_config.hpp"
#include "runner/cli/cli.hpp"
#include "runner/engine/run.hpp"

namespace lockstep::runner {

// "KEY=VALUE" of --option; "--env 'x': expected KEY=VALUE" otherwise
// (`form` names the shape in the message). Text that is not UTF-8 is
// refused naming the byte, not the value: "--secret:1:7: invalid UTF-8 (byte 0xC1)".
Result<std::pair<std::string, std::string>> split_key_value(const std::string& s,
                                                            const char* option,
                                                            const char* form = "KEY=VALUE");

// The WORKFLOW positional (at most one), else the only file in
// .github/workflows/.
Result<std::filesystem::path> workflow_argument(const ParsedArgs& p);

// --job, --matrix, --env-file, --env, --platform.
Status add_selection_options(const ParsedArgs& p, RunOptions& o);

// --secret, --secret-file, --insecure-registry, --mirror (else
// $LOCKSTEP_MIRROR), --actions-url.
Status add_secret_and_pull_options(const ParsedArgs& p, RunOptions& o);

// --mirror, else $LOCKSTEP_MIRROR, normalized; empty when neither is set.
Result<std::string> mirror_option(const ParsedArgs& p);

// `mirror:` of .lockstep.yml when `mirror` is still empty (the command line
// and the environment win).
Status apply_config_mirror(const pipeline::ProjectConfig& config, std::string& mirror);

// Variables in dotenv syntax, as --secret-file and --env-file read them:
// KEY=VALUE lines (an optional `export ` before KEY; blank lines, `#`
// comment lines, ` #` comments after an unquoted value and CRLF allowed);
// an unquoted value is the rest of the line without surrounding blanks; a
// value in "double quotes" may span lines and knows the escapes \n \r \t
// \a \b \f \v \\ \" \' (any other backslash stays); a value in 'single
// quotes' may span lines and is taken as written. No ${VAR} expansion. The
// last of two lines with one KEY wins. Errors are one line,
// "FILE:LINE: what" (LINE where the entry starts for an unclosed quote);
// text that is not UTF-8 is refused first ("FILE:3:7: invalid UTF-8 (byte 0xC1)").
Result<pipeline::EnvList> parse_dotenv(std::string_view text, const std::string& file);
// parse_dotenv of a file; a read error names `--option`.
Result<pipeline::EnvList> read_dotenv_file(const std::string& file, const char* option);
Result<std::map<std::string, std::string>> read_secret_file(const std::string& file);

// `actions-url` and `actions:` of .lockstep.yml (relative directories are
// relative to the config file); --actions-url (`url_given`) wins.
void apply_config_actions(const pipeline::ProjectConfig& config, ActionsConfig& actions,
                          bool url_given);

// .lockstep.yml below the command line: runs-on mappings the command line
// did not set, the mirror when none was given, default container options.
Status apply_project_config(const pipeline::ProjectConfig& config, RunOptions& o);

}  // namespace lockstep::runner
