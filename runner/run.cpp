#include "runner/run.hpp"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <deque>
#include <random>
#include <set>
#include <thread>

#include "cache/git_mirror.hpp"
#include "cache/git_worktree.hpp"
#include "cache/image_store.hpp"
#include "common/fs.hpp"
#include "common/json.hpp"
#include "executor/executor.hpp"
#include "pipeline/diagnostic.hpp"
#include "pipeline/expr.hpp"
#include "pipeline/graph.hpp"
#include "pipeline/lock_inputs.hpp"
#include "pipeline/matrix.hpp"
#include "pipeline/options.hpp"
#include "pipeline/parse.hpp"
#include "pipeline/workflow_call.hpp"
#include "runner/action_source.hpp"
#include "runner/cli.hpp"
#include "runner/job.hpp"
#include "runner/lock_use.hpp"
#include "runner/network.hpp"
#include "runner/project.hpp"
#include "runner/provenance.hpp"
#include "runner/pull.hpp"
#include "runner/record.hpp"
#include "runner/report.hpp"
#include "runner/scheduler.hpp"
#include "runner/workflow_source.hpp"

namespace lockstep::runner {
namespace fs = std::filesystem;

namespace {

// Run ids sort by start time: UTC to the millisecond at fixed width, then 16
// random bits for runs started in the same millisecond.
std::string new_run_id() {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
  std::random_device rd;
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, ".%03d-%04x", static_cast<int>(ms), rd() & 0xffff);
  return std::string(buf) + suffix;
}

// SIGINT/SIGTERM become a cancellation of the run: a thread waits for them
// (they are blocked in every thread), so no work happens in a signal handler.
class SignalWatcher {
 public:
  explicit SignalWatcher(CancelToken& token) {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGUSR2);  // our own wake-up at the end of the run
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
    thread_ = std::thread([this, &token] {
      for (;;) {
        int sig = 0;
        if (sigwait(&set_, &sig) != 0) continue;
        if (sig == SIGUSR2 && done_) return;
        if (sig == SIGINT || sig == SIGTERM) {
          interrupted_ = true;
          std::fprintf(stderr, "lockstep: interrupted: stopping every container\n");
          token.cancel();
        }
      }
    });
  }
  ~SignalWatcher() {
    done_ = true;
    pthread_kill(thread_.native_handle(), SIGUSR2);
    thread_.join();
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  bool interrupted() const { return interrupted_; }

 private:
  sigset_t set_, old_;
  std::atomic<bool> done_{false}, interrupted_{false};
  std::thread thread_;
};

std::string matrix_text(const pipeline::OrderedValue& m) {
  if (!m.is_object() || m.empty()) return "-";
  std::string s;
  for (auto it = m.begin(); it != m.end(); ++it) {
    if (!s.empty()) s += ", ";
    s += it.key() + "=" + pipeline::to_display_string(pipeline::Value::parse(it.value().dump()));
  }
  return s;
}

// Jobs selected with --job, plus every job they need, transitively.
Result<std::set<std::string>> select_jobs(const pipeline::Workflow& wf,
                                          const std::vector<std::string>& wanted) {
  std::set<std::string> out;
  std::vector<std::string> todo;
  for (const auto& w : wanted) {
    bool found = false;
    for (const auto& j : wf.jobs) found = found || j.id == w;
    if (!found) {
      std::vector<std::string> ids;
      for (const auto& j : wf.jobs) ids.push_back(j.id);
      std::string hint = closest_match(w, ids);
      return fail("--job '" + w + "': no such job in " + wf.file +
                      (hint.empty() ? "" : " (did you mean '" + hint + "'?)"),
                  ErrorKind::kUsage);
    }
    todo.push_back(w);
  }
  while (!todo.empty()) {
    std::string id = todo.back();
    todo.pop_back();
    if (!out.insert(id).second) continue;
    for (const auto& j : wf.jobs)
      if (j.id == id)
        for (const auto& n : j.needs) todo.push_back(n);
  }
  return out;
}

bool matrix_matches(const pipeline::OrderedValue& m,
                    const std::vector<std::pair<std::string, std::string>>& filter) {
  for (const auto& [k, v] : filter) {
    if (!m.is_object() || !m.contains(k)) return false;
    if (pipeline::to_display_string(pipeline::Value::parse(m[k].dump())) != v) return false;
  }
  return true;
}

// The workflow's own repository: --repo/--ref, else the git working tree the
// workflow file lives in (at HEAD), else none.
struct Source {
  std::string url, commit, ref, patch, tree;
  std::string name = "workspace";
  std::string warning;  // said once the run is sure to go ahead
  int64_t commit_time = 0;
};

// The commit's tree and time, from the working tree or the bare mirror.
Status add_commit_facts(const RunOptions& opt, Source& s) {
  if (s.commit.empty()) return {};
  std::error_code ec;
  fs::path repo = s.url;
  if (s.url.empty() || !fs::is_directory(repo, ec)) {
    cache::GitMirrors mirrors(opt.state_dir);
    repo = mirrors.mirror_path(s.url);
    if (!mirrors.has_commit(s.url, s.commit)) {
      LS_TRY_ASSIGN(cache::MirrorInfo m, mirrors.update(s.url));
      (void)m;
    }
  }
  auto facts = cache::commit_facts(repo, s.commit);
  if (!facts) {
    // A local path that is a plain directory: the bare mirror has it.
    cache::GitMirrors mirrors(opt.state_dir);
    if (!mirrors.has_commit(s.url, s.commit)) {
      LS_TRY_ASSIGN(cache::MirrorInfo m, mirrors.update(s.url));
      (void)m;
    }
    LS_TRY_ASSIGN(facts, cache::commit_facts(mirrors.mirror_path(s.url), s.commit));
  }
  s.tree = facts->tree;
  s.commit_time = facts->time;
  return {};
}

Result<Source> resolve_source(const RunOptions& opt, const RunExtras* ex) {
  Source s;
  if (ex && ex->source_commit) {  // replay: the recorded source
    s.url = ex->source_url.value_or("");
    s.commit = *ex->source_commit;
    s.patch = ex->source_patch.value_or("");
    s.ref = ex->source_ref.value_or("");
    if (ex->run_identity.contains("repository_name"))
      s.name = ex->run_identity["repository_name"].get<std::string>();
    return s;
  }
  if (!opt.repo.empty()) {
    cache::GitMirrors mirrors(opt.state_dir);
    LS_TRY_ASSIGN(cache::MirrorInfo m, mirrors.update(opt.repo));
    LS_TRY_ASSIGN(cache::ResolvedRef r, mirrors.resolve_ref(m, opt.ref.empty() ? "HEAD" : opt.ref));
    s.url = opt.repo;
    s.commit = r.commit;
    s.ref = r.kind == cache::ResolvedRef::Kind::kBranch ? r.name : "";
    std::string base = fs::path(opt.repo).filename().string();
    if (base.size() > 4 && base.ends_with(".git")) base.resize(base.size() - 4);
    if (!base.empty()) s.name = base;
    return s;
  }
  fs::path dir = fs::absolute(opt.workflow).parent_path();
  auto st = cache::inspect_worktree(dir);
  if (!st) {
    if (st.error().kind() == ErrorKind::kNotFound) return s;
    return fail(
        std::move(st.error()).context("inspect the repository of " + opt.workflow.string()));
  }
  if (st->head_commit.empty()) return s;  // no commit yet: nothing to check out
  s.url = st->root.string();
  s.commit = st->head_commit;
  s.ref = st->branch;
  s.name = st->root.filename().string();
  if (st->dirty) {
    if (opt.dirty) {
      LS_TRY_ASSIGN(s.patch, cache::dirty_patch(st->root));
    } else {
      s.warning = st->root.string() + " has uncommitted changes (" +
                  std::to_string(st->changed.size()) + " paths); jobs check out HEAD " +
                  st->head_commit.substr(0, 12) +
                  " without them (use --dirty to include them as a recorded patch)";
    }
  }
  return s;
}

// What success()/failure() see in a job's if: from the jobs it needs.
pipeline::JobStatus needs_status(const std::vector<const JobReport*>& needed) {
  for (const JobReport* r : needed)
    if (r->outcome.result == JobResult::kCancelled) return pipeline::JobStatus::kCancelled;
  for (const JobReport* r : needed) {
    if (r->outcome.result == JobResult::kFailure && !r->outcome.continue_on_error)
      return pipeline::JobStatus::kFailure;
    if (r->outcome.result == JobResult::kSkipped) return pipeline::JobStatus::kFailure;
  }
  return pipeline::JobStatus::kSuccess;
}

// A called workflow's result, as a later job's `needs.<caller>.result`: it
// failed (or was cancelled) when one of its jobs did; jobs its if: skipped do
// not fail it; it is skipped only when every job was.
JobResult call_result(const std::vector<const JobReport*>& jobs) {
  bool failed = false, cancelled = false, ran = false;
  for (const JobReport* r : jobs) {
    const auto& o = r->outcome;
    if (o.result == JobResult::kFailure && !o.continue_on_error)
      failed = true;
    else if (o.result == JobResult::kCancelled)
      cancelled = true;
    else if (o.result != JobResult::kSkipped)
      ran = true;
  }
  if (failed) return JobResult::kFailure;
  if (cancelled) return JobResult::kCancelled;
  return ran ? JobResult::kSuccess : JobResult::kSkipped;
}

// A called job's record: the call it belongs to, and the repositories of
// the workflows on its way as inputs (a replay pins them, an export carries
// their trees).
void describe_call(const pipeline::CallScope& scope, const ActionSources& actions,
                   JobReport& report) {
  report.call = pipeline::call_document(scope);
  std::map<std::string, bool> pinned;
  for (const auto& r : actions.resolved()) pinned[r.key] = r.pinned;
  std::set<std::string> done;
  for (const pipeline::CallScope* s = &scope; s; s = s->parent.get()) {
    const auto& c = *s->called;
    if (c.repository.empty()) continue;
    std::string key = c.repository + "@" + c.ref;
    if (!done.insert(key).second) continue;
    report.inputs.push_back({"workflow", key, c.commit, pinned.count(key) && pinned[key]});
  }
}

}  // namespace

