// `lockstep runs ls|show` and `lockstep logs`: what the run records hold.
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <set>

#include "cache/export_oci.hpp"
#include "cache/git_trees.hpp"
#include "cache/image_store.hpp"
#include "common/fs.hpp"
#include "common/paths.hpp"
#include "registry-mirror/mirror_config.hpp"
#include "runner/cli/cli.hpp"
#include "runner/engine/node_runtime.hpp"
#include "runner/records/fetch_view.hpp"
#include "runner/records/record.hpp"
#include "runner/records/record_read.hpp"
#include "runner/records/report.hpp"
#include "runner/records/server_client.hpp"
#include "runner/verbs/cmd_records.hpp"

namespace lockstep::runner {
namespace fs = std::filesystem;

namespace {

std::string short_hash(const std::string& h) {
  return h.rfind("sha256:", 0) == 0 ? h.substr(7, 12) : h.substr(0, 12);
}

std::string human_bytes(long long b) {
  char buf[32];
  if (b >= (1LL << 30))
    std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(b) / (1LL << 30));
  else if (b >= (1LL << 20))
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(b) / (1LL << 20));
  else if (b >= 1024)
    std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(b) / 1024);
  else
    std::snprintf(buf, sizeof buf, "%lld B", b);
  return buf;
}

// A whole number of at least `min` for `option` (a usage error otherwise).
Result<size_t> count_value(const std::string& v, const char* option, long min) {
  LS_TRY_ASSIGN(long n, parse_number(v, option, min, 1'000'000'000));
  return static_cast<size_t>(n);
}

// --server URL, checked; nullopt without it.
Result<std::optional<std::string>> server_option(const ParsedArgs& p) {
  auto s = p.get("server");
  if (!s) return std::optional<std::string>();
  LS_TRY_ASSIGN(std::string u, server_url(*s));
  return std::optional<std::string>(u);
}

std::string json_text(const Json& j, const char* key) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return "";
  return j[key].is_string() ? j[key].get<std::string>() : j[key].dump();
}

// `runs ls --server`: the server's runs, newest first.
int server_runs_ls(const std::string& server, size_t limit, const std::string& repo) {
  std::string path = "/api/runs?limit=" + std::to_string(limit);
  if (!repo.empty()) path += "&repo=" + repo;
  auto runs = server_get_json(server, path);
  if (!runs) return report_error(runs.error());
  if (!runs->is_array() || runs->empty()) {
    std::printf("no runs on %s\n", server.c_str());
    return 0;
  }
  std::printf("%-6s  %-20s  %-12s  %-9s  %5s  %9s  %-12s  %s\n", "RUN", "REPOSITORY", "EVENT",
              "STATUS", "JOBS", "DURATION", "COMMIT", "WORKFLOW");
  for (const auto& r : *runs) {
    long long total = 0, failed = 0;
    if (r.contains("jobs") && r["jobs"].is_object())
      for (auto it = r["jobs"].begin(); it != r["jobs"].end(); ++it) {
        long long n = it->is_number_integer() ? it->get<long long>() : 0;
        total += n;
        if (it.key() == "failure") failed += n;
      }
    std::string jobs = std::to_string(total);
    if (failed) jobs = std::to_string(failed) + "/" + jobs;
    double secs =
        r.contains("duration_s") && r["duration_s"].is_number() ? r["duration_s"].get<double>() : 0;
    std::string wf = json_text(r, "workflow_name");
    if (wf.empty()) wf = json_text(r, "workflow_file");
    std::printf(
        "%-6s  %-20s  %-12s  %-9s  %5s  %9s  %-12s  %s\n", json_text(r, "id").c_str(),
        json_text(r, "repo").c_str(), json_text(r, "event").c_str(), json_text(r, "status").c_str(),
        jobs.c_str(),
        format_duration(std::chrono::milliseconds(static_cast<int64_t>(secs * 1000))).c_str(),
        json_text(r, "sha").substr(0, 12).c_str(), wf.c_str());
  }
  return 0;
}

// `runs show --server RUN`: the server run, its jobs and attempts, and the
// command that replays each job here.
int server_runs_show(const std::string& server, const std::string& id, bool raw) {
  if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos)
    return usage_error("runs show --server takes a server run id (a number), not '" + id + "'");
  auto d = server_get_json(server, "/api/runs/" + id);
  if (!d) return report_error(d.error());
  if (raw) {
    std::printf("%s\n", d->dump(2).c_str());
    return 0;
  }
  const Json& r = (*d)["run"];
  std::printf("run       %s of %s (%s)\n", json_text(r, "id").c_str(), json_text(r, "repo").c_str(),
              json_text(r, "event").c_str());
  std::printf("workflow  %s\n", json_text(r, "workflow_file").c_str());
  std::printf("commit    %s (%s)\n", json_text(r, "sha").c_str(), json_text(r, "ref").c_str());
  std::printf("status    %s\n", json_text(r, "status").c_str());
  if (!json_text(r, "error").empty()) std::printf("error     %s\n", json_text(r, "error").c_str());
  for (const auto& j : (*d)["jobs"]) {
    std::printf("\njob %s %s: %s", json_text(j, "id").c_str(), json_text(j, "name").c_str(),
                json_text(j, "status").c_str());
    if (!json_text(j, "reason").empty()) std::printf(" (%s)", json_text(j, "reason").c_str());
    std::printf("\n");
    for (const auto& a : j["attempts"]) {
      std::printf("  attempt %s on %s: %s", json_text(a, "attempt").c_str(),
                  json_text(a, "agent").c_str(), json_text(a, "state").c_str());
      if (!json_text(a, "env_hash").empty())
        std::printf(", environment hash %s", json_text(a, "env_hash").c_str());
      if (!json_text(a, "reason").empty()) std::printf(" (%s)", json_text(a, "reason").c_str());
      std::printf("\n");
    }
    if (!j["attempts"].empty())
      std::printf("  replay: lockstep replay --server %s %s\n", server.c_str(),
                  json_text(j, "id").c_str());
  }
  return 0;
}

