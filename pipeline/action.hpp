#pragma once
// Actions: what a step's `uses:` names, and an action's metadata file
// (action.yml / action.yaml) as GitHub defines them.
//
//   uses: actions/setup-node@v4            repository action (owner/repo@ref)
//   uses: octo/monorepo/tools/lint@v2      an action in a subdirectory
//   uses: ./.github/actions/build          an action inside the workspace
//   uses: docker://alpine:3.19             a container image run as the step
//
// The four actions GitHub's own services back (checkout, cache,
// upload-artifact, download-artifact) are built into lockstep; every other
// reference is fetched from git and run as GitHub runs it. Pure: bytes in,
// model or error out (docs/actions.md).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "pipeline/model.hpp"

namespace lockstep::pipeline {

struct ActionRef {
  enum class Kind { kRepository, kLocal, kDocker };
  Kind kind = Kind::kRepository;
  std::string text;   // as written
  std::string owner;  // kRepository
  std::string repo;
  std::string path;   // inside the repository; empty: its root
  std::string ref;    // tag, branch or commit as written
  std::string local;  // kLocal: the path as written ("./.github/actions/x")
  std::string image;  // kDocker: the image reference

  // "owner/repo".
  std::string repository() const { return owner + "/" + repo; }
  // "owner/repo/path" (no ref).
  std::string name() const { return path.empty() ? repository() : repository() + "/" + path; }
  // One of the built-in actions (any @ref).
  bool builtin() const;
};

// Parses a `uses:` value. Errors are one line without a location (the
// parser adds it): "action 'x/y' needs a version, as in 'x/y@v4'".
Result<ActionRef> parse_action_ref(std::string_view uses);

// Parses a reusable workflow reference of `jobs.<id>.uses`:
// ./.github/workflows/X.yml (kLocal) or OWNER/REPO/.github/workflows/X.yml@REF
// (kRepository, `path` the workflow file).
Result<ActionRef> parse_workflow_ref(std::string_view uses);

enum class ActionKind { kNode, kComposite, kDocker };

struct ActionInput {
  std::string name;
  std::string description;
  bool required = false;
  std::optional<std::string> default_value;  // may hold expressions
  std::string deprecation;                   // deprecationMessage
  SourceLoc loc;
};

struct ActionOutput {
  std::string name;
  std::string description;
  std::string value;  // composite: an expression over steps/inputs/...
  SourceLoc loc;
};

struct ActionManifest {
  std::string file;    // for messages ("actions/setup-node@v4/action.yml")
  std::string source;  // the text, to quote lines in later errors
  std::string name;
  std::string description;
  std::vector<ActionInput> inputs;  // declaration order
  std::vector<ActionOutput> outputs;
  ActionKind kind = ActionKind::kNode;
  std::string using_text;  // "node20", "composite", "docker"
  SourceLoc using_loc;
  int node_major = 0;  // kNode: 12, 16, 20, 24, ...
  // kNode: script paths relative to the action's directory, and conditions.
  std::string main, pre, post, pre_if, post_if;
  // kDocker: "docker://IMAGE" or a Dockerfile path relative to the action.
  std::string image;
  std::vector<std::string> args;  // may hold expressions over inputs
  std::string entrypoint, pre_entrypoint, post_entrypoint;
  EnvList env;
  // kComposite: the steps, as a workflow's steps are parsed (`run` needs
  // `shell`; no `timeout-minutes`).
  std::vector<Step> steps;

  const ActionInput* find_input(std::string_view name) const;
};

// GitHub's name for an input's variable: INPUT_ + the name with spaces
// turned into '_' and upper-cased ("node-version" -> "INPUT_NODE-VERSION").
std::string input_env_name(std::string_view input);

// Parses action.yml bytes; `file` names it in messages. Errors are kWorkflow
// with file:line:col, as for workflows; text that is not UTF-8 is refused
// first, in one line ("action.yml:3:9: invalid UTF-8 (byte 0xC1)").
Result<ActionManifest> parse_action(std::string_view yaml, const std::string& file);

}  // namespace lockstep::pipeline
