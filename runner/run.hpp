#pragma once
// One `lockstep run`: workflow -> job instances -> scheduled containers ->
// summary and reports. The exit code follows the CLI contract: 0 all jobs
// passed, 1 a job failed, 2 usage or workflow error, 130 interrupted.
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/model.hpp"

namespace lockstep::runner {

struct RunOptions {
  std::filesystem::path workflow;
  std::vector<std::string> jobs;                                       // --job ID (empty: all)
  std::vector<std::pair<std::string, std::string>> matrix_filter;      // --matrix K=V
  std::optional<size_t> max_jobs;                                      // --jobs N
  bool list = false;                                                   // --list
  bool dry_run = false;                                                // --dry-run
  pipeline::EnvList env;                                               // --env K=V
  std::map<std::string, std::string> secrets;                          // --secret, --secret-file
  std::map<std::string, std::string> platforms;                        // --platform LABEL=IMAGE
  std::vector<std::pair<std::string, std::filesystem::path>> reports;  // --report kind=FILE
  std::vector<std::string> insecure_registries;                        // --insecure-registry HOST
  std::string mirror;  // --mirror URL, $LOCKSTEP_MIRROR, or mirror: in .lockstep.yml
  std::string repo;    // --repo URL (else the enclosing git repo)
  std::string ref;     // --ref REF
  bool dirty = false;  // --dirty: include uncommitted changes
  // --lock FILE (else the project's lockstep.lock, if any).
  std::filesystem::path lock_file;
  // --frozen: refuse any input lockstep.lock does not pin.
  bool frozen = false;
  // .lockstep.yml defaults (docker syntax).
  std::string default_options;
  std::filesystem::path state_dir;
};

int run_workflow(const RunOptions& options);

}  // namespace lockstep::runner