int runs_ls(const Args& args) {
  const CommandLine cl(
      "lockstep runs ls [--limit N] [--server URL [--repo OWNER/NAME]]",
      "List recorded runs, newest first (a server's runs with --server).",
      {{"limit", 'n', true, false, "N", "at most N runs (default 20)"},
       server_spec(),
       {"repo", 0, true, false, "OWNER/NAME", "with --server: only this repository"}});
  if (CommandLine::wants_help(args)) {
    std::fputs(cl.help().c_str(), stdout);
    return 0;
  }
  auto parsed = cl.parse(args);
  if (!parsed) return report_error(parsed.error());
  if (!parsed->positionals.empty()) return usage_error("runs ls takes no arguments");
  size_t limit = 20;
  if (auto l = parsed->get("limit")) {
    auto n = count_value(*l, "--limit", 1);
    if (!n) return report_error(n.error());
    limit = *n;
  }
  auto server = server_option(*parsed);
  if (!server) return report_error(server.error());
  if (*server) return server_runs_ls(**server, limit, parsed->get("repo").value_or(""));
  if (parsed->get("repo")) return usage_error("--repo lists a server's runs: add --server URL");
  auto rows = list_runs(state_dir(), limit);
  if (!rows) return report_error(rows.error());
  if (rows->empty()) {
    std::printf("no runs recorded in %s\n", state_dir().c_str());
    return 0;
  }
  std::printf("%-24s  %-7s  %-9s  %5s  %9s  %-12s  %s\n", "RUN", "KIND", "RESULT", "JOBS",
              "DURATION", "COMMIT", "WORKFLOW");
  for (const auto& r : *rows) {
    std::string jobs = std::to_string(r.jobs);
    if (r.failed) jobs = std::to_string(r.failed) + "/" + jobs;
    std::printf("%-24s  %-7s  %-9s  %5s  %9s  %-12s  %s\n", r.id.c_str(), r.kind.c_str(),
                r.result.c_str(), jobs.c_str(),
                format_duration(std::chrono::milliseconds(r.duration_ms)).c_str(),
                r.commit.substr(0, 12).c_str(), r.workflow.c_str());
  }
  return 0;
}

