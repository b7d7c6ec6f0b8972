// `lockstep verify`: builds the selected jobs N times in fresh workspaces,
// varying what must not matter, and compares the artifacts they upload.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <set>
#include <sstream>
#include <thread>

#include "cache/artifacts.hpp"
#include "common/fs.hpp"
#include "common/paths.hpp"
#include "common/userns.hpp"
#include "executor/cgroup.hpp"
#include "runner/cli/cli.hpp"
#include "runner/engine/project.hpp"
#include "runner/engine/run.hpp"
#include "runner/records/artifact_compare.hpp"
#include "runner/records/fetch_view.hpp"
#include "runner/records/provenance.hpp"
#include "runner/records/record.hpp"
#include "runner/records/run_record.hpp"
#include "runner/verbs/cmd_records.hpp"
#include "runner/verbs/replay_plan.hpp"
#include "runner/verbs/run_options.hpp"
#include "runner/verbs/verify.hpp"

namespace lockstep::runner {
namespace fs = std::filesystem;

const std::vector<std::string>& variation_names() {
  static const std::vector<std::string> names = {"build-path", "hostname", "umask", "tz",
                                                 "locale",     "uid",      "home",  "cpus",
                                                 "dir-order",  "clock"};
  return names;
}

Result<std::vector<std::string>> parse_vary(const std::vector<std::string>& specs) {
  std::vector<std::string> set = variation_names();
  const auto& known = variation_names();
  for (const auto& spec : specs) {
    size_t pos = 0;
    while (pos <= spec.size()) {
      size_t comma = spec.find(',', pos);
      std::string item =
          spec.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      pos = comma == std::string::npos ? spec.size() + 1 : comma + 1;
      if (item.empty()) continue;
      bool remove = item[0] == '-';
      if (item[0] == '-' || item[0] == '+') item = item.substr(1);
      if (std::find(known.begin(), known.end(), item) == known.end()) {
        std::string hint = closest_match(item, known);
        std::string all;
        for (const auto& k : known) all += (all.empty() ? "" : ", ") + k;
        return fail("--vary: unknown variation '" + item + "'" +
                        (hint.empty() ? "" : " (did you mean '" + hint + "'?)") + "; known: " + all,
                    ErrorKind::kUsage);
      }
      auto it = std::find(set.begin(), set.end(), item);
      if (remove && it != set.end()) set.erase(it);
      if (!remove && it == set.end()) set.push_back(item);
    }
  }
  // Keep the documented order.
  std::vector<std::string> ordered;
  for (const auto& k : known)
    if (std::find(set.begin(), set.end(), k) != set.end()) ordered.push_back(k);
  return ordered;
}

BuildVariation variation_for(size_t build, const std::vector<std::string>& vary) {
  BuildVariation v;
  if (build == 0) return v;  // the first build runs as a plain run would
  auto on = [&](const char* k) { return std::find(vary.begin(), vary.end(), k) != vary.end(); };
  std::string n = std::to_string(build + 1);
  if (on("build-path")) v.shared.workspace_root = "/build/verify-" + n + "/src";
  if (on("hostname")) {
    v.shared.hostname = "verify" + n;
    v.shared.domainname = "build" + n + ".example";
  }
  if (on("dir-order")) v.shared.reverse_dir_order = true;
  if (on("umask")) v.shared.umask = build % 2 ? 0002 : 0027;
  if (on("uid")) v.shared.uid_gid = std::make_pair(1000u + build, 1000u + build);
  if (on("home")) v.shared.home = "/home/verify" + n;
  if (on("cpus") && std::thread::hardware_concurrency() > 1) v.shared.cpuset = "0";
  if (on("tz")) v.env["TZ"] = build % 2 ? "LST-14" : "WST+11";
  if (on("locale")) v.env["LANG"] = build % 2 ? "fr_FR.UTF-8" : "de_DE.UTF-8";
  Json d = Json::object();
  if (!v.shared.workspace_root.empty()) d["build-path"] = v.shared.workspace_root;
  if (!v.shared.hostname.empty()) d["hostname"] = v.shared.hostname + "." + v.shared.domainname;
  if (v.shared.reverse_dir_order) d["dir-order"] = "reversed (disorderfs)";
  if (v.shared.umask) {
    char b[8];
    std::snprintf(b, sizeof b, "%04o", *v.shared.umask);
    d["umask"] = b;
  }
  if (v.shared.uid_gid)
    d["uid"] =
        std::to_string(v.shared.uid_gid->first) + ":" + std::to_string(v.shared.uid_gid->second);
  if (!v.shared.home.empty()) d["home"] = v.shared.home;
  if (!v.shared.cpuset.empty()) d["cpus"] = "cpuset " + v.shared.cpuset;
  for (const auto& [k, val] : v.env) d[k == "TZ" ? "tz" : "locale"] = val;
  v.description = d;
  return v;
}

namespace {

// A list member of a record object, or an empty list.
const Json& items(const Json& obj, const char* key) {
  static const Json empty = Json::array();
  auto it = obj.find(key);
  return it != obj.end() && it->is_array() ? *it : empty;
}

const CommandLine& verify_cl() {
  static const CommandLine cl(
      "lockstep verify [WORKFLOW | run | record.json] [--runs N] [--vary SPEC]",
      "Builds the selected jobs N times (default 2) in fresh workspaces, varying what must\n"
      "not matter, and compares the artifacts they upload. The first build runs as\n"
      "'lockstep run' would; every later one varies: build-path, hostname, umask, tz,\n"
      "locale, uid, home, cpus, dir-order, clock. --vary adds (+name or name) to or removes "
      "(-name)\n"
      "from that set, e.g. --vary -uid,-cpus. Exit: 0 REPRODUCIBLE, 3 not reproducible,\n"
      "1 a build failed, 2 bad input.",
      {{"runs", 'n', true, false, "N", "number of builds (2 or more; default 2)"},
       {"vary", 0, true, true, "SPEC", "change the set of variations (+name, -name)"},
       {"job", 0, true, true, "ID", "only this job (and what it needs); repeatable"},
       {"matrix", 0, true, true, "KEY=VALUE", "only matrix combinations with this value"},
       {"env", 'e', true, true, "KEY=VALUE", "set an environment variable for every job"},
       {"env-file", 0, true, true, "FILE", "read environment variables from FILE (dotenv syntax)"},
       {"platform", 'P', true, true, "LABEL=IMAGE", "run runs-on LABEL jobs in IMAGE"},
       {"secret", 's', true, true, "KEY=VALUE", "provide a secret"},
       {"secret-file", 0, true, true, "FILE", "read secrets from FILE (dotenv syntax)"},
       {"insecure-registry", 0, true, true, "HOST", "allow plain HTTP for this registry"},
       mirror_spec(),
       {"actions-url", 0, true, false, "URL",
        "fetch OWNER/REPO actions from URL/OWNER/REPO (default: https://github.com)"},
       {"no-diffoscope", 0, false, false, "", "do not run diffoscope on differing files"},
       {"diffoscope-timeout", 0, true, false, "SECONDS",
        "diffoscope's time per differing file (default 20; its report is cut at 64 KiB)"},
       {"userns", 0, false, false, "",
        "build in user namespaces, as 'run --userns' (a record applies its own)"},
       state_dir_spec()});
  return cl;
}

}  // namespace

int cmd_verify(const Args& args) {
  if (CommandLine::wants_help(args)) {
    std::fputs(verify_cl().help().c_str(), stdout);
    return 0;
  }
  auto a = verify_cl().parse(args);
  if (!a) return report_error(a.error());
  if (a->positionals.size() > 1) return usage_error("verify takes at most one WORKFLOW or record");
  size_t runs = 2;
  if (auto r = a->get("runs")) {
    auto n = parse_number(*r, "--runs", 2, 100);
    if (!n) return report_error(n.error());
    runs = static_cast<size_t>(*n);
  }
  DiffoscopeBudget budget;
  if (auto t = a->get("diffoscope-timeout")) {
    auto n = parse_number(*t, "--diffoscope-timeout", 1, 3600);
    if (!n) return report_error(n.error());
    budget.seconds = static_cast<int>(*n);
  }
  auto vary = parse_vary(a->all("vary"));
  if (!vary) return report_error(vary.error());
  // Directory order needs FUSE and disorderfs; without them it is not varied,
  // and the output and the record say so.
  if (auto it = std::find(vary->begin(), vary->end(), "dir-order"); it != vary->end()) {
    const char* why = ::access("/usr/bin/disorderfs", X_OK) != 0 ? "disorderfs is not installed"
                      : ::access("/dev/fuse", R_OK | W_OK) != 0  ? "/dev/fuse is not available"
                                                                 : nullptr;
    if (why) {
      std::fprintf(stderr,
                   "lockstep: warning: verify: directory order is not varied: %s (install "
                   "disorderfs, or --vary -dir-order to leave it out)\n",
                   why);
      vary->erase(it);
    }
  }
  // Without root: the FUSE view of the workspace is mounted under /run,
  // which only root may, and a cpuset needs a cgroup that offers the cpuset
  // controller (a systemd user manager delegates only pids, memory and cpu;
  // docs/rootless.md).
  if (running_rootless()) {
    auto roots = executor::CgroupRoots::detect();
    std::string cpus_why;
    if (!roots || roots->none) {
      cpus_why = "no cgroup without root and a delegated subtree";
    } else if (roots->is_v2()) {
      auto offered = read_file(roots->unified / "cgroup.controllers");
      std::istringstream in(offered ? *offered : std::string());
      bool cpuset = false;
      for (std::string c; in >> c;) cpuset = cpuset || c == "cpuset";
      if (!cpuset)
        cpus_why =
            "the delegated cgroup " + roots->unified.string() + " offers no cpuset controller";
    }
    for (const auto& [name, why] :
         {std::pair<std::string, std::string>{"dir-order", "its mount needs root"},
          {"cpus", cpus_why}}) {
      auto it = std::find(vary->begin(), vary->end(), name);
      if (it == vary->end() || why.empty()) continue;
      std::fprintf(stderr, "lockstep: warning: verify: %s is not varied without root: %s\n",
                   name.c_str(), why.c_str());
      vary->erase(it);
    }
  }
  fs::path state = a->get("state-dir") ? fs::path(*a->get("state-dir")) : state_dir();

  // What to build: a record's workflow and source, or a workflow file.
  RunOptions base;
  std::optional<ReplayPlan> plan;
  std::string target = a->positionals.empty() ? "" : a->positionals[0];
  bool is_record = false;
  if (!target.empty()) {
    std::error_code ec;
    bool json_file = fs::is_regular_file(target, ec) && fs::path(target).extension() == ".json";
    bool run_id = !fs::exists(target, ec) && target.find('/') == std::string::npos &&
                  fs::is_directory(state / "runs" / target, ec);
    is_record = json_file || run_id;
  }
  if (is_record) {
    auto rec = load_record(target, state);
    if (!rec) return report_error(rec.error());
    auto p = plan_from_record(*rec, "", false);
    if (!p) return report_error(p.error());
    if (auto b = import_bundle(rec->dir, state); !b) return report_error(b.error());
    plan = std::move(*p);
  } else {
    auto wf = workflow_argument(*a);
    if (!wf) return report_error(wf.error());
    base.workflow = *wf;
  }
  base.state_dir = state;
  base.userns = a->has("userns");
  if (auto s = add_selection_options(*a, base); !s) return report_error(s.error());
  if (auto s = add_secret_and_pull_options(*a, base); !s) return report_error(s.error());
  if (!plan) {  // .lockstep.yml, below the command line
    auto config = load_config_for(base.workflow, "");
    if (!config) return report_error(config.error());
    if (auto s = apply_project_config(*config, base); !s) return report_error(s.error());
  }

  std::error_code ec;
  fs::create_directories(state / "tmp", ec);
  auto scratch = TempDir::create(state / "tmp", "verify");
  if (!scratch) return report_error(scratch.error());

  std::string varied;
  for (const auto& v : *vary) varied += (varied.empty() ? "" : ", ") + v;
  std::fprintf(stderr, "lockstep: verify: %zu builds, varying %s\n", runs,
               varied.empty() ? "nothing" : varied.c_str());
  std::vector<Json> records;
  std::vector<Json> varied_docs;
  auto last_start = std::chrono::steady_clock::now() - std::chrono::hours(1);
  for (size_t b = 0; b < runs; ++b) {
    // The wall clock moves between builds: at least 2 s apart.
    if (std::find(vary->begin(), vary->end(), "clock") != vary->end()) {
      auto since = std::chrono::steady_clock::now() - last_start;
      if (since < std::chrono::seconds(2))
        std::this_thread::sleep_for(std::chrono::seconds(2) - since);
    }
    last_start = std::chrono::steady_clock::now();
    RunOptions o = base;
    RunExtras ex;
    RecordSettings how;
    how.kind = "verify";
    how.write = false;
    if (plan) {
      if (auto s = prepare_replay_run(*plan, state, scratch->path(), o, ex.replay, how); !s)
        return report_error(s.error());
      o.userns = o.userns || base.userns;
      ex.replay.image_pins = plan->image_pins;
      ex.replay.action_pins = plan->action_pins;
      ex.replay.node_runtime_pin = plan->node_runtime;
      if (!base.jobs.empty()) o.jobs = base.jobs;
      if (!base.matrix_filter.empty()) o.matrix_filter = base.matrix_filter;
      for (const auto& e : base.env) o.env.push_back(e);
    }
    BuildVariation v = variation_for(b, *vary);
    ex.vary = v.shared;
    ex.env_defaults = v.env;
    std::fprintf(stderr, "lockstep: verify: build %zu of %zu%s\n", b + 1, runs,
                 b == 0 ? " (as 'lockstep run')" : (" (" + v.description.dump() + ")").c_str());
    Json record;
    int rc = finish_run(o, run_workflow(o, ex), how, &record);
    if (record.is_null()) return rc;  // refused before any job ran
    records.push_back(std::move(record));
    varied_docs.push_back(v.description);
  }

  auto outcome = compare_builds(state, records);
  if (!outcome) return report_error(outcome.error());
  // A build that fetched what no pin vouches for may not build the same
  // tomorrow, whatever today's comparison says.
  std::set<std::string> unpinned;
  for (const auto& rec : records)
    for (auto& u : unpinned_fetches(RecordJson::parse(rec.dump()))) unpinned.insert(u);
  if (!unpinned.empty() && !outcome->lines.empty())
    outcome->lines[0] += " (not hermetic: " + std::to_string(unpinned.size()) + " unpinned fetch" +
                         (unpinned.size() == 1 ? "" : "es") + ", first " + *unpinned.begin() + ")";
  Json verify = {{"runs", static_cast<int64_t>(runs)},
                 {"varied", *vary},
                 {"verdict", outcome->verdict},
                 {"differences", outcome->differences},
                 {"hermetic", unpinned.empty()},
                 {"unpinned", std::vector<std::string>(unpinned.begin(), unpinned.end())},
                 {"builds", Json::array()}};
  for (size_t b = 0; b < records.size(); ++b)
    verify["builds"].push_back({{"run", static_cast<int64_t>(b + 1)},
                                {"run_id", json_string(records[b], "run_id")},
                                {"variation", varied_docs[b]},
                                {"jobs", items(records[b], "jobs")}});
  // The verify's record: the first build's, marked as a verify.
  Json record = records[0];
  record["kind"] = "verify";
  record["builder_id"] = builder_id("verify");
  record["verify"] = verify;
  if (outcome->verdict == "not-reproducible") record["exit_code"] = 3;
  fs::path run_dir = state / "runs" / json_string(record, "run_id");
  if (auto s = save_record(state, run_dir, record); !s) return report_error(s.error());
  if (auto p = write_provenance(record, run_dir / "provenance.json"); !p)
    return report_error(p.error());

  // The verdict and every first difference come out before diffoscope runs:
  // they take milliseconds, diffoscope can take its whole budget per file.
  for (const auto& line : outcome->lines) std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  if (!a->has("no-diffoscope") && !outcome->details.empty()) {
    bool first = true;
    auto print = [&](const std::string& text) {
      if (first)
        std::printf(
            "diffoscope, %d s and %zu KiB per file (--diffoscope-timeout, --no-diffoscope):\n",
            budget.seconds, budget.max_bytes / 1024);
      first = false;
      std::fputs(text.c_str(), stdout);
      std::fflush(stdout);
    };
    if (auto s = add_diffoscope_details(state, *outcome, budget, print); !s)
      return report_error(s.error());
    if (!first) {  // the details go into the record too
      record["verify"]["differences"] = outcome->differences;
      if (auto s = save_record(state, run_dir, record); !s) return report_error(s.error());
    }
  }
  std::fprintf(stderr, "lockstep: verify recorded as run %s (%s)\n",
               json_string(record, "run_id").c_str(), (run_dir / "record.json").c_str());
  if (outcome->verdict == "failed") return 1;
  return outcome->verdict == "reproducible" ? 0 : 3;
}

Result<VerifyOutcome> compare_builds(const fs::path& state, const std::vector<Json>& records) {
  VerifyOutcome out;
  out.differences = Json::array();
  const cache::ArtifactStore store(state);
  // Failed builds decide first: nothing to compare.
  for (size_t b = 0; b < records.size(); ++b) {
    for (const auto& j : items(records[b], "jobs")) {
      std::string result = json_string(j, "result");
      if (result == "failure" || result == "cancelled") {
        out.verdict = "failed";
        out.lines.push_back("FAILED: build " + std::to_string(b + 1) + ": job '" +
                            json_string(j, "name") + "' " + result + ": " +
                            json_string(j, "reason"));
      }
    }
  }
  if (out.verdict == "failed") return out;
  size_t artifacts = 0, files = 0, differing = 0;
  for (const auto& j : items(records[0], "jobs")) {
    std::string name = json_string(j, "name");
    // The same job in every build, and the union of its artifact names.
    std::vector<const Json*> per_build;
    for (const auto& r : records) {
      const Json* found = nullptr;
      for (const auto& k : items(r, "jobs"))
        if (json_string(k, "name") == name) found = &k;
      per_build.push_back(found);
    }
    std::set<std::string> names;
    for (const Json* k : per_build)
      if (k)
        for (const auto& art : items(*k, "artifacts")) names.insert(json_string(art, "name"));
    for (const auto& an : names) {
      ++artifacts;
      std::vector<cache::ArtifactInfo> infos;
      std::vector<size_t> missing;
      for (size_t b = 0; b < records.size(); ++b) {
        auto info = store.get(json_string(records[b], "run_id"), an);
        if (!info) {
          missing.push_back(b + 1);
          continue;
        }
        infos.push_back(std::move(*info));
      }
      if (!missing.empty()) {
        ++differing;
        std::string which;
        for (size_t m : missing) which += (which.empty() ? "" : ", ") + std::to_string(m);
        out.lines.push_back("  " + name + ": artifact '" + an + "' missing in build " + which);
        out.differences.push_back({{"job", name},
                                   {"artifact", an},
                                   {"file", nullptr},
                                   {"first_difference", "missing in build " + which}});
        continue;
      }
      files += infos[0].files.size();
      LS_TRY_ASSIGN(auto diffs, compare_artifacts(store, infos, false));
      if (diffs.empty()) continue;
      ++differing;
      for (auto& d : diffs) {
        std::string heading = "  " + name + ": artifact '" + an + "': file " + d.path;
        std::string summary = d.first_difference.substr(0, d.first_difference.find('\n'));
        out.lines.push_back(heading + ": " + summary);
        std::string rest = d.first_difference.find('\n') == std::string::npos
                               ? ""
                               : d.first_difference.substr(d.first_difference.find('\n') + 1);
        if (!rest.empty() && rest.back() == '\n') rest.pop_back();
        if (!rest.empty()) out.lines.push_back(rest);
        if (!d.file_a.empty()) out.details.push_back({out.differences.size(), heading, d});
        out.differences.push_back({{"job", name},
                                   {"artifact", an},
                                   {"file", d.path},
                                   {"digests", d.digests},
                                   {"first_difference", d.first_difference},
                                   {"diffoscope", ""}});
      }
    }
  }
  std::string n = std::to_string(records.size());
  if (artifacts == 0) {
    out.verdict = "failed";
    out.lines.insert(out.lines.begin(),
                     "FAILED: nothing to compare: the selected jobs uploaded no artifacts "
                     "(add actions/upload-artifact steps for what the build produces)");
    return out;
  }
  if (differing == 0) {
    out.verdict = "reproducible";
    out.lines.insert(out.lines.begin(), "REPRODUCIBLE: " + std::to_string(artifacts) +
                                            " artifact(s), " + std::to_string(files) +
                                            " file(s) identical across " + n + " builds");
  } else {
    out.verdict = "not-reproducible";
    out.lines.insert(out.lines.begin(), "NOT REPRODUCIBLE: " + std::to_string(differing) + " of " +
                                            std::to_string(artifacts) +
                                            " artifact(s) differ across " + n + " builds:");
  }
  return out;
}

Status add_diffoscope_details(const fs::path& state, VerifyOutcome& outcome,
                              const DiffoscopeBudget& budget,
                              const std::function<void(const std::string&)>& print) {
  if (diffoscope_path().empty()) return {};
  const cache::ArtifactStore store(state);
  for (auto& d : outcome.details) {
    LS_TRY(add_diffoscope(store, d.file, budget));
    Json& entry = outcome.differences[d.index];
    entry["diffoscope"] = d.file.diffoscope;
    entry["diffoscope_cut"] = d.file.diffoscope_cut;
    entry["diffoscope_timed_out"] = d.file.diffoscope_timed_out;
    print(d.heading + ":\n" + d.file.diffoscope);
  }
  return {};
}

}  // namespace lockstep::runner
