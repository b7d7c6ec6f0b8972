#include "runner/engine/job_record.hpp"

#include <cmath>
#include <cstdlib>
#include <tuple>

namespace lockstep::runner {

namespace {

std::map<std::string, std::string> env_map(const std::vector<std::string>& env) {
  std::map<std::string, std::string> m;
  for (const auto& e : env) {
    auto eq = e.find('=');
    if (eq == std::string::npos) continue;
    m[e.substr(0, eq)] = e.substr(eq + 1);
  }
  return m;
}

}  // namespace

Result<EnvHash> job_env_hash(const JobHashInput& job) {
  const executor::ContainerSpec& spec = *job.spec;
  auto secret_free = [&](const std::string& text) {
    return pipeline::redact_secrets(text, job.redact);
  };
  pipeline::JobEnvInputs in;
  in.workflow_name = job.workflow_name;
  in.job_id = job.job_id;
  in.job_name = job.display_name;
  in.matrix = job.matrix;
  in.image = job.image;
  in.manifest_digest = job.manifest_digest;
  in.platform = job.platform;
  in.source_commit = job.source_commit;
  in.source_tree = job.source_tree;
  if (!job.dirty_patch.empty()) in.dirty_patch_digest = sha256_of(job.dirty_patch).str();
  in.declared = job.declared;
  in.call = job.call;
  // The container's environment and the job's base environment (what every
  // step starts from; each step's full environment is in its document).
  for (const auto& [k, v] : env_map(spec.env)) in.env["container:" + k] = secret_free(v);
  for (const auto& [k, v] : job.base_env) in.env[k] = secret_free(v);
  for (const auto& [k, v] : job.secrets) in.secrets[k] = pipeline::keyed_hash(job.secret_key, v);
  in.workdir = spec.workdir;
  for (const auto& m : spec.mounts) {
    std::string kind = "volume", name;
    if (auto k = job.mount_kinds.find(m.target); k != job.mount_kinds.end())
      std::tie(kind, name) = k->second;
    in.mounts.push_back({m.target, m.read_only, kind, name});
  }
  in.user = spec.user;
  in.umask = spec.umask;
  in.hostname = spec.hostname;
  in.domainname = spec.domainname;
  in.network = executor::to_string(spec.network);
  in.egress_allow = job.egress_allow;
  in.egress_inspect = job.egress_inspect;
  if (spec.user_namespace) in.user_namespace = describe_user_namespace(*spec.user_namespace);
  in.memory_bytes = spec.limits.memory_bytes;
  if (spec.limits.cpus) in.cpus_milli = std::llround(*spec.limits.cpus * 1000);
  in.pids = spec.limits.pids;
  in.cpuset = spec.limits.cpuset;
  in.limits_enforced = job.limits_enforced;
  in.cap_add = spec.cap_add;
  in.cap_drop = spec.cap_drop;
  in.seccomp_profile_digest = spec.seccomp_profile.empty() ? "default"
                              : spec.seccomp_profile == "unconfined"
                                  ? "unconfined"
                                  : sha256_of(spec.seccomp_profile).str();
  in.executor_protocol = executor::kProtocolVersion;
  in.shell_default = job.bash ? "bash" : "sh";
  auto get = [&](const char* k) {
    auto it = job.base_env.find(k);
    return it == job.base_env.end() ? std::string() : it->second;
  };
  in.source_date_epoch = std::strtoll(get("SOURCE_DATE_EPOCH").c_str(), nullptr, 10);
  in.tz = get("TZ");
  in.locale = get("LANG");
  in.job_timeout_ms = job.job_timeout.count();
  in.services = job.services;
  for (auto& s : in.services)
    for (auto& [k, v] : s.env) v = secret_free(v);
  in.needs = job.needs;
  for (auto& [id, n] : in.needs)
    for (auto& [k, v] : n.outputs) v = secret_free(v);
  in.node_runtime = job.node_runtime;
  in.checkouts = job.checkouts;
  in.actions = job.actions;
  EnvHash h;
  h.doc = pipeline::job_document(in);
  LS_TRY_ASSIGN(h.digest, pipeline::hash_document(h.doc));
  return h;
}

std::string describe_user_namespace(const executor::UserNamespace& u) {
  auto map = [](const std::vector<executor::IdMapping>& m) {
    std::string out;
    for (const auto& e : m)
      out += (out.empty() ? "" : ",") + std::to_string(e.container_id) + ":" +
             std::to_string(e.host_id) + ":" + std::to_string(e.size);
    return out;
  };
  std::string uid = map(u.uid_map), gid = map(u.gid_map);
  std::string out = uid == gid ? uid : "uid " + uid + " gid " + gid;
  return u.allow_setgroups ? out : out + " setgroups=deny";
}

Result<EnvHash> step_env_hash(const pipeline::StepEnvInputs& in, const Digest& previous) {
  EnvHash h;
  h.doc = pipeline::step_document(in, previous);
  LS_TRY_ASSIGN(h.digest, pipeline::hash_document(h.doc));
  return h;
}

Status check_expected_doc(const std::map<std::string, Json>* expected, const std::string& key,
                          const Json& doc) {
  if (!expected) return {};
  auto it = expected->find(key);
  if (it == expected->end()) return {};
  if (it->second == doc) return {};
  auto diffs = json_differences(it->second, doc, 5);
  std::string what;
  for (const auto& d : diffs) what += (what.empty() ? "" : "; ") + d;
  auto at = key.find('#');
  std::string where = at == std::string::npos ? "job" : "step " + key.substr(at + 1);
  return fail(
      "replay: the environment of " + where + " differs from the record (recorded -> now): " + what,
      ErrorKind::kIntegrity);
}

}  // namespace lockstep::runner