int runs_show(const Args& args) {
  const CommandLine cl("lockstep runs show <run | record.json> [--json] [--server URL]",
                       "Show a recorded run: jobs, environment hashes, steps, artifacts.\n"
                       "With --server: a server run (its id), its jobs and their attempts; "
                       "--server URL\nJOB:ATTEMPT (or JOB) shows the record of that job's "
                       "attempt.",
                       {{"json", 0, false, false, "", "print the whole record"}, server_spec()});
  if (CommandLine::wants_help(args)) {
    std::fputs(cl.help().c_str(), stdout);
    return 0;
  }
  auto parsed = cl.parse(args);
  if (!parsed) return report_error(parsed.error());
  if (parsed->positionals.size() != 1) return usage_error("runs show takes exactly one run id");
  auto server = server_option(*parsed);
  if (!server) return report_error(server.error());
  const std::string& arg = parsed->positionals[0];
  if (*server && arg.find(':') == std::string::npos)
    return server_runs_show(**server, arg, parsed->has("json"));
  std::optional<ServerRecord> fetched;
  auto rec = load_any_record(arg, state_dir(), *server, fetched);
  if (!rec) return report_error(rec.error());
  const auto& d = rec->doc;
  if (parsed->has("json")) {
    std::printf("%s\n", d.dump(2).c_str());
    return 0;
  }
  std::printf("run       %s (%s)\n", str_or(d, "run_id").c_str(), str_or(d, "kind").c_str());
  if (!str_or(d, "replay_of").empty())
    std::printf("replay of %s\n", str_or(d, "replay_of").c_str());
  const auto& wf = member(d, "workflow");
  std::printf("workflow  %s (%s)\n", str_or(wf, "path").c_str(), str_or(wf, "digest").c_str());
  const auto& src = member(d, "source");
  if (src.is_object())
    std::printf("source    %s @ %s%s\n", str_or(src, "url").c_str(), str_or(src, "commit").c_str(),
                member(src, "dirty_patch_digest").is_string() ? " + dirty patch" : "");
  std::printf("result    %s (exit %lld) in %s, started %s\n", str_or(d, "result").c_str(),
              int_or(d, "exit_code"),
              format_duration(std::chrono::milliseconds(int_or(d, "duration_ms"))).c_str(),
              str_or(d, "started_at").c_str());
  const auto& amb = member(d, "ambient");
  std::printf("host      %s, kernel %s, %lld cpus, lockstep %s\n", str_or(amb, "hostname").c_str(),
              str_or(amb, "kernel").c_str(), int_or(amb, "cpus"),
              str_or(amb, "lockstep_build").c_str());
  for (const auto& j : member(d, "jobs")) {
    std::printf("\njob %s: %s", str_or(j, "name").c_str(), str_or(j, "result").c_str());
    if (!str_or(j, "reason").empty()) std::printf(" (%s)", str_or(j, "reason").c_str());
    std::printf(" in %s\n",
                format_duration(std::chrono::milliseconds(int_or(j, "duration_ms"))).c_str());
    std::printf("  environment hash  %s\n", str_or(j, "env_hash").c_str());
    const auto& img = member(j, "image");
    std::printf("  image             %s (%s, %s)\n", str_or(img, "ref").c_str(),
                str_or(img, "manifest_digest").c_str(), str_or(img, "platform").c_str());
    const auto& u = member(j, "usage");
    std::printf("  network %s, peak memory %s, cpu %lld ms%s\n", str_or(j, "network").c_str(),
                human_bytes(int_or(u, "peak_memory_bytes")).c_str(), int_or(u, "cpu_time_ms"),
                member(u, "oom_killed").is_boolean() && member(u, "oom_killed").get<bool>()
                    ? ", OOM-killed"
                    : "");
    // What the job resolved: action commits, the Node.js runtime, images of
    // Docker actions, checkouts.
    for (const auto& in : member(j, "inputs")) {
      std::string kind = str_or(in, "kind");
      if (kind == "image" && str_or(in, "reference") == str_or(img, "ref")) continue;
      std::printf(
          "  %-8s          %s -> %s%s\n", kind.c_str(), str_or(in, "reference").c_str(),
          str_or(in, "resolved").c_str(),
          member(in, "pinned").is_boolean() && member(in, "pinned").get<bool>() ? " (pinned)" : "");
    }
    auto stage = [](const Json& s) {
      std::printf("      %-9s %-40s %8s\n", str_or(s, "conclusion").c_str(),
                  str_or(s, "name").c_str(),
                  format_duration(std::chrono::milliseconds(int_or(s, "duration_ms"))).c_str());
      if (!str_or(s, "reason").empty() && str_or(s, "outcome") != "success")
        std::printf("      %s\n", str_or(s, "reason").c_str());
    };
    for (const auto& s : member(j, "pre_steps")) stage(s);
    for (const auto& s : member(j, "steps")) {
      std::printf("  %2lld. %-9s %-40s %8s  %s\n", int_or(s, "index"),
                  str_or(s, "conclusion").c_str(), str_or(s, "name").c_str(),
                  format_duration(std::chrono::milliseconds(int_or(s, "duration_ms"))).c_str(),
                  short_hash(str_or(s, "env_hash")).c_str());
      if (!str_or(s, "reason").empty() && str_or(s, "outcome") != "success")
        std::printf("      %s\n", str_or(s, "reason").c_str());
    }
    for (const auto& s : member(j, "post_steps")) stage(s);
    for (const auto& line : fetch_lines(j)) std::printf("  %s\n", line.c_str());
    for (const auto& a : member(j, "artifacts"))
      std::printf("  artifact %s %s (%lld bytes)\n", str_or(a, "name").c_str(),
                  str_or(a, "digest").c_str(), int_or(a, "size"));
    if (!str_or(j, "log").empty()) std::printf("  log %s\n", (rec->dir / str_or(j, "log")).c_str());
  }
  if (member(d, "verify").is_object())
    std::printf("\nverify: %s\n", str_or(member(d, "verify"), "verdict").c_str());
  return 0;
}

