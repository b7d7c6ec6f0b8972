#pragma once
// Where reusable workflows are read, for `lockstep run`, `lock`, `replay`
// and `verify` (docs/reusable-workflows.md):
//
// - OWNER/REPO/.github/workflows/X.yml@REF through ActionSources: the same
//   bare mirrors and commit trees as actions, fetched at most once per run,
//   pinned by lockstep.lock or a replay, refused by --frozen when not pinned.
// - ./.github/workflows/X.yml called by the run's own workflow: the file in
//   the run's own repository at the commit the run checks out (with the
//   --dirty patch applied when there is one), as GitHub takes it from the
//   caller's commit. Outside any repository, the file under the project
//   directory: the directory holding .github/ when the workflow lives in
//   .github/workflows/, else the workflow's own directory.
// - ./.github/workflows/X.yml inside a called workflow: the same repository
//   and commit that workflow came from.
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "pipeline/workflow_call.hpp"
#include "runner/engine/action_source.hpp"

namespace lockstep::runner {

// The run's own repository (see resolve_source in run.cpp).
struct OwnRepository {
  std::string url;     // a working tree path or a URL the state dir has a mirror of
  std::string commit;  // empty: the workflow is outside any repository
  std::string patch;   // --dirty
};

class WorkflowFiles {
 public:
  // `workflow`: the run's own workflow file. `frozen`: refuse a repository
  // neither lockstep.lock nor a replay pins.
  WorkflowFiles(std::filesystem::path state_dir, ActionSources& sources, OwnRepository own,
                const std::filesystem::path& workflow, bool frozen);

  // A pipeline::WorkflowLoader.
  Result<std::shared_ptr<const pipeline::CalledWorkflow>> load(const pipeline::CalledWorkflow* from,
                                                               const pipeline::ActionRef& ref);
  pipeline::WorkflowLoader loader() {
    return [this](const pipeline::CalledWorkflow* from, const pipeline::ActionRef& ref) {
      return load(from, ref);
    };
  }

  // The run's own workflow as a CalledWorkflow identity (a call back to it
  // is a cycle); empty when it is not inside its repository.
  std::string root_identity() const;

  // Workflows read from plain files (no repository): path -> text, for the
  // record, so that a replay finds them again.
  std::map<std::string, std::string> files_read() const;

  // The directory ./.github/workflows/X.yml is relative to when the
  // workflow is outside any repository.
  static std::filesystem::path project_root(const std::filesystem::path& workflow);

 private:
  Result<std::string> read_own(const std::string& path);

  std::filesystem::path state_dir_;
  ActionSources& sources_;
  OwnRepository own_;
  std::filesystem::path workflow_;
  bool frozen_;
  mutable std::mutex mu_;
  std::map<std::string, std::string> files_;
};

}  // namespace lockstep::runner
