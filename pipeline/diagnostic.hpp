#pragma once
// Workflow diagnostics: an error at file:line:column, rendered the way a
// compiler does, with the offending source line quoted and a caret under the
// column:
//
//   ci.yml:12:5: unknown key 'step' in job 'build' (did you mean 'steps'?)
//      12 |     step:
//         |     ^
//
// Errors of kind ErrorKind::kWorkflow carry this rendering as their message;
// the first line alone is the one-line form, and decode_workflow_error()
// recovers the location from it.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "pipeline/model.hpp"

namespace lockstep::pipeline {

struct WorkflowError {
  std::string file;
  int line = 0;    // 1-based; 0 = no location
  int column = 0;  // 1-based
  std::string message;
  std::string source_line;  // the quoted line; empty: no quote

  // "file:line:col: message" (or "file: message" without a location), as
  // printable() (common/utf8.hpp) makes it: one line of UTF-8 text.
  std::string first_line() const;
  // first_line() plus the quoted source line and the caret line, when known.
  std::string render() const;
};

// An Error of kind kWorkflow whose message is err.render().
Error to_error(const WorkflowError& err);

// Builds a located error, quoting line `loc.line` of `source` (the whole
// workflow text; may be empty, then nothing is quoted).
Error workflow_error(const std::string& file, std::string_view source, SourceLoc loc,
                     std::string message);

// The first line of an error message (the one-line form of a workflow error).
std::string_view first_line(const Error& err);

// Recovers file, line, column and message from a kWorkflow error's first line;
// nullopt when the message carries no "file:line:col: " prefix.
std::optional<WorkflowError> decode_workflow_error(const Error& err);

// The candidate nearest to `word` by edit distance (as ninja's
// SpellcheckString), or empty when none is close enough to suggest.
std::string spellcheck(std::string_view word, const std::vector<std::string_view>& candidates);

// " (did you mean 'x'?)" or "" when there is no close candidate.
std::string did_you_mean(std::string_view word, const std::vector<std::string_view>& candidates);

}  // namespace lockstep::pipeline
