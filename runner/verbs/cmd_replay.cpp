// `lockstep replay`: re-executes recorded jobs from the record alone and
// checks that they arrive at the recorded environment hashes and outputs.
#include <sys/utsname.h>

#include <algorithm>
#include <cstdio>
#include <set>

#include "cache/artifacts.hpp"
#include "cache/git_trees.hpp"
#include "cache/import_archive.hpp"
#include "common/fs.hpp"
#include "common/paths.hpp"
#include "runner/cli/cli.hpp"
#include "runner/engine/job_plan.hpp"
#include "runner/engine/pull.hpp"
#include "runner/engine/run.hpp"
#include "runner/engine/secret_key.hpp"
#include "runner/engine/workflow_source.hpp"
#include "runner/records/fetch_view.hpp"
#include "runner/records/record.hpp"
#include "runner/records/record_read.hpp"
#include "runner/records/server_client.hpp"
#include "runner/verbs/cmd_records.hpp"
#include "runner/verbs/replay_plan.hpp"
#include "runner/verbs/run_options.hpp"

namespace lockstep::runner {
namespace fs = std::filesystem;

std::string host_platform() {
  struct utsname u {};
  std::string m = ::uname(&u) == 0 ? u.machine : "x86_64";
  if (m == "x86_64") return "linux/amd64";
  if (m == "aarch64") return "linux/arm64";
  if (m == "armv7l") return "linux/arm/v7";
  if (m == "i686" || m == "i386") return "linux/386";
  return "linux/" + m;
}

Result<ReplayPlan> plan_from_record(const LoadedRecord& rec, const std::string& job_filter,
                                    bool check_hashes) {
  Json r = Json::parse(rec.doc.dump());
  ReplayPlan p;
  p.record = r;
  Json record_pins;
  add_record_pins(Json(), record_pins);
  const std::string file = rec.file.string();
  if (!r.contains("workflow") || !r["workflow"].is_object() || !r["workflow"].contains("text") ||
      !r["workflow"]["text"].is_string())
    return fail("record " + file + " does not hold the workflow text", ErrorKind::kUsage);
  // Which recorded instances to run again.
  std::set<std::string> job_ids;
  std::vector<std::string> names;
  for (const auto& j : r["jobs"]) {
    std::string name = json_string(j, "name");
    names.push_back(name);
    // Every recorded job's images (its own, its services', Docker actions'),
    // actions and reusable workflows at the commits they ran, and
    // documents: a selected job may need others, which then run (and are
    // checked) too.
    add_record_pins(j, record_pins);
    if (check_hashes && j.contains("env_doc") && j["env_doc"].is_object() &&
        !j["env_doc"].empty()) {
      p.expected_docs[name] = j["env_doc"];
      if (j.contains("steps") && j["steps"].is_array())
        for (const auto& s : j["steps"])
          if (s.contains("env_doc") && s["env_doc"].is_object())
            p.expected_docs[name + "#" + std::to_string(json_int(s, "index"))] = s["env_doc"];
    }
    bool wanted = job_filter.empty() || job_filter == name || job_filter == json_string(j, "id");
    if (!wanted) continue;
    if (json_string(j, "result") == "skipped" && json_string(j, "env_hash").empty() &&
        !job_filter.empty())
      return fail("job '" + name + "' was skipped in run " + json_string(r, "run_id") +
                      ": there is nothing to replay",
                  ErrorKind::kUsage);
    // A job of a called workflow runs through its outermost calling job
    // (the whole call runs again; only the selected job is compared).
    const bool called = j.contains("call") && j["call"].is_object() &&
                        j["call"].contains("callers") && j["call"]["callers"].is_array() &&
                        !j["call"]["callers"].empty() && j["call"]["callers"][0].is_string();
    job_ids.insert(called ? j["call"]["callers"][0].get<std::string>() : json_string(j, "id"));
    p.selected.push_back(name);
    if (!called && job_filter == name && j.contains("matrix") && j["matrix"].is_object())
      for (auto it = j["matrix"].begin(); it != j["matrix"].end(); ++it)
        p.matrix_filter.emplace_back(
            it.key(), it.value().is_string() ? it.value().get<std::string>() : it.value().dump());
    // Platform: this host must run what the job ran on.
    std::string platform = j.contains("image") ? json_string(j["image"], "platform") : "";
    if (!platform.empty() && platform != host_platform())
      return fail("job '" + name + "' was recorded on " + platform + "; this host runs " +
                      host_platform() + " (replay it on a " + platform + " host)",
                  ErrorKind::kUnsupported);
  }
  for (const auto& [what, into] :
       {std::pair<const char*, std::map<std::string, std::string>*>{"images", &p.image_pins},
        {"actions", &p.action_pins}})
    for (auto it = record_pins[what].begin(); it != record_pins[what].end(); ++it)
      (*into)[it.key()] = it->get<std::string>();
  p.node_runtime = record_pins["runtime"].get<std::string>();
  if (p.selected.empty()) {
    std::string hint = closest_match(job_filter, names);
    return fail("run " + json_string(r, "run_id") + " has no job '" + job_filter + "'" +
                    (hint.empty() ? "" : " (did you mean '" + hint + "'?)"),
                ErrorKind::kNotFound);
  }
  p.job_ids.assign(job_ids.begin(), job_ids.end());
  // What the recorded jobs downloaded is served again from the content
  // store: the same bytes, without the network.
  if (auto pins = pinned_fetches(rec.doc))
    for (const auto& f : *pins) p.fetch_pins[f.url] = f.sha256;
  if (r.contains("options") && r["options"].is_object()) {
    const auto& o = r["options"];
    if (o.contains("env") && o["env"].is_object())
      for (auto it = o["env"].begin(); it != o["env"].end(); ++it)
        p.env.emplace_back(it.key(), it.value().get<std::string>());
    if (o.contains("secret_names") && o["secret_names"].is_array())
      for (const auto& n : o["secret_names"]) p.secret_names.push_back(n.get<std::string>());
    if (o.contains("platforms") && o["platforms"].is_object())
      for (auto it = o["platforms"].begin(); it != o["platforms"].end(); ++it)
        p.platforms[it.key()] = it.value().get<std::string>();
    if (o.contains("userns") && o["userns"].is_boolean()) p.userns = o["userns"].get<bool>();
    if (o.contains("network") && o["network"].is_string())
      p.network = o["network"].get<std::string>();
    if (o.contains("egress_allow") && o["egress_allow"].is_array())
      for (const auto& e : o["egress_allow"])
        if (e.is_string()) p.egress_allow.push_back(e.get<std::string>());
    if (o.contains("egress_inspect") && o["egress_inspect"].is_boolean())
      p.egress_inspect = o["egress_inspect"].get<bool>();
    if (o.contains("egress_ca") && o["egress_ca"].is_array())
      for (const auto& e : o["egress_ca"])
        if (e.is_string()) p.egress_ca.push_back(e.get<std::string>());
    if (job_filter.empty() && o.contains("jobs") && o["jobs"].is_array() && !o["jobs"].empty()) {
      p.job_ids.clear();
      for (const auto& id : o["jobs"]) p.job_ids.push_back(id.get<std::string>());
    }
    if (o.contains("vars") && o["vars"].is_object())
      for (auto it = o["vars"].begin(); it != o["vars"].end(); ++it)
        if (it->is_string()) p.vars[it.key()] = it->get<std::string>();
    if (o.contains("needs")) {
      LS_TRY_ASSIGN(p.given_needs, given_needs_from_json(o["needs"], "record options.needs"));
    }
    if (job_filter.empty() && o.contains("matrix") && o["matrix"].is_object())
      for (auto it = o["matrix"].begin(); it != o["matrix"].end(); ++it)
        p.matrix_filter.emplace_back(it.key(), it.value().get<std::string>());
  }
  if (r.contains("source") && r["source"].is_object()) {
    const auto& s = r["source"];
    p.source_url = json_string(s, "url");
    p.source_commit = json_string(s, "commit");
    p.source_ref = json_string(s, "ref");
    if (s.contains("dirty_patch") && s["dirty_patch"].is_string())
      p.source_patch = s["dirty_patch"].get<std::string>();
  }
  if (r.contains("run_identity") && r["run_identity"].is_object())
    p.run_identity = r["run_identity"];
  p.workflow_text = r["workflow"]["text"].get<std::string>();
  if (r["workflow"].contains("called_files") && r["workflow"]["called_files"].is_object())
    for (auto it = r["workflow"]["called_files"].begin(); it != r["workflow"]["called_files"].end();
         ++it)
      if (it.value().is_string()) p.called_files[it.key()] = it.value().get<std::string>();
  p.workflow_path = json_string(r["workflow"], "path", "workflow.yml");
  return p;
}

Result<size_t> import_bundle(const fs::path& record_dir, const fs::path& state) {
  std::error_code ec;
  fs::path dir = record_dir / "images";
  std::vector<fs::path> tars;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::end(it); it.increment(ec))
    if (it->path().extension() == ".tar") tars.push_back(it->path());
  std::sort(tars.begin(), tars.end());
  cache::ImageStore store(state);
  for (const auto& t : tars) {
    auto r = cache::import_any(store, t, std::nullopt);
    if (!r) return fail(std::move(r.error()).context("import " + t.string()));
  }
  // Action trees by commit (the names are checked: 40 hex).
  cache::GitTrees trees(state);
  for (auto it = fs::directory_iterator(record_dir / "actions", ec); !ec && it != fs::end(it);
       it.increment(ec))
    LS_TRY(trees.adopt(it->path().filename().string(), it->path()));
  // The Node.js runtime the run used (self-contained; see node_runtime.hpp).
  for (auto it = fs::directory_iterator(record_dir / "runtimes", ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    fs::path to = state / "runtimes" / it->path().filename();
    if (fs::exists(to)) continue;
    fs::create_directories(to.parent_path());
    LS_TRY_ASSIGN(TempDir tmp, TempDir::create(to.parent_path(), ".tmp-import-"));
    std::error_code cec;
    fs::copy(it->path(), tmp.path() / "r", fs::copy_options::recursive, cec);
    if (cec) return fail("import " + it->path().string() + ": " + cec.message());
    if (::rename((tmp.path() / "r").c_str(), to.c_str()) != 0 && errno != EEXIST &&
        errno != ENOTEMPTY)
      return fail_errno("import " + it->path().string());
  }
  return tars.size();
}

Status prepare_replay_run(const ReplayPlan& p, const fs::path& state, const fs::path& scratch,
                          RunOptions& o, ReplayInputs& ex, RecordSettings& how) {
  fs::path wf = scratch / fs::path(p.workflow_path).filename();
  if (wf.filename().empty()) wf = scratch / "workflow.yml";
  LS_TRY(write_file_atomic(wf, p.workflow_text));
  // Reusable workflows the run read from plain files, where the copy finds
  // them again (relative to the project directory; see workflow_source.hpp).
  for (const auto& [path, text] : p.called_files) {
    fs::path rel = fs::path(path).lexically_normal();
    if (rel.is_absolute() || rel.empty() || *rel.begin() == "..")
      return fail("record: called workflow path '" + path + "' leaves the project directory",
                  ErrorKind::kUsage);
    fs::path to = WorkflowFiles::project_root(wf) / rel;
    std::error_code ec;
    fs::create_directories(to.parent_path(), ec);
    LS_TRY(write_file_atomic(to, text));
  }
  o.workflow = wf;
  o.state_dir = state;
  o.jobs = p.job_ids;
  o.matrix_filter = p.matrix_filter;
  o.given_needs = p.given_needs;
  o.vars = p.vars;
  o.env = p.env;
  o.platforms = p.platforms;
  o.userns = p.userns;
  o.network = p.network;
  for (const auto& text : p.egress_allow) {
    LS_TRY_ASSIGN(auto e, pipeline::parse_egress_allow(text));
    o.egress_allow.push_back(std::move(e));
  }
  o.egress_inspect = p.egress_inspect;
  o.egress_ca.assign(p.egress_ca.begin(), p.egress_ca.end());
  how.workflow_display = p.workflow_path;
  ex.image_pins = p.image_pins;
  ex.action_pins = p.action_pins;
  ex.node_runtime_pin = p.node_runtime;
  ex.fetch_pins = p.fetch_pins;
  ex.run_identity = p.run_identity;
  if (!p.source_commit.empty()) {
    ex.source_url = p.source_url;
    ex.source_commit = p.source_commit;
    ex.source_ref = p.source_ref;
    ex.source_patch = p.source_patch;
  }
  for (const auto& n : p.secret_names)
    if (!o.secrets.count(n))
      return fail(
          "the run used secret '" + n + "': pass it with --secret " + n + "=VALUE or --secret-file",
          ErrorKind::kUsage);
  return {};
}

namespace {

const CommandLine& replay_cl() {
  static const CommandLine cl(
      "lockstep replay <run | record.json> [--job NAME] [--until STEP] [--shell]",
      "Runs recorded jobs again from the record alone (no workflow file needed): the same\n"
      "image digests, commit, environment and commands. Every environment hash is\n"
      "recomputed and checked before anything runs; outputs are compared with the\n"
      "recorded artifact digests. Exit: 0 replayed and matched, 1 a job failed,\n"
      "2 bad input, 3 outputs differ from the record.",
      {{"job", 0, true, false, "NAME", "only this job (its name, e.g. 'build (gcc, -O2)', or id)"},
       {"until", 0, true, false, "STEP", "stop before this step (name, id or number)"},
       {"shell", 0, false, false, "",
        "open a shell in the job's container where it stopped or failed"},
       {"secret", 's', true, true, "KEY=VALUE", "a secret the run used"},
       {"secret-file", 0, true, true, "FILE", "read secrets from FILE (dotenv syntax)"},
       {"insecure-registry", 0, true, true, "HOST", "allow plain HTTP for this registry"},
       mirror_spec(),
       {"actions-url", 0, true, false, "URL",
        "fetch OWNER/REPO actions from URL/OWNER/REPO (default: https://github.com)"},
       server_spec(),
       state_dir_spec()});
  return cl;
}

}  // namespace

int cmd_replay(const Args& args) {
  if (CommandLine::wants_help(args)) {
    std::fputs(replay_cl().help().c_str(), stdout);
    return 0;
  }
  auto a = replay_cl().parse(args);
  if (!a) return report_error(a.error());
  if (a->positionals.size() != 1)
    return usage_error("replay takes exactly one run id or record.json");
  fs::path state = a->get("state-dir") ? fs::path(*a->get("state-dir")) : state_dir();
  std::optional<std::string> server;
  if (auto s = a->get("server")) {
    auto u = server_url(*s);
    if (!u) return report_error(u.error());
    server = *u;
  }
  std::optional<ServerRecord> fetched;
  auto rec = load_any_record(a->positionals[0], state, server, fetched);
  if (!rec) return report_error(rec.error());
  auto plan = plan_from_record(*rec, a->get("job").value_or(""), true);
  if (!plan) return report_error(plan.error());
  // Secrets are in environment documents as HMACs under a key of the state
  // dir that ran them (docs/environment-hash.md): elsewhere they cannot be
  // checked, and the hashes could never match.
  if (!plan->secret_names.empty()) {
    const std::string recorded = json_string(plan->record, "secret_key_id");
    auto key = secret_hash_key(state);
    if (!key) return report_error(key.error());
    if (!recorded.empty() && sha256_of(*key).hex().substr(0, 16) != recorded)
      return report_error(Error("run " + json_string(plan->record, "run_id") +
                                    " used secrets, hashed with the key of the state dir that "
                                    "ran it (key id " +
                                    recorded +
                                    "), which is not this one: replay it there, or "
                                    "give this host the same key in LOCKSTEP_SECRET_HASH_KEY",
                                0, ErrorKind::kUsage));
  }
  // An exported run (lockstep runs export) carries its images.
  auto bundled = import_bundle(rec->dir, state);
  if (!bundled) return report_error(bundled.error());
  if (*bundled)
    std::fprintf(stderr, "lockstep: imported %zu image(s) from %s\n", *bundled,
                 (rec->dir / "images").c_str());
  RunOptions o;
  if (auto s = add_secret_and_pull_options(*a, o); !s) return report_error(s.error());
  std::error_code ec;
  fs::create_directories(state / "tmp", ec);
  auto scratch = TempDir::create(state / "tmp", "replay");
  if (!scratch) return report_error(scratch.error());
  RunExtras ex;
  RecordSettings how;
  how.kind = "replay";
  how.replay_of = json_string(plan->record, "run_id");
  ex.replay.expected_docs = plan->expected_docs;
  ex.replay.until_step = a->get("until").value_or("");
  ex.replay.shell = a->has("shell");
  if (auto s = prepare_replay_run(*plan, state, scratch->path(), o, ex.replay, how); !s)
    return report_error(s.error());
  std::fprintf(stderr, "lockstep: replaying %zu job(s) of run %s (commit %s)\n",
               plan->selected.size(), how.replay_of.c_str(),
               plan->source_commit.empty() ? "none" : plan->source_commit.substr(0, 12).c_str());
  Json record;
  int rc = finish_run(o, run_workflow(o, ex), how, &record);
  if (record.is_null()) return rc;
  // Outputs: the recorded artifact digests against the replay's.
  auto outcome = compare_replay_outputs(plan->record, record, plan->selected);
  for (const auto& line : outcome.lines) std::printf("%s\n", line.c_str());
  if (rc != 0) return rc;
  if (!ex.replay.until_step.empty()) return 0;
  return outcome.matched ? 0 : 3;
}

namespace {
const Json& items(const Json& obj, const char* key) {
  static const Json empty = Json::array();
  auto it = obj.find(key);
  return it != obj.end() && it->is_array() ? *it : empty;
}
}  // namespace

ReplayComparison compare_replay_outputs(const Json& original, const Json& replay,
                                        const std::vector<std::string>& selected) {
  ReplayComparison out;
  std::map<std::string, const Json*> now;
  for (const auto& j : items(replay, "jobs")) now[json_string(j, "name")] = &j;
  size_t same = 0, hashes = 0;
  for (const auto& j : items(original, "jobs")) {
    std::string name = json_string(j, "name");
    if (std::find(selected.begin(), selected.end(), name) == selected.end()) continue;
    auto it = now.find(name);
    if (it == now.end()) {
      out.matched = false;
      out.lines.push_back("replay: job '" + name + "' did not run");
      continue;
    }
    const Json& r = *it->second;
    if (json_string(j, "env_hash") == json_string(r, "env_hash") &&
        !json_string(r, "env_hash").empty())
      ++hashes;
    if (json_string(j, "result") != json_string(r, "result"))
      out.lines.push_back("replay: job '" + name + "' was " + json_string(j, "result") +
                          " in the record, " + json_string(r, "result") + " now");
    std::map<std::string, std::string> was, is;
    for (const auto& a : items(j, "artifacts"))
      was[json_string(a, "name")] = json_string(a, "digest");
    for (const auto& a : items(r, "artifacts"))
      is[json_string(a, "name")] = json_string(a, "digest");
    for (const auto& [n, d] : was) {
      auto f = is.find(n);
      if (f == is.end()) {
        out.matched = false;
        out.lines.push_back("replay: job '" + name + "': artifact '" + n + "' was not uploaded");
      } else if (f->second != d) {
        out.matched = false;
        out.lines.push_back("replay: job '" + name + "': artifact '" + n + "' differs: recorded " +
                            d + ", now " + f->second);
      } else {
        ++same;
      }
    }
  }
  out.lines.push_back("replay: " + std::to_string(hashes) + " of " +
                      std::to_string(selected.size()) + " environment hashes match the record; " +
                      std::to_string(same) + " artifact(s) identical" +
                      (out.matched ? "; outputs match" : "; OUTPUTS DIFFER"));
  return out;
}

}  // namespace lockstep::runner
