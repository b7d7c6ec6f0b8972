#pragma once
// A small, strict command-line parser shared by every verb: long options with
// values ("--jobs 4", "--jobs=4"), repeatable options, flags, positionals.
// Unknown options are usage errors that name the option and suggest the
// nearest known one.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace lockstep::runner {

struct OptionSpec {
  std::string name;     // "jobs" for --jobs
  char short_name = 0;  // 'j' for -j, 0 for none
  bool takes_value = false;
  bool repeatable = false;
  std::string value_name;  // "N" in "--jobs N"
  std::string help;
};

// Options several verbs share, each defined once: one name, one help text.
// --mirror URL: reach registries through this pull-through mirror.
OptionSpec mirror_spec();
// --state-dir DIR: lockstep's state directory.
OptionSpec state_dir_spec();
// --server URL: read runs from a lockstep server (runner/records/server_client.hpp).
OptionSpec server_spec();

struct ParsedArgs {
  std::map<std::string, std::vector<std::string>> values;  // option -> values
  std::vector<std::string> positionals;
  bool has(const std::string& name) const { return values.count(name) != 0; }
  std::optional<std::string> get(const std::string& name) const;
  std::vector<std::string> all(const std::string& name) const;
};

class CommandLine {
 public:
  CommandLine(std::string usage, std::string summary, std::vector<OptionSpec> options);
  // Callers check wants_help() first: `--help`/`-h` anywhere prints help.
  Result<ParsedArgs> parse(const std::vector<std::string>& args) const;
  std::string help() const;
  static bool wants_help(const std::vector<std::string>& args);

 private:
  const OptionSpec* find(const std::string& name) const;
  const OptionSpec* find_short(char c) const;
  std::string usage_;
  std::string summary_;
  std::vector<OptionSpec> options_;
};

// Levenshtein-based suggestion: the closest candidate within a small edit
// distance, or "" when none is close.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

// Prints "lockstep: error: <message>" to stderr (one line) and returns the exit
// code that fits the error kind: 2 for usage/workflow errors, 1 otherwise.
int report_error(const Error& e);
// The one way numbers on the command line are read: decimal digits only (no
// sign, no spaces, no suffix), from `min` to `max`; otherwise a usage error
// "OPTION 'VALUE': expected a number from MIN to MAX".
Result<long> parse_number(const std::string& value, const std::string& option, long min, long max);
int usage_error(const std::string& message);

}  // namespace lockstep::runner