int runs_export(const Args& args) {
  const CommandLine cl(
      "lockstep runs export <run | record.json> DIR",
      "Writes what another host needs to replay a run without registry access:\n"
      "DIR/record.json, DIR/images/*.tar (every image the run used, as OCI layout tars),\n"
      "DIR/actions/<commit>/ (the code of every action it used) and DIR/jobs/ (the logs).\n"
      "'lockstep replay DIR/record.json' imports the images and actions.",
      {});
  if (CommandLine::wants_help(args)) {
    std::fputs(cl.help().c_str(), stdout);
    return 0;
  }
  auto parsed = cl.parse(args);
  if (!parsed) return report_error(parsed.error());
  if (parsed->positionals.size() != 2) return usage_error("usage: lockstep runs export <run> DIR");
  fs::path out = parsed->positionals[1];
  std::error_code ec;
  if (fs::exists(out, ec) && !fs::is_empty(out, ec))
    return usage_error("runs export: " + out.string() + " exists and is not empty");
  auto rec = load_record(parsed->positionals[0], state_dir());
  if (!rec) return report_error(rec.error());
  // Built beside DIR and renamed into place: DIR is complete or absent.
  fs::path parent = fs::absolute(out).parent_path();
  auto tmp = TempDir::create(parent, ".lockstep-export");
  if (!tmp) return report_error(tmp.error());
  fs::create_directories(tmp->path() / "images", ec);
  fs::copy_file(rec->file, tmp->path() / "record.json", ec);
  if (ec) return report_error(Error("copy " + rec->file.string() + ": " + ec.message()));
  if (fs::is_directory(rec->dir / "jobs", ec))
    fs::copy(rec->dir / "jobs", tmp->path() / "jobs", fs::copy_options::recursive, ec);
  if (ec) return report_error(Error("copy the logs: " + ec.message()));
  cache::ImageStore store(state_dir());
  std::map<std::string, std::string> images;  // digest -> reference as written
  for (const auto& j : member(rec->doc, "jobs")) {
    const auto& img = member(j, "image");
    if (!str_or(img, "manifest_digest").empty())
      images.emplace(str_or(img, "manifest_digest"), str_or(img, "ref"));
    for (const auto& sv : member(j, "services"))
      if (!str_or(sv, "manifest_digest").empty())
        images.emplace(str_or(sv, "manifest_digest"), str_or(sv, "image"));
    for (const auto& in : member(j, "inputs"))
      if (str_or(in, "kind") == "image" && !str_or(in, "resolved").empty())
        images.emplace(str_or(in, "resolved"), str_or(in, "reference"));
  }
  // The code of every action and reusable workflow the run used, by commit:
  // a replay elsewhere needs no access to their repositories.
  std::set<std::string> commits;
  for (const auto& j : member(rec->doc, "jobs"))
    for (const auto& in : member(j, "inputs"))
      if ((str_or(in, "kind") == "action" || str_or(in, "kind") == "workflow") &&
          !str_or(in, "resolved").empty())
        commits.insert(str_or(in, "resolved"));
  cache::GitTrees trees(state_dir());
  for (const auto& c : commits) {
    if (!trees.has(c))
      return report_error(Error("runs export: the action tree of commit " + c +
                                    " is not in the state dir (removed by cache gc?)",
                                0, ErrorKind::kNotFound));
    fs::create_directories(tmp->path() / "actions", ec);
    if (auto s = trees.copy_out(c, tmp->path() / "actions" / c); !s) return report_error(s.error());
  }
  std::set<std::string> runtimes;
  for (const auto& j : member(rec->doc, "jobs"))
    for (const auto& in : member(j, "inputs"))
      if (str_or(in, "kind") == "runtime" && !str_or(in, "resolved").empty())
        runtimes.insert(str_or(in, "resolved"));
  for (const auto& digest : runtimes) {
    fs::path from = node_runtime_dir(state_dir(), digest);
    fs::create_directories(tmp->path() / "runtimes", ec);
    fs::copy(from, tmp->path() / "runtimes" / from.filename(), fs::copy_options::recursive, ec);
    if (ec)
      return report_error(
          Error("runs export: the Node.js runtime " + digest + ": " + ec.message()));
  }
  for (const auto& [digest, ref] : images) {
    auto image = store.resolve(digest);
    if (!image)
      return report_error(Error("runs export: image " + ref + " (" + digest +
                                    ") is not in the local store: " + image.error().message(),
                                0, ErrorKind::kNotFound));
    fs::path tar = tmp->path() / "images" / (digest.substr(7, 16) + ".tar");
    if (auto s = cache::export_oci_tar(store, *image, ref, tar); !s) return report_error(s.error());
  }
  fs::remove(out, ec);  // an empty directory
  if (::rename(tmp->path().c_str(), out.c_str()) != 0)
    return report_error(Error::from_errno("rename into " + out.string(), errno));
  (void)tmp->release();
  std::printf("exported run %s: record, %zu image(s), %zu action(s) and logs in %s\n",
              str_or(rec->doc, "run_id").c_str(), images.size(), commits.size(), out.c_str());
  return 0;
}

