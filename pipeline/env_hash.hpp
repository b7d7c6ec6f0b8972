#pragma once
// The environment hash: sha256 over the canonical JSON (sorted keys, no
// whitespace, UTF-8, no floats) of every declared input of a job instance,
// and of each step, chained from the job's hash. The same inputs give the
// same hash on any host; every field is documented, with why it is there, in
// docs/environment-hash.md. Pure: the runner gathers the inputs, this turns
// them into the document and the digest.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/digest.hpp"
#include "common/error.hpp"
#include "common/json.hpp"
#include "pipeline/model.hpp"

namespace lockstep::pipeline {

// Bumped whenever the document's shape or meaning changes.
// 2: container.network may be "egress", with container.egress_allow.
inline constexpr int kEnvHashSchema = 2;

// Variables whose values identify a run rather than define it. Their names
// are hashed, their values are not (a replay restores the recorded values).
bool is_run_identity_var(const std::string& name);

struct EnvMount {
  std::string target;  // container path only: host paths differ per host
  bool read_only = true;
  // "workspace", "home", "hosts", "runtime", "toolcache", "volume" (a host
  // bind of container.volumes), "named-volume", "anonymous-volume"
  std::string kind;
  std::string name;  // a named volume's name (else empty: not in the document)
};

struct EnvService {
  std::string name;
  std::string image;            // reference as written (after expressions)
  std::string manifest_digest;  // what it resolved to
  std::map<std::string, std::string> env;
  std::string options;  // docker-style options text, after expressions
};

struct EnvNeed {
  std::string result;
  std::map<std::string, std::string> outputs;
  std::map<std::string, std::string> artifacts;  // name -> digest
};

struct JobEnvInputs {
  std::string workflow_name;
  std::string job_id;
  std::string job_name;  // display name, with matrix values
  Json matrix = Json::object();
  // Image.
  std::string image;            // reference as written
  std::string manifest_digest;  // sha256:...
  std::string platform = "linux/amd64";
  // Source.
  std::string source_commit;  // 40 hex, empty when not run from a repository
  std::string source_tree;
  std::string dirty_patch_digest;  // empty: clean
  // The job as declared (declared_job): steps with expressions unevaluated;
  // their resolved forms are in the step documents.
  Json declared = Json::object();
  // The job container's base environment: image config env, container env
  // and options, workflow and job env, --env. Secret values already replaced.
  std::map<std::string, std::string> env;
  std::map<std::string, std::string> secrets;  // name -> keyed hash
  // Container.
  std::string workdir;
  std::vector<EnvMount> mounts;
  std::string user;
  uint32_t umask = 022;
  std::string hostname;
  std::string domainname;
  std::string network;  // egress | none | host
  // For egress: the allow-list as written (empty: every public address).
  std::vector<std::string> egress_allow;
  // For egress: HTTPS inspection (a CA of the run in the job's trust
  // stores); only in the document when true.
  bool egress_inspect = false;
  // "0:100000:65536" (uid map; the gid map when it differs: "uid ... gid ..."),
  // empty: the host's user namespace (then not in the document at all).
  std::string user_namespace;
  std::optional<uint64_t> memory_bytes;
  std::optional<int64_t> cpus_milli;
  std::optional<int64_t> pids;
  std::optional<std::string> cpuset;
  // false: the limits above were not enforced (rootless without a delegated
  // cgroup); only then in the document, as limits.enforced = false.
  bool limits_enforced = true;
  std::vector<std::string> cap_add, cap_drop;
  std::string seccomp_profile_digest;  // of the profile text; "default"/"unconfined" named
  int executor_protocol = 0;
  std::string shell_default;  // "bash" when the image has bash, else "sh"
  // Reproducibility knobs lockstep sets.
  int64_t source_date_epoch = 0;
  std::string tz;
  std::string locale;
  // Timeouts (milliseconds).
  int64_t job_timeout_ms = 0;
  std::vector<EnvService> services;
  std::map<std::string, EnvNeed> needs;
  // lockstep's Node.js runtime mounted for actions ("sha256:..."); empty:
  // the job uses no actions (then not in the document).
  std::string node_runtime;
  // Repository actions the job resolved before it started: "owner/repo@ref"
  // -> commit (empty: none; then not in the document).
  std::map<std::string, std::string> actions;
  // actions/checkout of other repositories or refs, resolved before the job
  // started: "url@ref" -> commit (empty: none; then not in the document).
  std::map<std::string, std::string> checkouts;
  // A job of a called workflow: workflow_call.hpp's call_document() (the
  // workflow file, its repository and commit, the callers, the inputs).
  // Null: a job of the run's own workflow (then not in the document).
  Json call;
};

struct StepEnvInputs {
  size_t index = 0;  // 0-based
  std::string id;
  std::string name;
  std::string kind;  // "run" or "uses"
  // run steps
  std::string script;  // after expressions, secrets replaced
  std::vector<std::string> argv;
  std::string workdir;
  // uses steps
  std::string uses;
  std::map<std::string, std::string> with;
  // An action lockstep runs from its metadata (not a built-in): what it is
  // and which exact code (repository commit, or the metadata's digest for a
  // local action, the runtime for JavaScript). Null: built-in action.
  Json action;
  std::map<std::string, std::string> env;  // the full environment of the step
  int64_t timeout_ms = 0;
  bool continue_on_error = false;
};

// The job's declared behaviour, independent of YAML layout, key order and
// comments: steps (run, uses, with, shell, working-directory, env in
// declaration order, if, timeout, continue-on-error), defaults (workflow's
// and job's), if, outputs, timeout and continue-on-error texts.
Json declared_job(const Workflow& wf, const Job& job);

Json job_document(const JobEnvInputs& in);
// `previous` is the job's hash for the first step, else the previous step's.
Json step_document(const StepEnvInputs& in, const Digest& previous);

// sha256 of canonical_json(doc). Refuses floats (canonical_json does).
Result<Digest> hash_document(const Json& doc);

// HMAC-SHA256 of `value` under `key`, "hmac-sha256:<hex>".
std::string keyed_hash(std::string_view key, std::string_view value);

// Replaces every occurrence of each secret value in `text` with
// "${{ secrets.NAME }}" (longest values first), then each line of a
// multi-line secret that is still there with "***" (as logs mask them).
std::string redact_secrets(std::string text, const std::map<std::string, std::string>& secrets);

// JSON values with floats turned into their text (matrix values from YAML
// may be floats; canonical JSON has none).
Json without_floats(const Json& v);

}  // namespace lockstep::pipeline
