#pragma once
// What a run record says to run again, shared by `replay` and `verify`.
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/json.hpp"
#include "pipeline/model.hpp"
#include "runner/engine/run.hpp"
#include "runner/records/record_read.hpp"
#include "runner/records/run_record.hpp"

namespace lockstep::runner {

struct ReplayPlan {
  Json record;
  std::string workflow_text, workflow_path;
  std::map<std::string, std::string> called_files;  // reusable workflows read from files
  std::vector<std::string> selected;                // display names to compare
  std::vector<std::string> job_ids;                 // --job for the run
  std::vector<std::pair<std::string, std::string>> matrix_filter;
  GivenNeeds given_needs;
  std::map<std::string, std::string>
      vars;  // --var of the recorded run  // what the run was given of the jobs it needed (--needs)
  pipeline::EnvList env;
  std::vector<std::string> secret_names;
  std::map<std::string, std::string> platforms;
  bool userns = false;                    // the run used --userns
  std::string network;                    // --network of the recorded run
  std::vector<std::string> egress_allow;  // .lockstep.yml egress.allow it ran with
  bool egress_inspect = false;            // ... and egress.inspect, egress.ca
  std::vector<std::string> egress_ca;
  std::map<std::string, std::string> image_pins;
  std::map<std::string, std::string> action_pins;  // "owner/repo@ref" -> commit
  std::string node_runtime;                        // digest of the Node.js runtime the run used
  std::map<std::string, std::string> fetch_pins;   // URL -> sha256 the run received
  std::map<std::string, Json> expected_docs;
  std::string source_url, source_commit, source_ref, source_patch;
  Json run_identity = Json::object();
};

// "linux/amd64" for this host.
std::string host_platform();

// `job_filter`: a display name or job id; empty: every recorded job.
// Refuses a record without the workflow text and a platform this host
// cannot run.
Result<ReplayPlan> plan_from_record(const LoadedRecord& rec, const std::string& job_filter,
                                    bool check_hashes);
// Imports the images of an exported run (`<record dir>/images/*.tar`, see
// `lockstep runs export`); returns how many tars there were.
Result<size_t> import_bundle(const std::filesystem::path& record_dir,
                             const std::filesystem::path& state);
// Writes the workflow into `scratch` and fills the run's options, what it
// is held to and how it is recorded. Refuses a missing secret the run used.
Status prepare_replay_run(const ReplayPlan& p, const std::filesystem::path& state,
                          const std::filesystem::path& scratch, RunOptions& o, ReplayInputs& replay,
                          RecordSettings& how);

struct ReplayComparison {
  bool matched = true;
  std::vector<std::string> lines;
};
ReplayComparison compare_replay_outputs(const Json& original, const Json& replay,
                                        const std::vector<std::string>& selected);

}  // namespace lockstep::runner