// Bytes under `p` (files only; what removing it frees).
uint64_t tree_bytes(const fs::path& p) {
  uint64_t n = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::end(it);
       it.increment(ec))
    if (it->is_regular_file(ec)) n += it->file_size(ec);
  return n;
}

int runs_rm(const Args& args) {
  const CommandLine cl(
      "lockstep runs rm RUN... [--force]",
      "Remove recorded runs: record, logs, provenance, their rows in lockstep.db and their\n"
      "artifacts (artifact files no other run needs are freed by 'lockstep cache gc').\n"
      "Every RUN is checked before any is removed.",
      {{"force", 'f', false, false, "",
        "also remove run directories without a record (interrupted, or still running)"}});
  if (CommandLine::wants_help(args)) {
    std::fputs(cl.help().c_str(), stdout);
    return 0;
  }
  auto parsed = cl.parse(args);
  if (!parsed) return report_error(parsed.error());
  if (parsed->positionals.empty()) return usage_error("runs rm needs at least one run id");
  auto rows = list_runs(state_dir(), std::numeric_limits<int64_t>::max());
  if (!rows) return report_error(rows.error());
  std::set<std::string> recorded;
  for (const auto& r : *rows) recorded.insert(r.id);
  std::error_code ec;
  for (const auto& id : parsed->positionals) {
    if (!valid_run_id(id)) return usage_error("runs rm: not a run id: '" + id + "'");
    fs::path dir = state_dir() / "runs" / id;
    if (recorded.count(id) || fs::exists(dir / "record.json", ec)) continue;
    if (!fs::is_directory(dir, ec))
      return report_error(Error("no run '" + id + "' in " + (state_dir() / "runs").string(), 0,
                                ErrorKind::kNotFound));
    if (!parsed->has("force"))
      return usage_error("run '" + id +
                         "' has no record (interrupted, or still running); --force removes it");
  }
  for (const auto& id : parsed->positionals) {
    uint64_t bytes = tree_bytes(state_dir() / "runs" / id);
    if (auto st = remove_run(state_dir(), id); !st) return report_error(st.error());
    std::printf("removed run %s (%s)\n", id.c_str(),
                human_bytes(static_cast<long long>(bytes)).c_str());
  }
  return 0;
}