int run_workflow(const RunOptions& opt, RunExtras* ex) {
  RunExtras none;
  if (!ex) ex = &none;
  auto started_at = std::chrono::system_clock::now();
  auto wf = pipeline::load_workflow(opt.workflow);
  if (!wf) return report_error(wf.error());
  auto graph = pipeline::build_graph(*wf);
  if (!graph) return report_error(graph.error());
  bool stale_lock = false;
  auto lock = load_run_lock(opt.workflow, opt.lock_file, opt.frozen, &stale_lock);
  if (!lock) return report_error(lock.error());

  // GitHub-hosted labels the project does not map run in a stand-in image.
  HostedLabels hosted;
  const std::map<std::string, std::string> platforms =
      with_hosted_defaults(opt.platforms, &hosted.defaulted);

  std::string run_id = new_run_id();
  auto source = resolve_source(opt, ex);
  if (!source) return report_error(source.error());
  if (auto f = add_commit_facts(opt, *source); !f)
    return report_error(std::move(f.error()).context("source commit " + source->commit));
  // A replay keeps the recorded run identity (GITHUB_RUN_ID, ...).
  auto identity = [&](const char* key, const std::string& dflt) {
    return ex->run_identity.contains(key) ? ex->run_identity[key].get<std::string>() : dflt;
  };
  pipeline::Value github = {
      {"workflow", wf->name.empty() ? opt.workflow.filename().string() : wf->name},
      {"run_id", identity("GITHUB_RUN_ID", run_id)},
      {"run_number", identity("GITHUB_RUN_NUMBER", "1")},
      {"run_attempt", identity("GITHUB_RUN_ATTEMPT", "1")},
      {"event_name", "push"},
      {"actor", "lockstep"},
      {"repository", "local/" + source->name},
      {"repository_owner", "local"},
      {"ref", source->ref.empty() ? "" : "refs/heads/" + source->ref},
      {"ref_name", source->ref},
      {"sha", source->commit},
      {"server_url", "https://github.com"},
      {"workspace", "/__w/" + source->name + "/" + source->name},
      {"event", pipeline::Value::object()},
  };
  pipeline::EvalContext base;
  base.contexts["github"] = github;
  base.contexts["inputs"] = pipeline::Value::object();
  base.contexts["vars"] = pipeline::Value::object();
  std::vector<std::string> warnings;

  // Reusable workflows: every one the jobs call, read (remote ones fetched
  // once, through the same sources as actions) and checked before any job
  // starts.
  ActionSources actions(opt.state_dir, opt.actions, *lock ? &**lock : nullptr, ex->action_pins,
                        opt.frozen);
  WorkflowFiles workflow_files(opt.state_dir, actions,
                               OwnRepository{source->url, source->commit, source->patch},
                               opt.workflow, opt.frozen);
  auto calls = pipeline::load_call_graph(*wf, workflow_files.loader(),
                                         workflow_files.root_identity(), &warnings);
  if (!calls && opt.frozen && stale_lock)  // say first why the lock does not pin it
    return report_error(
        Error((opt.lock_file.empty() ? std::string("lockstep.lock") : opt.lock_file.string()) +
                  " does not match " + opt.workflow.string() +
                  ": run 'lockstep lock'\nlockstep: error:   " +
                  std::string(pipeline::first_line(calls.error())),
              0, ErrorKind::kUsage));
  if (!calls) return report_error(calls.error());

  // A matrix made from the outputs of the jobs it needs is expanded once
  // they ran: until then the job stands in the plan as one placeholder.
  std::vector<pipeline::JobInstance> expanded;
  for (const auto& job : wf->jobs) {
    if (pipeline::matrix_depends_on_needs(job)) {
      expanded.push_back({&job, pipeline::OrderedValue(), job.id + " (matrix from needs)"});
      continue;
    }
    auto one = pipeline::expand_job(*wf, job, base, &warnings);
    if (!one) return report_error(one.error());
    for (auto& i : *one) expanded.push_back(std::move(i));
  }
  auto* instances = &expanded;
  for (const auto& w : warnings) std::fprintf(stderr, "lockstep: warning: %s\n", w.c_str());
  for (const auto& ig : wf->ignored)
    std::fprintf(stderr, "lockstep: note: %s:%d:%d: '%s' in %s is accepted and ignored locally\n",
                 wf->file.c_str(), ig.loc.line, ig.loc.column, ig.key.c_str(), ig.where.c_str());

  // Selection: --job (with what it needs) and --matrix. A calling job is
  // selected by its id; the jobs it calls run with it.
  std::set<std::string> selected;
  if (!opt.jobs.empty()) {
    auto s = select_jobs(*wf, opt.jobs);
    if (!s) return report_error(s.error());
    selected = *s;
  }
  using ScopeKey = std::pair<const pipeline::CallScope*, std::string>;
  auto key_of = [](const pipeline::JobInstance& inst) {
    return ScopeKey{inst.scope.get(), inst.job->id};
  };
  std::vector<pipeline::JobInstance> plan;
  std::map<ScopeKey, size_t> per_job_total;
  for (auto& inst : *instances) {
    if (!selected.empty() && !selected.count(inst.job->id)) continue;
    bool wanted_job = opt.jobs.empty() ||
                      std::find(opt.jobs.begin(), opt.jobs.end(), inst.job->id) != opt.jobs.end();
    if (wanted_job && !inst.matrix.is_null() && !matrix_matches(inst.matrix, opt.matrix_filter))
      continue;
    ++per_job_total[key_of(inst)];
    plan.push_back(std::move(inst));
  }
  if (plan.empty()) return usage_error("no job instance matches the selection (--job/--matrix)");
  // Every instance as far as the run can know it before it starts: calls
  // replaced by the jobs they call.
  auto preview = [&] { return pipeline::preview_instances(plan, *wf, *calls, base); };
  // Before any job starts: every input pinned, or nothing runs (a matrix
  // from needs outputs is checked through its stand-in instance; the called
  // workflows' repositories were checked as they were read).
  if (opt.frozen) {
    auto all = preview();
    if (!all) return report_error(all.error());
    std::set<std::string> workflow_pins;
    for (const auto& cw : calls->workflows)
      if (!cw->repository.empty()) workflow_pins.insert(cw->repository + "@" + cw->ref);
    if (auto f = check_frozen(
            **lock, *all, base, platforms, source->url,
            stale_lock
                ? (opt.lock_file.empty() ? std::string("lockstep.lock") : opt.lock_file.string()) +
                      " does not match " + opt.workflow.string() + ": run 'lockstep lock'"
                : "",
            workflow_pins);
        !f)
      return report_error(f.error());
  }

  if (!source->warning.empty())
    std::fprintf(stderr, "lockstep: warning: %s\n", source->warning.c_str());

  if (opt.list || opt.dry_run) {
    auto all = preview();
    if (!all) return report_error(all.error());
    for (const auto& inst : *all) {
      std::string line = inst.display_name;
      if (opt.dry_run) {
        std::string image = inst.job->container ? inst.job->container->image : "(runs-on)";
        line += "  image=" + image;
        if (!inst.job->needs.empty()) {
          std::string needs;
          for (const auto& n : inst.job->needs) needs += (needs.empty() ? "" : ",") + n;
          line += "  needs=" + needs;
        }
        line += "  steps=" + std::to_string(inst.job->steps.size());
      }
      std::printf("%s\n", line.c_str());
    }
    return 0;
  }

  fs::path run_dir = opt.state_dir / "runs" / run_id;
  std::error_code ec;
  fs::create_directories(run_dir.parent_path(), ec);
  // A run never writes into another run's directory, however unlikely the
  // id clash.
  if (!ec && !fs::create_directory(run_dir, ec) && !ec)
    return report_error(Error("run directory " + run_dir.string() + " already exists"));
  if (ec) return report_error(Error("create " + run_dir.string() + ": " + ec.message()));
  if (auto r = executor::reap_stale(opt.state_dir); !r)
    std::fprintf(stderr, "lockstep: warning: cleaning up after an earlier run: %s\n",
                 r.error().message().c_str());

  Masker masker;
  for (const auto& [k, v] : opt.secrets) masker.add(v);
  pipeline::Value run_secrets = pipeline::Value::object();
  for (const auto& [k, v] : opt.secrets) run_secrets[k] = v;
  Console console(stdout, Console::stdout_is_tty());
  cache::ImageStore store(opt.state_dir);
  ImageResolver images(store, make_pull_fn(store, opt.insecure_registries, opt.mirror));
  auto exec = executor::make_linux_executor(opt.state_dir);
  RunNetworkOptions net;
  net.allow = opt.egress_allow;
  net.state_dir = opt.state_dir;
  if (*lock)
    for (const auto& f : (*lock)->fetches) net.pins[f.url] = f.sha256;
  for (const auto& [url, sha] : ex->fetch_pins) net.pins[url] = sha;
  net.refuse_unpinned = opt.frozen && opt.egress_unpinned == "refuse";
  RunNetwork network(std::move(net));  // outlives every job

  NodeRuntimeOnce node_runtime(opt.state_dir, ex->node_runtime_pin);
  RunShared shared;
  shared.actions = &actions;
  shared.node = &node_runtime;
  shared.frozen = opt.frozen;
  shared.state_dir = opt.state_dir;
  shared.run_dir = run_dir;
  shared.run_id = run_id;
  shared.workflow = &*wf;
  shared.lock = *lock ? &**lock : nullptr;
  shared.default_options = opt.default_options;
  if (!opt.network.empty()) shared.default_options += " --network " + opt.network;
  shared.network = &network;
  shared.executor = exec.get();
  shared.images = &images;
  shared.console = &console;
  shared.masker = &masker;
  shared.github = github;
  shared.extra_env = opt.env;
  shared.secrets = opt.secrets;
  shared.platforms = platforms;
  shared.hosted = &hosted;
  shared.repo_name = source->name;
  shared.source_url = source->url;
  shared.source_commit = source->commit;
  shared.dirty_patch = source->patch;
  shared.source_tree = source->tree;
  if (source->commit_time > 0) shared.source_date_epoch = source->commit_time;
  shared.default_env = {{"SOURCE_DATE_EPOCH", std::to_string(shared.source_date_epoch)},
                        {"TZ", "UTC"},
                        {"LANG", "C.UTF-8"}};
  for (const auto& [k, v] : ex->env_defaults) shared.default_env[k] = v;
  auto key = secret_hash_key(opt.state_dir);
  if (!key) return report_error(key.error());
  shared.secret_key = *key;
  if (opt.userns) shared.userns = default_user_namespace();
  shared.expected_docs = ex->expected_docs.empty() ? nullptr : &ex->expected_docs;
  shared.image_pins = ex->image_pins;
  shared.until_step = ex->until_step;
  shared.shell_at_stop = ex->shell;
  shared.vary = ex->vary;
  ex->run_id = run_id;
  ex->run_dir = run_dir;

  Budget budget = host_budget();
  if (opt.max_jobs) budget.max_jobs = *opt.max_jobs;

  // One schedule. Stand-ins are expanded by the scheduler as soon as their
  // own needs ended, while unrelated jobs keep running: a job whose matrix
  // comes from needs outputs becomes its instances, and each instance of a
  // calling job becomes the jobs of the workflow it calls (which may hold
  // stand-ins again). What needs a stand-in waits for everything it became.
  // Schedule index == index in instances_run/reports_run: deques, so the
  // references running jobs hold stay valid as expansions append.
  std::mutex run_mu;  // guards the containers below once the schedule runs
  std::deque<pipeline::JobInstance> instances_run;
  std::deque<JobReport> reports_run;
  std::deque<MatrixPosition> positions;
  // (call, job id) -> its instances' indices; the jobs of a called workflow
  // need each other within their call.
  std::map<ScopeKey, std::vector<size_t>> by_job;
  std::map<size_t, std::vector<size_t>> became;  // stand-in -> the instances it became
  std::map<size_t, std::shared_ptr<const pipeline::CallScope>> call_of;  // call -> its scope
  std::deque<JobReport> call_reports;  // what `needs` sees of calls (kept for its pointers)
  std::map<ScopeKey, size_t> seen;
  auto is_stand_in = [](const pipeline::JobInstance& inst) {
    return pipeline::is_stand_in(inst) || inst.job->call.has_value();
  };
  auto is_call = [](const pipeline::JobInstance& inst) {
    return !pipeline::is_stand_in(inst) && inst.job->call.has_value();
  };
  auto add_instance = [&](pipeline::JobInstance inst) {
    const ScopeKey k = key_of(inst);
    bool placeholder = pipeline::is_stand_in(inst);
    instances_run.push_back(std::move(inst));
    reports_run.emplace_back();
    positions.push_back(placeholder ? MatrixPosition{}
                                    : MatrixPosition{seen[k]++, per_job_total[k]});
    by_job[k].push_back(instances_run.size() - 1);
    return instances_run.size() - 1;
  };
  auto schedule_entry = [&](size_t i) {
    const auto& inst = instances_run[i];
    const auto& job = *inst.job;
    ScheduledJob sj;
    for (const auto& n : job.needs)
      if (auto it = by_job.find({inst.scope.get(), n}); it != by_job.end())
        sj.needs.insert(sj.needs.end(), it->second.begin(), it->second.end());
    // Matrix siblings: the instances of one job of one call.
    sj.group = std::to_string(reinterpret_cast<uintptr_t>(inst.scope.get())) + "/" + job.id;
    sj.fail_fast = job.strategy.fail_fast != "false";
    sj.max_parallel = job.strategy.max_parallel.value_or(0);
    sj.expands = is_stand_in(inst);
    // Reserve what the job's limits ask for, when they are plain text.
    if (job.container && !pipeline::has_expression(job.container->options)) {
      if (auto o = pipeline::parse_container_options(job.container->options)) {
        if (o->cpus_milli) sj.cpu_millis = static_cast<uint64_t>(*o->cpus_milli);
        if (o->memory_bytes) sj.memory_bytes = static_cast<uint64_t>(*o->memory_bytes);
      }
    }
    return sj;
  };
  // What `needs` sees of instance d, complete once the scheduler lets a job
  // that needs it start: a needed instance that never ran (cancelled,
  // skipped, a stand-in that settled) gets its row and the scheduler's
  // outcome; a call is its called workflow's result and outputs.
  std::function<const JobReport*(size_t, const std::vector<JobOutcome>&)> report_of;
  auto call_report = [&](size_t d, const std::vector<JobOutcome>& outcomes) -> const JobReport* {
    const auto& di = instances_run[d];
    JobReport r;
    r.job_id = di.job->id;
    r.display_name = di.display_name;
    r.matrix = di.matrix;
    auto c = call_of.find(d);
    if (c == call_of.end()) {  // skipped or failed before it called anything
      if (d < outcomes.size()) r.outcome = outcomes[d];
      call_reports.push_back(std::move(r));
      return &call_reports.back();
    }
    const auto& scope = c->second;
    std::vector<const JobReport*> jobs;
    for (const auto& j : scope->workflow().jobs)
      if (auto it = by_job.find({scope.get(), j.id}); it != by_job.end())
        for (size_t k : it->second) jobs.push_back(report_of(k, outcomes));
    r.outcome.result = call_result(jobs);
    if (r.outcome.result != JobResult::kSuccess)
      r.outcome.reason = "a job of " + scope->called->name() + " did not succeed";
    // Outputs of a call that succeeded, and only those it sets: with a
    // matrix on the calling job, `needs` takes each output from the last
    // call that set it (GitHub: "the last successful completing reusable
    // workflow of the matrix which actually sets a value").
    if (r.outcome.result == JobResult::kSuccess) {
      pipeline::EvalContext ctx = base;
      ctx.contexts["inputs"] = scope->inputs;
      auto outs = pipeline::call_outputs(*scope->called, needs_context(jobs), ctx);
      if (outs) {
        for (auto& [k, v] : *outs)
          if (!v.empty()) r.outputs[k] = std::move(v);
      } else {
        r.outcome = {
            JobResult::kFailure, std::string(pipeline::first_line(outs.error())), {}, false};
      }
    }
    call_reports.push_back(std::move(r));
    return &call_reports.back();
  };
  report_of = [&](size_t d, const std::vector<JobOutcome>& outcomes) -> const JobReport* {
    if (is_call(instances_run[d])) return call_report(d, outcomes);
    JobReport& r = reports_run[d];
    if (r.display_name.empty() && d < outcomes.size()) {
      r.job_id = instances_run[d].job->id;
      r.display_name = instances_run[d].display_name;
      r.matrix = instances_run[d].matrix;
      r.outcome = outcomes[d];
    }
    return &r;
  };
  auto needed_reports = [&](const pipeline::JobInstance& inst,
                            const std::vector<JobOutcome>& outcomes) {
    std::vector<const JobReport*> needed;
    for (const auto& n : inst.job->needs) {
      auto it = by_job.find({inst.scope.get(), n});
      if (it == by_job.end()) continue;
      for (size_t d : it->second) needed.push_back(report_of(d, outcomes));
    }
    return needed;
  };
  for (auto& inst : plan) add_instance(std::move(inst));
  std::vector<ScheduledJob> sched;
  for (size_t i = 0; i < instances_run.size(); ++i) sched.push_back(schedule_entry(i));

  // A stand-in whose needs ended: its instances, or why it runs none.
  ExpandFn expand = [&](size_t i, size_t, const std::vector<JobOutcome>& done) -> Expansion {
    std::lock_guard lk(run_mu);
    const pipeline::JobInstance inst = instances_run[i];
    const auto& job = *inst.job;
    const pipeline::Workflow& owner = pipeline::workflow_of(inst, *wf);
    auto needed = needed_reports(inst, done);
    pipeline::EvalContext ctx = base;
    if (inst.scope) ctx.contexts["inputs"] = inst.scope->inputs;
    ctx.contexts["needs"] = needs_context(needed);
    auto failed = [](const std::string& what, const Error& e) {
      return Expansion{
          {},
          JobOutcome{JobResult::kFailure, what + std::string(pipeline::first_line(e)), {}, false}};
    };
    std::vector<pipeline::JobInstance> more;
    if (pipeline::is_stand_in(inst)) {  // a matrix from needs outputs
      for (const JobReport* r : needed) {
        const auto& o = r->outcome;
        if (o.result != JobResult::kSuccess &&
            !(o.result == JobResult::kFailure && o.continue_on_error))
          return {{}, JobOutcome{JobResult::kSkipped, "a job it needs did not succeed", {}, false}};
      }
      std::vector<std::string> w;
      auto m = pipeline::expand_job(owner, job, ctx, &w);
      for (const auto& x : w) std::fprintf(stderr, "lockstep: warning: %s\n", x.c_str());
      if (!m) return failed("matrix: ", m.error());
      bool wanted_job = opt.jobs.empty() || inst.scope ||
                        std::find(opt.jobs.begin(), opt.jobs.end(), job.id) != opt.jobs.end();
      for (auto& one : *m) {
        if (!inst.scope && wanted_job && !matrix_matches(one.matrix, opt.matrix_filter)) continue;
        if (inst.scope) one.display_name = inst.scope->prefix() + one.display_name;
        one.scope = inst.scope;
        more.push_back(std::move(one));
      }
      by_job[key_of(inst)].clear();  // from now on the job is its instances
    } else {  // a call: the caller's if:, its inputs and secrets, then the called jobs
      ctx = pipeline::instance_context(ctx, inst, positions[i].index, positions[i].total);
      ctx.contexts["secrets"] = inst.scope ? inst.scope->secrets : run_secrets;
      ctx.status = needs_status(needed);
      auto go = pipeline::evaluate_if(job.if_expr, ctx);
      if (!go) return failed("", go.error());
      if (!*go) {
        std::string why = job.if_expr.empty() ? "a job it needs did not succeed"
                                              : "if: " + job.if_expr + " was false";
        console.line(inst.display_name, "skipped: " + why);
        return {{}, JobOutcome{JobResult::kSkipped, why, {}, false}};
      }
      auto scope = pipeline::make_call_scope(inst, *wf, *calls, ctx);
      if (!scope) return failed("", scope.error());
      auto secrets = pipeline::bind_secrets(owner, job, *(*scope)->called, ctx);
      if (!secrets) return failed("", secrets.error());
      for (auto it = secrets->begin(); it != secrets->end(); ++it)
        if (it.value().is_string()) masker.add(it.value().get<std::string>());
      (*scope)->secrets = std::move(*secrets);
      std::vector<std::string> w;
      auto jobs = pipeline::expand_call(*scope, base, &w);
      for (const auto& x : w) std::fprintf(stderr, "lockstep: warning: %s\n", x.c_str());
      if (!jobs) return failed("", jobs.error());
      call_of[i] = *scope;
      more = std::move(*jobs);
    }
    std::map<ScopeKey, size_t> counts;
    for (const auto& one : more)
      if (!pipeline::is_stand_in(one)) ++counts[key_of(one)];
    for (const auto& [k, n] : counts) per_job_total[k] = n;
    became[i].clear();
    Expansion e;
    for (auto& one : more) {
      size_t k = add_instance(std::move(one));
      became[i].push_back(k);
    }
    // Entries after all of them: a called job's needs name jobs declared
    // after it too.
    for (size_t k : became[i]) e.jobs.push_back(schedule_entry(k));
    return e;
  };

  CancelToken global;
  bool interrupted = false;
  std::vector<JobOutcome> outcomes;
  {
    SignalWatcher signals(global);
    outcomes = run_schedule(
        sched, budget,
        [&](size_t i, const std::vector<JobOutcome>& done, CancelToken& token) {
          const pipeline::JobInstance* inst;
          JobReport* report;
          MatrixPosition pos;
          std::vector<const JobReport*> needed;
          {
            std::lock_guard lk(run_mu);
            inst = &instances_run[i];
            report = &reports_run[i];
            pos = positions[i];
            needed = needed_reports(*inst, done);
            if (inst->scope) describe_call(*inst->scope, actions, *report);
          }
          return run_job(shared, *inst, i, pos, needed, token, *report);
        },
        global, expand);
    interrupted = signals.interrupted();
  }
  // Every instance gets a report row in plan order, a stand-in's instances
  // in its place (recursively: a call's jobs in the call's place); jobs that
  // never started (skipped, cancelled) too.
  std::vector<JobReport> reports;
  std::set<size_t> children;
  for (const auto& [stand_in, kids] : became) children.insert(kids.begin(), kids.end());
  auto emit = [&](size_t i) {
    JobReport& r = reports_run[i];
    if (r.display_name.empty()) {
      r.job_id = instances_run[i].job->id;
      r.display_name = instances_run[i].display_name;
      r.matrix = instances_run[i].matrix;
      if (instances_run[i].scope) describe_call(*instances_run[i].scope, actions, r);
    }
    r.outcome = outcomes[i];
    reports.push_back(std::move(r));
  };
  std::function<void(size_t)> emit_tree = [&](size_t i) {
    if (auto it = became.find(i); it != became.end()) {
      for (size_t k : it->second) emit_tree(k);
      return;
    }
    emit(i);
  };
  for (size_t i = 0; i < reports_run.size(); ++i)
    if (!children.count(i)) emit_tree(i);
  RunSummary summary{run_id, wf->name, opt.workflow.string(), &reports, interrupted};
  if (!ex->quiet_summary) print_summary(console, summary, matrix_text);
  // What could not be written is reported, and the run then exits
  // kExitNotRecorded: replay and reports depend on it.
  bool unrecorded = false;
  for (const auto& [kind, file] : opt.reports) {
    auto r =
        kind == "junit" ? write_junit(file, summary, masker) : write_json(file, summary, masker);
    if (!r) {
      report_error(Error(r.error()).context("write the " + kind + " report " + file.string()));
      unrecorded = true;
    }
  }
  int exit_code = 0;
  if (interrupted) {
    exit_code = 130;
  } else {
    for (const auto& r : reports) {
      if ((r.outcome.result == JobResult::kFailure && !r.outcome.continue_on_error) ||
          r.outcome.result == JobResult::kCancelled)
        exit_code = 1;
    }
  }
  {
    RecordInput rec;
    rec.run_id = run_id;
    rec.kind = ex->kind;
    rec.replay_of = ex->replay_of;
    rec.started_at = started_at;
    rec.finished_at = std::chrono::system_clock::now();
    rec.exit_code = exit_code;
    rec.interrupted = interrupted;
    rec.workflow_path = ex->workflow_display.empty() ? opt.workflow : ex->workflow_display;
    rec.workflow_name = wf->name;
    rec.workflow_text = wf->source;
    rec.called_files = workflow_files.files_read();
    if (*lock) {
      rec.lock_path = opt.lock_file.empty() ? default_lock_path(opt.workflow) : opt.lock_file;
      rec.lock_text = pipeline::serialize_lockfile(**lock);
    }
    rec.source_url = source->url;
    rec.source_ref = source->ref;
    rec.source_commit = source->commit;
    rec.source_tree = source->tree;
    rec.source_commit_time = source->commit_time;
    rec.dirty_patch = source->patch;
    Json env = Json::object();
    for (const auto& [k, v] : opt.env) env[k] = masker.mask(v);
    Json secret_names = Json::array();
    for (const auto& [k, v] : opt.secrets) secret_names.push_back(k);
    Json platforms_json = Json::object();
    for (const auto& [k, v] : opt.platforms) platforms_json[k] = v;
    Json matrix = Json::object();
    for (const auto& [k, v] : opt.matrix_filter) matrix[k] = v;
    rec.options = {{"env", env},
                   {"secret_names", secret_names},
                   {"platforms", platforms_json},
                   {"jobs", opt.jobs},
                   {"matrix", matrix},
                   {"until", ex->until_step},
                   {"userns", opt.userns}};
    if (!opt.network.empty()) rec.options["network"] = opt.network;
    Json allow = Json::array();
    for (const auto& e : opt.egress_allow) allow.push_back(e.text);
    rec.options["egress_allow"] = allow;
    rec.run_identity = {{"GITHUB_RUN_ID", github["run_id"]},
                        {"GITHUB_RUN_NUMBER", github["run_number"]},
                        {"GITHUB_RUN_ATTEMPT", github["run_attempt"]},
                        {"repository_name", source->name}};
    rec.secret_key_id = sha256_of(shared.secret_key).hex().substr(0, 16);
    rec.jobs = &reports;
    rec.run_dir = run_dir;
    rec.state_dir = opt.state_dir;
    rec.verify = ex->verify;
    ex->record = build_record(rec);
    if (!ex->write_record) {
      // verify records its builds together
    } else if (auto saved = save_record(opt.state_dir, run_dir, ex->record); !saved) {
      report_error(std::move(saved.error()).context("write the run record of " + run_id));
      unrecorded = true;
    } else if (auto prov = write_provenance(ex->record, run_dir / "provenance.json"); !prov) {
      report_error(std::move(prov.error()).context("write provenance"));
      unrecorded = true;
    } else if (!ex->quiet_summary) {
      std::fprintf(stderr, "lockstep: run %s recorded in %s\n", run_id.c_str(),
                   (run_dir / "record.json").c_str());
    }
  }
  if (interrupted) return 130;
  bool any_failed = false;
  for (const auto& r : reports) {
    if (r.outcome.result == JobResult::kFailure && !r.outcome.continue_on_error) {
      any_failed = true;
      std::fprintf(stderr, "lockstep: error: job %s: %s\n", r.display_name.c_str(),
                   masker.mask(r.outcome.reason).c_str());
    }
    if (r.outcome.result == JobResult::kCancelled) any_failed = true;
  }
  return any_failed ? 1 : unrecorded ? kExitNotRecorded : 0;
}

}  // namespace lockstep::runner
