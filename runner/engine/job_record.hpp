#pragma once
// Environment hashes of a job and its steps (docs/environment-hash.md),
// computed from what they cover, and the check a replay makes against the
// recorded documents.
#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/digest.hpp"
#include "common/error.hpp"
#include "common/json.hpp"
#include "executor/spec.hpp"
#include "pipeline/env_hash.hpp"

namespace lockstep::runner {

// What a job's environment hash covers, as the job resolved it before its
// container starts. Values are as the job has them: the document gets every
// secret value in them replaced, and the secrets as keyed hashes.
struct JobHashInput {
  std::string workflow_name;
  std::string job_id;
  std::string display_name;
  Json matrix = Json::object();
  std::string image;  // reference as written
  std::string manifest_digest;
  std::string platform;
  std::string source_commit, source_tree, dirty_patch;
  Json declared = Json::object();  // pipeline::declared_job()
  Json call;                       // a called job: pipeline::call_document(); else null
  const executor::ContainerSpec* spec = nullptr;  // the job container as it starts
  std::map<std::string, std::string> base_env;    // what every step starts from
  // The secrets the job sees by name (hashed under `secret_key`), and every
  // secret value to replace in the document's values.
  std::map<std::string, std::string> secrets, redact;
  std::string secret_key;
  // What lockstep mounts, by container path: ("workspace", ""), ("home",
  // ""), ("named-volume", NAME), ...; any other mount is a "volume".
  std::map<std::string, std::pair<std::string, std::string>> mount_kinds;
  std::vector<std::string> egress_allow;  // of the run's egress network, if any
  bool egress_inspect = false;
  bool limits_enforced = true;
  bool bash = false;  // the image has bash, the default shell
  std::chrono::milliseconds job_timeout{0};
  std::vector<pipeline::EnvService> services;      // images resolved, env and options evaluated
  std::map<std::string, pipeline::EnvNeed> needs;  // results, outputs, artifact digests
  std::string node_runtime;                        // its digest; empty: the job uses no actions
  std::map<std::string, std::string> checkouts;    // "url@ref" -> commit
  std::map<std::string, std::string> actions;      // "owner/repo@ref" -> commit
};

struct EnvHash {
  Json doc;  // the canonical document
  Digest digest;
};

Result<EnvHash> job_env_hash(const JobHashInput& in);
// How a mapping is named in the environment hash ("0:100000:65536").
std::string describe_user_namespace(const executor::UserNamespace& u);
// A step's hash, chained from the one before (the job's for the first step).
Result<EnvHash> step_env_hash(const pipeline::StepEnvInputs& in, const Digest& previous);

// A replay: fails when `expected` holds a document for `key` (a display
// name; "NAME#N" for step N) that differs from `doc`, naming the first
// differences. Null `expected`: nothing to check.
Status check_expected_doc(const std::map<std::string, Json>* expected, const std::string& key,
                          const Json& doc);

}  // namespace lockstep::runner
