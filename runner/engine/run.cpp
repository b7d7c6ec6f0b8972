#include "runner/engine/run.hpp"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <random>
#include <set>
#include <thread>
#include <utility>

#include "cache/artifacts.hpp"
#include "cache/git_mirror.hpp"
#include "cache/git_worktree.hpp"
#include "cache/image_store.hpp"
#include "common/fs.hpp"
#include "common/json.hpp"
#include "common/userns.hpp"
#include "executor/executor.hpp"
#include "executor/rootless.hpp"
#include "pipeline/diagnostic.hpp"
#include "pipeline/expr.hpp"
#include "pipeline/graph.hpp"
#include "pipeline/matrix.hpp"
#include "pipeline/parse.hpp"
#include "pipeline/workflow_call.hpp"
#include "runner/cli/cli.hpp"
#include "runner/engine/action_source.hpp"
#include "runner/engine/github_context.hpp"
#include "runner/engine/job.hpp"
#include "runner/engine/lock_use.hpp"
#include "runner/engine/network.hpp"
#include "runner/engine/project.hpp"
#include "runner/engine/pull.hpp"
#include "runner/engine/remote_cache.hpp"
#include "runner/engine/run_plan.hpp"
#include "runner/engine/scheduler.hpp"
#include "runner/engine/secret_key.hpp"
#include "runner/engine/workflow_source.hpp"

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

// Jobs selected with --job, plus every job they need, transitively, except
// those whose results are given (--needs).
Result<std::set<std::string>> select_jobs(const pipeline::Workflow& wf,
                                          const std::vector<std::string>& wanted,
                                          const GivenNeeds& given) {
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
    if (given.count(w))
      return fail("--job '" + w + "' is also in --needs: a job is either run or given",
                  ErrorKind::kUsage);
    todo.push_back(w);
  }
  for (const auto& [id, need] : given) {
    bool found = false;
    for (const auto& j : wf.jobs) found = found || j.id == id;
    if (!found) return fail("--needs: '" + id + "' is not a job of " + wf.file, ErrorKind::kUsage);
  }
  while (!todo.empty()) {
    std::string id = todo.back();
    todo.pop_back();
    if (given.count(id) || !out.insert(id).second) continue;
    for (const auto& j : wf.jobs)
      if (j.id == id)
        for (const auto& n : j.needs) todo.push_back(n);
  }
  return out;
}