int runs_prune(const Args& args) {
  const CommandLine cl(
      "lockstep runs prune [--keep N] [--older-than DURATION] [--dry-run]",
      "Remove recorded runs beyond the newest N and/or started more than DURATION ago\n"
      "(e.g. 30d, 12h), as 'runs rm' does. Run directories without a record (interrupted,\n"
      "or still running) are left alone.",
      {{"keep", 0, true, false, "N", "keep the newest N recorded runs"},
       {"older-than", 0, true, false, "DURATION", "remove runs started more than DURATION ago"},
       {"dry-run", 'n', false, false, "", "list what would be removed, remove nothing"}});
  if (CommandLine::wants_help(args)) {
    std::fputs(cl.help().c_str(), stdout);
    return 0;
  }
  auto parsed = cl.parse(args);
  if (!parsed) return report_error(parsed.error());
  if (!parsed->positionals.empty()) return usage_error("runs prune takes no arguments");
  std::optional<size_t> keep;
  if (auto k = parsed->get("keep")) {
    auto n = count_value(*k, "--keep", 0);
    if (!n) return report_error(n.error());
    keep = *n;
  }
  std::string cutoff;  // runs that started before it go
  if (auto o = parsed->get("older-than")) {
    auto d = registry::parse_duration(*o);
    if (!d) return usage_error("--older-than: " + std::string(d.error().message()));
    cutoff = rfc3339(std::chrono::system_clock::now() - *d);
  }
  if (!keep && cutoff.empty()) return usage_error("runs prune needs --keep N or --older-than");
  auto rows = list_runs(state_dir(), std::numeric_limits<int64_t>::max());
  if (!rows) return report_error(rows.error());
  const bool dry = parsed->has("dry-run");
  size_t removed = 0;
  uint64_t freed = 0;
  for (size_t i = 0; i < rows->size(); ++i) {
    const RunRow& r = (*rows)[i];
    bool beyond = keep && i >= *keep;
    bool old = !cutoff.empty() && r.started_at < cutoff;
    if (!beyond && !old) continue;
    uint64_t bytes = tree_bytes(state_dir() / "runs" / r.id);
    if (!dry)
      if (auto st = remove_run(state_dir(), r.id); !st) return report_error(st.error());
    std::printf("%s run %s (started %s, %s)\n", dry ? "would remove" : "removed", r.id.c_str(),
                r.started_at.c_str(), human_bytes(static_cast<long long>(bytes)).c_str());
    ++removed;
    freed += bytes;
  }
  std::printf("%s %zu run(s), %s\n", dry ? "would remove" : "removed", removed,
              human_bytes(static_cast<long long>(freed)).c_str());
  return 0;
}

}  // namespace

