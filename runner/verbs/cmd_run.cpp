// `lockstep run`: parses the command line into RunOptions.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "common/fs.hpp"
#include "common/paths.hpp"
#include "pipeline/options.hpp"
#include "runner/cli/cli.hpp"
#include "runner/cli/commands.hpp"
#include "runner/engine/job_plan.hpp"
#include "runner/engine/project.hpp"
#include "runner/engine/pull.hpp"
#include "runner/engine/run.hpp"
#include "runner/records/run_record.hpp"
#include "runner/verbs/run_options.hpp"

namespace lockstep::runner {
namespace fs = std::filesystem;

namespace {

const CommandLine& run_command_line() {
  static const CommandLine cl(
      "lockstep run [WORKFLOW] [options]",
      "Runs a GitHub Actions workflow, every job in its own container.\n"
      "WORKFLOW defaults to the only file in .github/workflows/.",
      {
          {"job", 0, true, true, "ID", "run only this job (and the jobs it needs); repeatable"},
          {"matrix", 0, true, true, "KEY=VALUE", "run only matrix combinations with this value"},
          {"import-artifacts", 0, true, false, "DIR",
           "artifacts uploaded elsewhere in this run (DIR/<name>.json manifests, their files in "
           "the state dir), for download-artifact"},
          {"plan", 0, true, false, "FILE",
           "run one job instance as a lockstep server planned it (the workflow, job, matrix "
           "cell, event, needs and the run's pins; written by lockstep agent)"},
          {"cache-server", 0, true, false, "FILE",
           "share dependency caches through a lockstep server (FILE: its URL, an agent token, "
           "the job and attempt; written by lockstep agent)"},
          {"needs", 0, true, false, "FILE",
           "results and outputs of jobs --job needs, run elsewhere (the needs context as "
           "JSON); they are not run"},
          {"jobs", 'j', true, false, "N", "run at most N jobs at once (default: CPU count)"},
          {"list", 0, false, false, "", "print the expanded jobs and exit"},
          {"dry-run", 0, false, false, "", "print the plan (jobs, images, order) and exit"},
          {"env", 'e', true, true, "KEY=VALUE", "set an environment variable for every job"},
          {"env-file", 0, true, true, "FILE",
           "read environment variables from FILE (dotenv syntax)"},
          {"var", 0, true, true, "KEY=VALUE", "set a configuration variable (vars.KEY)"},
          {"var-file", 0, true, true, "FILE", "read variables from FILE (dotenv syntax)"},
          {"event", 0, true, false, "NAME",
           "the triggering event, github.event_name (default: push)"},
          {"event-file", 0, true, false, "FILE",
           "the event's payload as GitHub sends it, github.event (a JSON object)"},
          {"secret", 's', true, true, "KEY=VALUE", "provide a secret (masked in all output)"},
          {"secret-file", 0, true, true, "FILE", "read secrets from FILE (dotenv syntax)"},
          {"platform", 'P', true, true, "LABEL=IMAGE", "run runs-on LABEL jobs in IMAGE"},
          {"report", 0, true, true, "KIND=FILE", "write a report: junit=FILE or json=FILE"},
          {"insecure-registry", 0, true, true, "HOST", "allow plain HTTP for this registry"},
          mirror_spec(),
          {"actions-url", 0, true, false, "URL",
           "fetch OWNER/REPO actions from URL/OWNER/REPO (default: https://github.com)"},
          {"repo", 0, true, false, "URL", "run against this repository instead of the current one"},
          {"ref", 0, true, false, "REF", "branch, tag or commit of --repo (default: its HEAD)"},
          {"dirty", 0, false, false, "", "include uncommitted changes as a recorded patch"},
          {"lock", 0, true, false, "FILE", "pin inputs by this lock (default: lockstep.lock)"},
          {"frozen", 0, false, false, "", "refuse to run an input lockstep.lock does not pin"},
          {"userns", 0, false, false, "",
           "run every job and service in its own user namespace (root inside is host uid "
           "100000)"},
          {"network", 0, true, false, "MODE",
           "egress (default), none or host, for jobs whose options do not say"},
          {"config", 0, true, false, "FILE", "project config (default: .lockstep.yml)"},
          state_dir_spec(),
      });
  return cl;
}

Result<RunOptions> parse_options(const Args& args) {
  LS_TRY_ASSIGN(ParsedArgs p, run_command_line().parse(args));
  RunOptions o;
  std::optional<JobPlan> plan;
  if (auto f = p.get("plan")) {
    for (const char* k : {"job", "matrix", "needs", "event", "event-file"})
      if (p.has(k))
        return fail("--" + std::string(k) + " cannot be given with --plan, which names it",
                    ErrorKind::kUsage);
    if (!p.positionals.empty())
      return fail("--plan names the workflow; no WORKFLOW argument with it", ErrorKind::kUsage);
    LS_TRY_ASSIGN(plan, load_job_plan(*f));
    o.workflow = plan->workflow;
  } else {
    LS_TRY_ASSIGN(o.workflow, workflow_argument(p));
  }
  LS_TRY(add_selection_options(p, o));
  if (plan) {
    o.jobs = {plan->job};
    o.matrix_exact = plan->matrix;
    o.given_needs = plan->needs;
    o.event = plan->event_payload;
    o.image_pins = plan->image_pins;
    o.action_pins = plan->action_pins;
    o.runtime_pin = plan->runtime_pin;
  }
  if (auto j = p.get("jobs")) {
    LS_TRY_ASSIGN(long n, parse_number(*j, "--jobs", 1, 4096));
    o.max_jobs = static_cast<size_t>(n);
  }
  // --var-file first: --var sets what a file also sets.
  for (const auto& f : p.all("var-file")) {
    LS_TRY_ASSIGN(pipeline::EnvList vars, read_dotenv_file(f, "var-file"));
    for (auto& [k, v] : vars) o.vars[k] = v;
  }
  for (const auto& v : p.all("var")) {
    LS_TRY_ASSIGN(auto kv, split_key_value(v, "var"));
    o.vars[kv.first] = kv.second;
  }
  if (auto e = plan ? std::optional<std::string>(plan->event) : p.get("event")) {
    if (e->empty() || e->find_first_not_of("abcdefghijklmnopqrstuvwxyz_") != std::string::npos)
      return fail("--event '" + *e + "': an event name is lowercase letters and '_' (push, " +
                      "pull_request, workflow_dispatch, ...)",
                  ErrorKind::kUsage);
    o.event_name = *e;
  }
  if (auto f = p.get("event-file")) {
    LS_TRY_ASSIGN(std::string text, read_file(*f));
    auto parsed = parse_json(text, "--event-file " + *f);
    if (!parsed) return fail(parsed.error().message(), ErrorKind::kUsage);
    Json j = std::move(*parsed);
    if (!j.is_object())
      return fail("--event-file " + *f + ": the payload is not a JSON object", ErrorKind::kUsage);
    o.event = std::move(j);
  }
  if (auto d = p.get("import-artifacts")) o.import_artifacts = *d;
  if (auto f = p.get("cache-server")) o.cache_server = *f;
  if (auto f = p.get("needs")) {
    LS_TRY_ASSIGN(std::string text, read_file(*f));
    LS_TRY_ASSIGN(Json j, parse_json(text, "--needs " + *f));
    LS_TRY_ASSIGN(o.given_needs, given_needs_from_json(j, "--needs " + *f));
  }
  o.list = p.has("list");
  o.dry_run = p.has("dry-run");
  for (const auto& r : p.all("report")) {
    LS_TRY_ASSIGN(auto kv, split_key_value(r, "report"));
    if (kv.first != "junit" && kv.first != "json")
      return fail("--report '" + r + "': expected junit=FILE or json=FILE", ErrorKind::kUsage);
    o.reports.emplace_back(kv.first, kv.second);
  }
  LS_TRY(add_secret_and_pull_options(p, o));
  o.repo = p.get("repo").value_or("");
  o.ref = p.get("ref").value_or("");
  o.dirty = p.has("dirty");
  if (!o.ref.empty() && o.repo.empty())
    return fail("--ref needs --repo (the current repository runs at HEAD)", ErrorKind::kUsage);
  o.lock_file = p.get("lock").value_or("");
  o.frozen = p.has("frozen");
  o.userns = p.has("userns");
  if (auto n = p.get("network")) {
    LS_TRY_ASSIGN(auto parsed, pipeline::parse_container_options("--network " + *n));
    o.network = *parsed.network;
  }
  // .lockstep.yml: below the command line.
  LS_TRY_ASSIGN(pipeline::ProjectConfig config,
                load_config_for(o.workflow, p.get("config").value_or("")));
  LS_TRY(apply_project_config(config, o));
  o.state_dir = choose_state_dir(p.get("state-dir").value_or(""), config);
  return o;
}

}  // namespace

int cmd_run(const Args& args) {
  if (CommandLine::wants_help(args)) {
    std::fputs(run_command_line().help().c_str(), stdout);
    return 0;
  }
  auto o = parse_options(args);
  if (!o) return report_error(o.error());
  // A server's job plan holds the job to what the run's other jobs and
  // attempts resolved (runner/engine/job_plan.hpp).
  RunExtras extras;
  extras.replay.image_pins = o->image_pins;
  extras.replay.action_pins = o->action_pins;
  extras.replay.node_runtime_pin = o->runtime_pin;
  return finish_run(*o, run_workflow(*o, extras), {});
}

}  // namespace lockstep::runner
