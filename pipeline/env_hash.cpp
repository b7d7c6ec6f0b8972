#include "pipeline/env_hash.hpp"

#include <openssl/hmac.h>

#include <algorithm>
#include <cstdio>

namespace lockstep::pipeline {

namespace {

const char* const kRunIdentity[] = {"GITHUB_RUN_ID", "GITHUB_RUN_NUMBER", "GITHUB_RUN_ATTEMPT"};

Json env_object(const std::map<std::string, std::string>& env) {
  Json o = Json::object();
  for (const auto& [k, v] : env) o[k] = is_run_identity_var(k) ? Json("<run identity>") : Json(v);
  return o;
}

std::string octal(uint32_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", mode & 07777);
  return buf;
}

}  // namespace

bool is_run_identity_var(const std::string& name) {
  return std::find(std::begin(kRunIdentity), std::end(kRunIdentity), name) !=
         std::end(kRunIdentity);
}

Json without_floats(const Json& v) {
  if (v.is_number_float()) return v.dump();
  if (v.is_array()) {
    Json a = Json::array();
    for (const auto& e : v) a.push_back(without_floats(e));
    return a;
  }
  if (v.is_object()) {
    Json o = Json::object();
    for (auto it = v.begin(); it != v.end(); ++it) o[it.key()] = without_floats(it.value());
    return o;
  }
  return v;
}

Json declared_job(const Workflow& wf, const Job& job) {
  auto env_list = [](const EnvList& env) {
    // Declaration order does not matter to what a step sees (later keys of
    // the same name cannot occur): sorted by the object.
    Json o = Json::object();
    for (const auto& [k, v] : env) o[k] = v;
    return o;
  };
  Json steps = Json::array();
  for (const auto& s : job.steps) {
    Json st = Json::object();
    st["id"] = s.id;
    st["name"] = s.name;
    if (s.run) st["run"] = *s.run;
    if (s.uses) st["uses"] = *s.uses;
    Json with = Json::object();
    for (const auto& [k, v] : s.with) with[k] = v;
    st["with"] = with;
    st["shell"] = s.shell;
    st["working_directory"] = s.working_directory;
    st["env"] = env_list(s.env);
    st["if"] = s.if_expr;
    st["timeout_minutes"] = s.timeout_minutes;
    st["continue_on_error"] = s.continue_on_error;
    steps.push_back(std::move(st));
  }
  Json outputs = Json::object();
  for (const auto& [k, v] : job.outputs) outputs[k] = v;
  return {
      {"steps", steps},
      {"defaults",
       {{"workflow",
         {{"shell", wf.defaults.shell}, {"working_directory", wf.defaults.working_directory}}},
        {"job",
         {{"shell", job.defaults.shell}, {"working_directory", job.defaults.working_directory}}}}},
      {"if", job.if_expr},
      {"outputs", outputs},
      {"timeout_minutes", job.timeout_minutes},
      {"continue_on_error", job.continue_on_error}};
}

Json job_document(const JobEnvInputs& in) {
  Json d;
  d["schema"] = "lockstep.env/v" + std::to_string(kEnvHashSchema);
  d["kind"] = "job";
  d["workflow"] = in.workflow_name;
  d["job"] = {{"id", in.job_id}, {"name", in.job_name}};
  d["matrix"] = without_floats(in.matrix.is_null() ? Json::object() : in.matrix);
  d["image"] = {
      {"reference", in.image}, {"manifest_digest", in.manifest_digest}, {"platform", in.platform}};
  d["source"] = {{"commit", in.source_commit},
                 {"tree", in.source_tree},
                 {"dirty_patch_digest", in.dirty_patch_digest}};
  d["declared"] = without_floats(in.declared);
  d["env"] = env_object(in.env);
  Json secrets = Json::object();
  for (const auto& [k, v] : in.secrets) secrets[k] = v;
  d["secrets"] = secrets;
  Json mounts = Json::array();
  std::vector<EnvMount> sorted = in.mounts;
  std::sort(sorted.begin(), sorted.end(),
            [](const EnvMount& a, const EnvMount& b) { return a.target < b.target; });
  for (const auto& m : sorted) {
    Json mount = {{"target", m.target}, {"read_only", m.read_only}, {"kind", m.kind}};
    if (!m.name.empty()) mount["name"] = m.name;
    mounts.push_back(std::move(mount));
  }
  Json limits = Json::object();
  limits["memory_bytes"] = in.memory_bytes ? Json(*in.memory_bytes) : Json(nullptr);
  limits["cpus_milli"] = in.cpus_milli ? Json(*in.cpus_milli) : Json(nullptr);
  limits["pids"] = in.pids ? Json(*in.pids) : Json(nullptr);
  limits["cpuset"] = in.cpuset ? Json(*in.cpuset) : Json(nullptr);
  if (!in.limits_enforced) limits["enforced"] = false;
  std::vector<std::string> add = in.cap_add, drop = in.cap_drop;
  std::sort(add.begin(), add.end());
  std::sort(drop.begin(), drop.end());
  d["container"] = {{"workdir", in.workdir},
                    {"mounts", mounts},
                    {"user", in.user},
                    {"umask", octal(in.umask)},
                    {"hostname", in.hostname},
                    {"domainname", in.domainname},
                    {"network", in.network},
                    {"limits", limits},
                    {"cap_add", add},
                    {"cap_drop", drop},
                    {"seccomp_profile", in.seccomp_profile_digest},
                    {"executor_protocol", in.executor_protocol},
                    {"default_shell", in.shell_default}};
  if (!in.user_namespace.empty()) d["container"]["user_namespace"] = in.user_namespace;
  if (in.network == "egress") {
    std::vector<std::string> allow = in.egress_allow;
    if (allow.empty()) allow = {"*"};
    std::sort(allow.begin(), allow.end());
    allow.erase(std::unique(allow.begin(), allow.end()), allow.end());
    d["container"]["egress_allow"] = allow;
    if (in.egress_inspect) d["container"]["egress_inspect"] = true;
  }
  d["reproducibility"] = {
      {"source_date_epoch", in.source_date_epoch}, {"tz", in.tz}, {"locale", in.locale}};
  d["timeouts"] = {{"job_ms", in.job_timeout_ms}};
  Json services = Json::object();
  for (const auto& s : in.services)
    services[s.name] = {{"image", s.image},
                        {"manifest_digest", s.manifest_digest},
                        {"env", env_object(s.env)},
                        {"options", s.options}};
  d["services"] = services;
  Json needs = Json::object();
  for (const auto& [id, n] : in.needs) {
    Json outputs = Json::object(), artifacts = Json::object();
    for (const auto& [k, v] : n.outputs) outputs[k] = v;
    for (const auto& [k, v] : n.artifacts) artifacts[k] = v;
    needs[id] = {{"result", n.result}, {"outputs", outputs}, {"artifacts", artifacts}};
  }
  d["needs"] = needs;
  if (!in.node_runtime.empty()) d["node_runtime"] = in.node_runtime;
  if (!in.checkouts.empty()) {
    Json checkouts = Json::object();
    for (const auto& [k, v] : in.checkouts) checkouts[k] = v;
    d["checkouts"] = checkouts;
  }
  if (!in.actions.empty()) {
    Json actions = Json::object();
    for (const auto& [k, v] : in.actions) actions[k] = v;
    d["actions"] = actions;
  }
  if (!in.call.is_null()) d["workflow_call"] = without_floats(in.call);
  return d;
}

Json step_document(const StepEnvInputs& in, const Digest& previous) {
  Json d;
  d["schema"] = "lockstep.env/v" + std::to_string(kEnvHashSchema);
  d["kind"] = "step";
  d["previous"] = previous.str();
  d["index"] = static_cast<int64_t>(in.index);
  d["id"] = in.id;
  d["name"] = in.name;
  d["type"] = in.kind;
  if (in.kind == "uses") {
    Json with = Json::object();
    for (const auto& [k, v] : in.with) with[k] = v;
    d["uses"] = in.uses;
    d["with"] = with;
    if (!in.action.is_null()) d["action"] = in.action;
  } else {
    d["script"] = in.script;
    d["argv"] = in.argv;
  }
  d["workdir"] = in.workdir;
  d["env"] = env_object(in.env);
  d["timeout_ms"] = in.timeout_ms;
  d["continue_on_error"] = in.continue_on_error;
  return d;
}

Result<Digest> hash_document(const Json& doc) {
  LS_TRY_ASSIGN(std::string text, canonical_json(doc));
  return sha256_of(text);
}

std::string keyed_hash(std::string_view key, std::string_view value) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(value.data()), value.size(), out, &len);
  static const char* hexd = "0123456789abcdef";
  std::string s = "hmac-sha256:";
  for (unsigned int i = 0; i < len; ++i) {
    s += hexd[out[i] >> 4];
    s += hexd[out[i] & 15];
  }
  return s;
}