// The workflow's own repository: --repo/--ref, else the git working tree the
// workflow file lives in (at HEAD), else none.
struct Source {
  std::string url, commit, ref, patch, tree;
  std::string name = "workspace";
  std::string warning;  // said once the run is sure to go ahead
  int64_t commit_time = 0;
  RepositoryIdentity identity = local_identity("workspace");
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

Result<Source> resolve_source(const RunOptions& opt, const ReplayInputs& replay) {
  Source s;
  if (replay.source_commit) {  // replay: the recorded source
    s.url = replay.source_url.value_or("");
    s.commit = *replay.source_commit;
    s.patch = replay.source_patch.value_or("");
    s.ref = replay.source_ref.value_or("");
    if (replay.run_identity.contains("repository_name"))
      s.name = replay.run_identity["repository_name"].get<std::string>();
    s.identity = local_identity(s.name);
    auto recorded = [&](const char* key, std::string& into) {
      if (replay.run_identity.contains(key) && replay.run_identity[key].is_string())
        into = replay.run_identity[key].get<std::string>();
    };
    recorded("repository", s.identity.repository);
    recorded("repository_owner", s.identity.owner);
    recorded("server_url", s.identity.server_url);
    recorded("repository_url", s.identity.clone_url);
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
    s.identity = repository_identity(opt.repo, s.name);
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
  s.identity = repository_identity(st->root.string(), s.name);
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

}  // namespace

Result<GivenNeeds> given_needs_from_json(const Json& j, const std::string& where) {
  if (!j.is_object())
    return fail(where + ": expected an object of job id -> {result, outputs}", ErrorKind::kUsage);
  GivenNeeds out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string at = where + ": job '" + it.key() + "'";
    if (!it->is_object()) return fail(at + ": expected {result, outputs}", ErrorKind::kUsage);
    GivenNeed n;
    std::string result = it->contains("result") && (*it)["result"].is_string()
                             ? (*it)["result"].get<std::string>()
                             : "";
    bool known = false;
    for (JobResult r :
         {JobResult::kSuccess, JobResult::kFailure, JobResult::kCancelled, JobResult::kSkipped})
      if (result == to_string(r)) {
        n.result = r;
        known = true;
      }
    if (!known)
      return fail(at + ": 'result' must be success, failure, cancelled or skipped",
                  ErrorKind::kUsage);
    if (it->contains("outputs")) {
      const Json& o = (*it)["outputs"];
      if (!o.is_object()) return fail(at + ": 'outputs' must be an object", ErrorKind::kUsage);
      for (auto ot = o.begin(); ot != o.end(); ++ot) {
        if (!ot->is_string())
          return fail(at + ": output '" + ot.key() + "' must be a string", ErrorKind::kUsage);
        n.outputs[ot.key()] = ot->get<std::string>();
      }
    }
    out[it.key()] = std::move(n);
  }
  return out;
}

Json given_needs_to_json(const GivenNeeds& needs) {
  Json out = Json::object();
  for (const auto& [id, n] : needs) {
    Json outputs = Json::object();
    for (const auto& [k, v] : n.outputs) outputs[k] = v;
    out[id] = {{"result", to_string(n.result)}, {"outputs", outputs}};
  }
  return out;
}

namespace {

// One run into `out`; returns its exit code (RunOutcome::exit_code).
int run_jobs(const RunOptions& opt, const RunExtras& extras, RunOutcome& out) {
  const ReplayInputs& replay = extras.replay;
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
  auto source = resolve_source(opt, replay);
  if (!source) return report_error(source.error());
  if (auto f = add_commit_facts(opt, *source); !f)
    return report_error(std::move(f.error()).context("source commit " + source->commit));
  // A replay keeps the recorded run identity (GITHUB_RUN_ID, ...).
  auto identity = [&](const char* key, const std::string& dflt) {
    return replay.run_identity.contains(key) ? replay.run_identity[key].get<std::string>() : dflt;
  };
  GithubContextInput gin;
  gin.workflow = wf->name.empty() ? opt.workflow.filename().string() : wf->name;
  gin.run_id = identity("GITHUB_RUN_ID", run_id);
  gin.run_number = identity("GITHUB_RUN_NUMBER", "1");
  gin.run_attempt = identity("GITHUB_RUN_ATTEMPT", "1");
  gin.branch = source->ref;
  gin.sha = source->commit;
  gin.dir_name = source->name;
  gin.identity = source->identity;
  // A replay keeps the recorded event (a pull request's job replays as one).
  gin.event_name = identity("event_name", opt.event_name);
  gin.event = replay.run_identity.contains("event") && replay.run_identity["event"].is_object()
                  ? replay.run_identity["event"]
                  : opt.event;
  pipeline::Value github = github_context(gin);
  pipeline::EvalContext base;
  base.contexts["github"] = github;
  base.contexts["inputs"] = pipeline::Value::object();
  base.contexts["vars"] = pipeline::Value::object();
  for (const auto& [k, v] : opt.vars) base.contexts["vars"][k] = v;
  std::vector<std::string> warnings;

  // Reusable workflows: every one the jobs call, read (remote ones fetched
  // once, through the same sources as actions) and checked before any job
  // starts.
  ActionSources actions(opt.state_dir, opt.actions, *lock ? &**lock : nullptr, replay.action_pins,
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
  if (!opt.given_needs.empty() && opt.jobs.empty())
    return usage_error(
        "--needs gives the results of the jobs --job needs: name the job with --job");
  std::set<std::string> selected;
  if (!opt.jobs.empty()) {
    auto s = select_jobs(*wf, opt.jobs, opt.given_needs);
    if (!s) return report_error(s.error());
    selected = *s;
  }
  std::vector<pipeline::JobInstance> plan;
  for (auto& inst : *instances) {
    if (!selected.empty() && !selected.count(inst.job->id)) continue;
    bool wanted_job = opt.jobs.empty() ||
                      std::find(opt.jobs.begin(), opt.jobs.end(), inst.job->id) != opt.jobs.end();
    if (wanted_job && !inst.matrix.is_null() && !matrix_matches(inst.matrix, opt.matrix_filter))
      continue;
    // A stand-in (a matrix from needs outputs) stays: its expansion keeps
    // the exact cell.
    if (wanted_job && opt.matrix_exact && !inst.matrix.is_null() &&
        Json::parse(inst.matrix.dump()) != *opt.matrix_exact)
      continue;
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

  // Without root every container joins the user's user namespace
  // (docs/rootless.md); what the host does not allow is said before the run
  // leaves anything behind.
  std::optional<executor::UserNamespace> rootless_userns;
  bool limits_enforced = true;
  if (running_rootless() && !extras.executor) {
    auto u = executor::rootless_user_namespace();
    if (!u) return report_error(u.error());
    auto host = executor::rootless_host();
    if (!host) return report_error(host.error());
    rootless_userns = *u;
    // Said once per process (verify runs several builds).
    static bool said = false;
    const bool say = !std::exchange(said, true);
    if (auto m = rootless_mapping(); say && m && !m->limitation.empty())
      std::fprintf(stderr, "lockstep: note: %s\n", m->limitation.c_str());
    if (!host->limits_enforced) {
      limits_enforced = false;
      if (say)
        std::fprintf(stderr,
                     "lockstep: warning: memory, CPU and pids limits are not enforced without "
                     "root here: %s\n",
                     host->limits_note.c_str());
    }
  }

  // A lockstep server's shared dependency caches (an agent's job).
  std::shared_ptr<const RemoteCache> remote_cache;
  if (!opt.cache_server.empty()) {
    auto rc = RemoteCache::load(opt.cache_server);
    if (!rc) return report_error(rc.error());
    remote_cache = std::move(*rc);
  }

  // Artifacts uploaded elsewhere in this run (an agent of `lockstep
  // server` runs one job), taken before anything else of the run exists.
  if (!opt.import_artifacts.empty()) {
    cache::ArtifactStore store(opt.state_dir);
    std::vector<fs::path> manifests;
    std::error_code dec;
    for (auto it = fs::directory_iterator(opt.import_artifacts, dec); !dec && it != fs::end(it);
         it.increment(dec))
      if (it->path().extension() == ".json") manifests.push_back(it->path());
    if (dec)
      return report_error(
          Error("--import-artifacts " + opt.import_artifacts.string() + ": " + dec.message(), 0,
                ErrorKind::kUsage));
    std::sort(manifests.begin(), manifests.end());
    for (const auto& m : manifests) {
      auto text = read_file(m);
      auto adopted = text ? store.adopt(run_id, *text)
                          : Result<cache::ArtifactInfo>(tl::unexpected(text.error()));
      if (!adopted) {
        fs::remove_all(opt.state_dir / "artifacts" / "runs" / run_id, dec);
        return report_error(std::move(adopted.error()).context("--import-artifacts " + m.string()));
      }
    }
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

  auto masker_owned = std::make_shared<Masker>();
  out.masker = masker_owned;
  Masker& masker = *masker_owned;
  for (const auto& [k, v] : opt.secrets) masker.add(v);
  pipeline::Value run_secrets = pipeline::Value::object();
  for (const auto& [k, v] : opt.secrets) run_secrets[k] = v;
  Console console(stdout, Console::stdout_is_tty());
  cache::ImageStore store(opt.state_dir);
  ImageResolver images(store, make_pull_fn(store, opt.insecure_registries, opt.mirror));
  std::unique_ptr<executor::Executor> linux_executor;
  executor::Executor* exec = extras.executor;
  if (!exec) {
    linux_executor = executor::make_linux_executor(opt.state_dir);
    exec = linux_executor.get();
  }
  RunNetworkOptions net;
  net.allow = opt.egress_allow;
  net.state_dir = opt.state_dir;
  if (*lock)
    for (const auto& f : (*lock)->fetches) net.pins[f.url] = f.sha256;
  for (const auto& [url, sha] : replay.fetch_pins) net.pins[url] = sha;
  net.refuse_unpinned = opt.frozen && opt.egress_unpinned == "refuse";
  net.inspect = opt.egress_inspect;
  net.ca_files = opt.egress_ca;
  net.run_id = run_id;
  RunNetwork network(std::move(net));  // outlives every job

  NodeRuntimeOnce node_runtime(opt.state_dir, replay.node_runtime_pin);
  RunContext context;
  context.actions = &actions;
  context.node = &node_runtime;
  context.frozen = opt.frozen;
  context.remote_cache = remote_cache;
  context.state_dir = opt.state_dir;
  context.run_dir = run_dir;
  context.run_id = run_id;
  context.workflow = &*wf;
  context.lock = *lock ? &**lock : nullptr;
  context.default_options = opt.default_options;
  if (!opt.network.empty()) context.default_options += " --network " + opt.network;
  context.network = &network;
  context.executor = exec;
  context.images = &images;
  context.console = &console;
  context.masker = &masker;
  context.github = github;
  context.vars = base.contexts["vars"];
  context.extra_env = opt.env;
  context.secrets = opt.secrets;
  context.platforms = platforms;
  context.hosted = &hosted;
  context.repo_name = source->name;
  context.source_url = source->url;
  context.source_commit = source->commit;
  context.dirty_patch = source->patch;
  context.source_tree = source->tree;
  if (source->commit_time > 0) context.source_date_epoch = source->commit_time;
  context.default_env = {{"SOURCE_DATE_EPOCH", std::to_string(context.source_date_epoch)},
                         {"TZ", "UTC"},
                         {"LANG", "C.UTF-8"}};
  for (const auto& [k, v] : extras.env_defaults) context.default_env[k] = v;
  auto key = secret_hash_key(opt.state_dir);
  if (!key) return report_error(key.error());
  context.secret_key = *key;
  if (opt.userns) context.userns = default_user_namespace();
  if (rootless_userns) context.userns = rootless_userns;
  context.limits_enforced = limits_enforced;
  context.replay.expected_docs = replay.expected_docs.empty() ? nullptr : &replay.expected_docs;
  context.replay.image_pins = replay.image_pins;
  context.replay.until_step = replay.until_step;
  context.replay.shell_at_stop = replay.shell;
  context.vary = extras.vary;
  out.run_id = run_id;
  out.run_dir = run_dir;

  Budget budget = host_budget();
  if (opt.max_jobs) budget.max_jobs = *opt.max_jobs;

  // One schedule: stand-ins (matrices from needs outputs, calls of reusable
  // workflows) are expanded as soon as their own needs ended, while
  // unrelated jobs keep running (runner/engine/run_plan.hpp).
  RunPlan::Context plan_ctx;
  plan_ctx.workflow = &*wf;
  plan_ctx.calls = &*calls;
  plan_ctx.base = base;
  plan_ctx.secrets = run_secrets;
  plan_ctx.jobs = opt.jobs;
  plan_ctx.matrix_filter = opt.matrix_filter;
  plan_ctx.matrix_exact = opt.matrix_exact;
  plan_ctx.masker = &masker;
  plan_ctx.console = &console;
  plan_ctx.actions = &actions;
  for (const auto& [id, n] : opt.given_needs) {
    JobReport r;
    r.job_id = id;
    r.display_name = id;
    r.outcome.result = n.result;
    r.outputs = n.outputs;
    plan_ctx.given_needs.emplace(id, std::move(r));
  }
  RunPlan run_plan(std::move(plan_ctx), std::move(plan));
  std::vector<ScheduledJob> sched = run_plan.schedule();
  ExpandFn expand = [&](size_t i, size_t, const std::vector<JobOutcome>& done) {
    return run_plan.expand(i, done);
  };

  CancelToken global;
  bool interrupted = false;
  std::vector<JobOutcome> outcomes;
  {
    SignalWatcher signals(global);
    outcomes = run_schedule(
        sched, budget,
        [&](size_t i, const std::vector<JobOutcome>& done, CancelToken& token) {
          RunPlan::Start s = run_plan.start(i, done);
          return run_job(context, *s.instance, i, s.position, s.needed, token, *s.report);
        },
        global, expand);
    interrupted = signals.interrupted();
  }
  // Job containers are torn down behind the jobs (Executor::retire): the
  // run waits for that here, and a container not torn down completely fails
  // the run (nothing may be left behind).
  bool teardown_failed = false;
  if (auto settled = exec->settle(); !settled) {
    report_error(std::move(settled.error()).context("after the jobs"));
    teardown_failed = true;
  }
  out.ran = true;
  out.interrupted = interrupted;
  out.teardown_failed = teardown_failed;
  out.jobs = run_plan.reports(outcomes);
  int exit_code = 0;
  if (interrupted) {
    exit_code = 130;
  } else {
    for (const auto& r : out.jobs) {
      if (r.outcome.failed() || r.outcome.result == JobResult::kCancelled) exit_code = 1;
    }
    if (teardown_failed) exit_code = 1;
  }
  RunFacts& rec = out.facts;
  rec.started_at = started_at;
  rec.finished_at = std::chrono::system_clock::now();
  rec.workflow_path = opt.workflow;
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
                 {"until", replay.until_step},
                 {"userns", opt.userns}};
  if (!opt.network.empty()) rec.options["network"] = opt.network;
  if (!opt.vars.empty()) {
    Json vars = Json::object();
    for (const auto& [k, v] : opt.vars) vars[k] = masker.mask(v);
    rec.options["vars"] = vars;
  }
  if (!opt.given_needs.empty()) {
    Json given = given_needs_to_json(opt.given_needs);
    for (auto& [id, n] : given.items())
      for (auto& [k, v] : n["outputs"].items()) v = masker.mask(v.get<std::string>());
    rec.options["needs"] = given;
  }
  Json allow = Json::array();
  for (const auto& e : opt.egress_allow) allow.push_back(e.text);
  rec.options["egress_allow"] = allow;
  if (opt.egress_inspect) {
    rec.options["egress_inspect"] = true;
    Json ca = Json::array();
    for (const auto& f : opt.egress_ca) ca.push_back(f.string());
    rec.options["egress_ca"] = ca;
  }
  rec.run_identity = {
      {"GITHUB_RUN_ID", github["run_id"]},           {"GITHUB_RUN_NUMBER", github["run_number"]},
      {"GITHUB_RUN_ATTEMPT", github["run_attempt"]}, {"repository_name", source->name},
      {"repository", source->identity.repository},   {"repository_owner", source->identity.owner},
      {"server_url", source->identity.server_url},   {"repository_url", source->identity.clone_url},
      {"event_name", github["event_name"]},          {"event", github["event"]}};
  rec.secret_key_id = sha256_of(context.secret_key).hex().substr(0, 16);
  return exit_code;
}

}  // namespace

RunOutcome run_workflow(const RunOptions& options, const RunExtras& extras) {
  RunOutcome out;
  out.exit_code = run_jobs(options, extras, out);
  return out;
}

}  // namespace lockstep::runner
