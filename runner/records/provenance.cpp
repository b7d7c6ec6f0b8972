#include "runner/records/provenance.hpp"

#include <set>

#include "common/fs.hpp"

namespace lockstep::runner {

namespace {

const Json& get(const Json& obj, const char* key) {
  static const Json null_value;
  if (!obj.is_object()) return null_value;
  auto it = obj.find(key);
  return it == obj.end() ? null_value : *it;
}

std::string str(const Json& obj, const char* key) {
  const Json& v = get(obj, key);
  return v.is_string() ? v.get<std::string>() : "";
}

bool all_hex(const std::string& s, size_t n) {
  if (s.size() != n) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// {"sha256": "<hex>"} from "sha256:<hex>"; `field` names it in errors.
Result<Json> digest_set(const std::string& digest, const std::string& field) {
  constexpr std::string_view kPrefix = "sha256:";
  if (digest.rfind(kPrefix, 0) != 0 || !all_hex(digest.substr(kPrefix.size()), 64))
    return fail("provenance: " + field + " is not a sha256 digest: \"" + digest + "\"",
                ErrorKind::kIntegrity);
  return Json{{"sha256", digest.substr(kPrefix.size())}};
}

// Image references become oci:// URIs, the form in-toto's resource
// descriptors use for container images.
std::string oci_uri(const std::string& ref) {
  return "oci://" + ref;
}

// Source URLs and paths as git+ URIs (SPDX download-location style): a local
// path becomes git+file:///path.
std::string git_uri(const std::string& url, const std::string& ref) {
  std::string u = url;
  if (!u.empty() && u[0] == '/') u = "file://" + u;
  return "git+" + u + (ref.empty() ? "" : "@" + ref);
}

Status add_image(Json& deps, std::set<std::string>& seen, const std::string& ref,
                 const std::string& digest, const std::string& field) {
  if (digest.empty()) return {};
  if (!seen.insert(ref + "\n" + digest).second) return {};
  LS_TRY_ASSIGN(Json d, digest_set(digest, field));
  deps.push_back({{"name", ref}, {"uri", oci_uri(ref)}, {"digest", std::move(d)}});
  return {};
}

}  // namespace

Result<Json> provenance_statement(const Json& record) {
  if (str(record, "builder_id").empty())
    return fail("provenance: the record has no builder_id", ErrorKind::kIntegrity);
  const Json& jobs = get(record, "jobs");
  const Json& source = get(record, "source");
  const Json& workflow = get(record, "workflow");
  const Json& options = get(record, "options");

  // Subjects: every artifact and each of its files once, in run order.
  Json subject = Json::array();
  std::set<std::string> seen_subjects;
  Json byproducts = Json::array();
  Json deps = Json::array();
  std::set<std::string> seen_images;
  if (source.is_object() && !str(source, "commit").empty()) {
    std::string commit = str(source, "commit");
    if (!all_hex(commit, 40))
      return fail("provenance: source.commit is not a 40-hex commit: \"" + commit + "\"",
                  ErrorKind::kIntegrity);
    // The record names no branch; the commit is the ref that was built.
    std::string ref = str(source, "ref").empty() ? commit : str(source, "ref");
    deps.push_back(
        {{"uri", git_uri(str(source, "url"), ref)}, {"digest", {{"gitCommit", commit}}}});
  }
  if (jobs.is_array()) {
    for (size_t i = 0; i < jobs.size(); ++i) {
      const Json& job = jobs[i];
      std::string where = "jobs[" + std::to_string(i) + "]";
      for (const auto& a : get(job, "artifacts")) {
        std::string name = str(a, "name");
        LS_TRY_ASSIGN(Json d, digest_set(str(a, "digest"), where + ".artifacts." + name));
        if (seen_subjects.insert(name + "\n" + d.dump()).second)
          subject.push_back({{"name", name}, {"digest", std::move(d)}});
        // Each file too, named as `lockstep artifacts RUN --download DIR`
        // lays it out (DIR/<artifact>/<path>), so `sha256sum` checks it.
        for (const auto& f : get(a, "files")) {
          std::string file = name + "/" + str(f, "path");
          LS_TRY_ASSIGN(Json fd, digest_set(str(f, "digest"), where + ".artifacts." + file));
          if (seen_subjects.insert(file + "\n" + fd.dump()).second)
            subject.push_back({{"name", file}, {"digest", std::move(fd)}});
        }
      }
      const Json& image = get(job, "image");
      LS_TRY(add_image(deps, seen_images, str(image, "ref"), str(image, "manifest_digest"),
                       where + ".image.manifest_digest"));
      for (const auto& s : get(job, "services"))
        LS_TRY(add_image(deps, seen_images, str(s, "image"), str(s, "manifest_digest"),
                         where + ".services." + str(s, "name") + ".manifest_digest"));
      if (!str(job, "env_hash").empty()) {
        LS_TRY_ASSIGN(Json d, digest_set(str(job, "env_hash"), where + ".env_hash"));
        byproducts.push_back({{"name", "env-hash/" + str(job, "name")}, {"digest", std::move(d)}});
      }
    }
  }

  Json wf = {{"path", str(workflow, "path")}, {"name", str(workflow, "name")}};
  if (!str(workflow, "digest").empty()) {
    LS_TRY_ASSIGN(Json d, digest_set(str(workflow, "digest"), "workflow.digest"));
    wf["digest"] = std::move(d);
  }
  Json external = {{"workflow", std::move(wf)}};
  const Json& sel_jobs = get(options, "jobs");
  external["jobs"] = sel_jobs.is_array() ? sel_jobs : Json::array();
  const Json& sel_matrix = get(options, "matrix");
  external["matrix"] = sel_matrix.is_object() ? sel_matrix : Json::object();
  if (source.is_object()) {
    external["repository"] = str(source, "url");
    external["ref"] = str(source, "ref").empty() ? str(source, "commit") : str(source, "ref");
  }

  Json internal = {{"kind", str(record, "kind")},
                   {"lockstepVersion", str(record, "lockstep_version")}};
  if (!str(record, "replay_of").empty()) internal["replayOf"] = str(record, "replay_of");
  const Json& lock = get(record, "lock");
  if (lock.is_object()) internal["lock"] = lock;
  for (const char* key : {"env", "platforms", "secret_names"}) {
    const Json& v = get(options, key);
    if (!v.is_null()) internal[key == std::string("secret_names") ? "secretNames" : key] = v;
  }
  if (source.is_object() && !str(source, "dirty_patch_digest").empty())
    internal["dirtyPatchDigest"] = str(source, "dirty_patch_digest");

  Json metadata = {{"invocationId", str(record, "run_id")}};
  if (!str(record, "started_at").empty()) metadata["startedOn"] = str(record, "started_at");
  if (!str(record, "finished_at").empty()) metadata["finishedOn"] = str(record, "finished_at");

  Json builder = {{"id", str(record, "builder_id")}};
  if (!str(record, "lockstep_version").empty())
    builder["version"] = {{"lockstep", str(record, "lockstep_version")}};

  Json predicate = {
      {"buildDefinition",
       {{"buildType", kLockstepBuildType},
        {"externalParameters", std::move(external)},
        {"internalParameters", std::move(internal)},
        {"resolvedDependencies", std::move(deps)}}},
      {"runDetails",
       {{"builder", std::move(builder)},
        {"metadata", std::move(metadata)},
        {"byproducts", std::move(byproducts)}}},
  };
  return Json{{"_type", kStatementType},
              {"subject", std::move(subject)},
              {"predicateType", kSlsaPredicateType},
              {"predicate", std::move(predicate)}};
}

Status write_provenance(const Json& record, const std::filesystem::path& path) {
  LS_TRY_ASSIGN(Json statement, provenance_statement(record));
  auto st = write_file_atomic(path, pretty_json(statement));
  if (!st) return fail(Error(st.error()).context("write " + path.string()));
  return {};
}

}  // namespace lockstep::runner