int cmd_runs(const Args& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::printf(
        "usage: lockstep runs <command>\n\ncommands:\n  ls       list recorded runs\n  show     "
        "show one run\n  export   write a run's record, images and logs for another host\n"
        "  rm       remove runs\n  prune    remove runs beyond the newest N or older than a "
        "duration\n");
    return args.empty() ? 2 : 0;
  }
  Args rest(args.begin() + 1, args.end());
  if (args[0] == "ls") return runs_ls(rest);
  if (args[0] == "show") return runs_show(rest);
  if (args[0] == "export") return runs_export(rest);
  if (args[0] == "rm") return runs_rm(rest);
  if (args[0] == "prune") return runs_prune(rest);
  std::string hint = closest_match(args[0], {"ls", "show", "export", "rm", "prune"});
  return usage_error("unknown command 'lockstep runs " + args[0] + "'" +
                     (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
}

int cmd_logs(const Args& args) {
  const CommandLine cl(
      "lockstep logs <run | record.json> [JOB] | --server URL JOB[:ATTEMPT]",
      "Print the logs of a run's jobs (secrets masked). JOB is a job's name, "
      "its id (every instance), or its number in the run; with --server, a "
      "server job's id (its newest attempt, or :ATTEMPT).",
      {{"services", 0, false, false, "", "also print the services' logs"}, server_spec()});
  if (CommandLine::wants_help(args)) {
    std::fputs(cl.help().c_str(), stdout);
    return 0;
  }
  auto parsed = cl.parse(args);
  if (!parsed) return report_error(parsed.error());
  auto server = server_option(*parsed);
  if (!server) return report_error(server.error());
  if (*server) {
    if (parsed->positionals.size() != 1)
      return usage_error("usage: lockstep logs --server URL JOB[:ATTEMPT]");
    auto job = parse_server_job(parsed->positionals[0]);
    if (!job)
      return usage_error("logs --server takes a server job id (JOB or JOB:ATTEMPT), not '" +
                         parsed->positionals[0] + "'");
    auto text = server_get(**server, "/api/jobs/" + std::to_string(job->job) + "/log" +
                                         (job->attempt ? job->query() : ""));
    if (!text) return report_error(text.error());
    std::fwrite(text->data(), 1, text->size(), stdout);
    return 0;
  }
  if (parsed->positionals.empty() || parsed->positionals.size() > 2)
    return usage_error("usage: lockstep logs <run> [JOB]");
  auto rec = load_record(parsed->positionals[0], state_dir());
  if (!rec) return report_error(rec.error());
  std::string want = parsed->positionals.size() == 2 ? parsed->positionals[1] : "";
  std::vector<const RecordJson*> jobs;
  std::vector<std::string> names;
  for (const auto& j : member(rec->doc, "jobs")) {
    names.push_back(str_or(j, "name"));
    if (want.empty() || want == str_or(j, "name") || want == str_or(j, "id") ||
        want == std::to_string(int_or(j, "index")))
      jobs.push_back(&j);
  }
  if (jobs.empty()) {
    std::string hint = closest_match(want, names);
    return report_error(Error("run " + str_or(rec->doc, "run_id") + " has no job '" + want + "'" +
                                  (hint.empty() ? "" : " (did you mean '" + hint + "'?)"),
                              0, ErrorKind::kNotFound));
  }
  bool prefix = jobs.size() > 1;
  for (const RecordJson* j : jobs) {
    std::vector<std::pair<std::string, fs::path>> files = {
        {str_or(*j, "name"), rec->dir / str_or(*j, "log")}};
    if (parsed->has("services"))
      for (const auto& s : member(*j, "services"))
        files.push_back(
            {str_or(*j, "name") + " / " + str_or(s, "name"), rec->dir / str_or(s, "log")});
    for (const auto& [name, file] : files) {
      std::ifstream in(file);
      if (!in) {
        std::fprintf(stderr, "lockstep: warning: no log for %s (%s)\n", name.c_str(), file.c_str());
        continue;
      }
      for (std::string line; std::getline(in, line);) {
        if (prefix || files.size() > 1)
          std::printf("%s | %s\n", name.c_str(), line.c_str());
        else
          std::printf("%s\n", line.c_str());
      }
    }
  }
  return 0;
}

}  // namespace lockstep::runner