std::string redact_secrets(std::string text, const std::map<std::string, std::string>& secrets) {
  std::vector<std::pair<std::string, std::string>> by_len(secrets.begin(), secrets.end());
  std::sort(by_len.begin(), by_len.end(),
            [](const auto& a, const auto& b) { return a.second.size() > b.second.size(); });
  for (const auto& [name, value] : by_len) {
    if (value.empty()) continue;
    std::string repl = "${{ secrets." + name + " }}";
    for (size_t pos = 0; (pos = text.find(value, pos)) != std::string::npos;) {
      text.replace(pos, value.size(), repl);
      pos += repl.size();
    }
  }
  // A line of a multi-line secret on its own (a step echoed one line of a
  // key): replaced as the log masks it.
  std::vector<std::string> lines;
  for (const auto& [name, value] : by_len) {
    if (value.find_first_of("\r\n") == std::string::npos) continue;
    for (size_t start = 0; start <= value.size();) {
      size_t end = value.find_first_of("\r\n", start);
      if (end == std::string::npos) end = value.size();
      std::string line = value.substr(start, end - start);
      size_t b = line.find_first_not_of(" \t"), e = line.find_last_not_of(" \t");
      if (b != std::string::npos) lines.push_back(line.substr(b, e - b + 1));
      start = end + 1;
    }
  }
  std::sort(lines.begin(), lines.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const auto& line : lines)
    for (size_t pos = 0; (pos = text.find(line, pos)) != std::string::npos; pos += 3)
      text.replace(pos, line.size(), "***");
  return text;
}

}  // namespace lockstep::pipeline
