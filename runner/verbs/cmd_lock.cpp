// `lockstep lock`: resolves a workflow's inputs into lockstep.lock.
#include "runner/verbs/cmd_lock.hpp"

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include "cache/git_mirror.hpp"
#include "cache/git_worktree.hpp"
#include "cache/image_store.hpp"
#include "common/digest.hpp"
#include "common/fs.hpp"
#include "pipeline/action.hpp"
#include "pipeline/lock_inputs.hpp"
#include "pipeline/lockfile.hpp"
#include "pipeline/parse.hpp"
#include "pipeline/workflow_call.hpp"
#include "registry-mirror/client.hpp"
#include "registry-mirror/reference.hpp"
#include "runner/cli/cli.hpp"
#include "runner/cli/version.hpp"
#include "runner/engine/action_source.hpp"
#include "runner/engine/github_context.hpp"
#include "runner/engine/node_runtime.hpp"
#include "runner/engine/project.hpp"
#include "runner/engine/pull.hpp"
#include "runner/engine/workflow_source.hpp"
#include "runner/records/fetch_view.hpp"
#include "runner/verbs/run_options.hpp"

namespace lockstep::runner {
namespace fs = std::filesystem;

namespace {

const CommandLine& lock_command_line() {
  static const CommandLine cl(
      "lockstep lock [WORKFLOW] [options]",
      "Resolves every image (job containers, services, runs-on mappings), every\n"
      "actions/checkout ref and every action and reusable workflow repository of\n"
      "WORKFLOW (and of the workflows it calls) to digests and commits, and writes them to\n"
      "lockstep.lock at the repository root (next to the workflow outside a\n"
      "repository). WORKFLOW defaults to the only file in .github/workflows/.",
      {
          {"output", 'o', true, false, "FILE", "write the lock here (default: see above)"},
          {"check", 0, false, false, "",
           "resolve again and exit 1 listing what changed when the lock is stale"},
          {"config", 0, true, false, "FILE", "project config (default: .lockstep.yml)"},
          {"platform", 'P', true, true, "LABEL=IMAGE", "map runs-on LABEL to IMAGE"},
          {"insecure-registry", 0, true, true, "HOST", "allow plain HTTP for this registry"},
          mirror_spec(),
          {"actions-url", 0, true, false, "URL",
           "fetch OWNER/REPO actions from URL/OWNER/REPO (default: https://github.com)"},
          {"fetches", 0, true, false, "RUN",
           "pin every download RUN recorded through lockstep's proxy (URL -> sha256)"},
          state_dir_spec(),
      });
  return cl;
}

struct LockOptions {
  fs::path workflow, output, config_file, state_dir;
  bool check = false;
  std::map<std::string, std::string> platforms;
  std::vector<std::string> insecure;
  std::string mirror;  // normalized URL
  ActionsConfig actions;
  bool actions_url_given = false;
  std::string fetches_run;  // --fetches RUN
};

// Every action repository the workflow uses, also inside composite actions
// (read from their metadata) and in the reusable workflows it calls, and
// every reusable workflow's repository, at the commit its ref names now;
// and the Node.js runtime when any job runs actions.
Status lock_actions(const LockOptions& o, ActionSources& sources, const pipeline::Workflow& wf,
                    const pipeline::CallGraph& calls,
                    const std::map<std::string, std::vector<std::string>>& top,
                    pipeline::Lockfile& lock) {
  std::map<std::string, pipeline::LockedAction> by_key;
  // Reusable workflows' repositories (resolved as they were read).
  std::map<std::string, std::string> urls;
  for (const auto& r : sources.resolved()) urls[r.key] = r.url;
  for (const auto& [job, cw] : calls.callee) {
    if (cw->repository.empty()) continue;
    std::string key = cw->repository + "@" + cw->ref;
    auto& la = by_key[key];
    la.repository = cw->repository;
    la.ref = cw->ref;
    la.commit = cw->commit;
    la.url = urls[key];
    la.jobs.push_back(job->id);
  }
  std::function<Status(const std::string&, const std::vector<std::string>&, int)> visit =
      [&](const std::string& uses, const std::vector<std::string>& jobs, int depth) -> Status {
    if (depth > 9)
      return fail("action '" + uses + "': composite actions nested more than 9 deep",
                  ErrorKind::kWorkflow);
    LS_TRY_ASSIGN(pipeline::ActionRef ref, pipeline::parse_action_ref(uses));
    if (ref.builtin() || ref.kind != pipeline::ActionRef::Kind::kRepository) return {};
    auto a = sources.resolve_action(ref);
    if (!a) return fail(std::move(a.error()).context("lock action '" + uses + "'"));
    std::string key = a->repo.key;
    auto [it, fresh] = by_key.try_emplace(key);
    auto& la = it->second;
    la.repository = ref.repository();
    la.ref = ref.ref;
    la.commit = a->repo.commit;
    la.url = a->repo.url;
    la.jobs.insert(la.jobs.end(), jobs.begin(), jobs.end());
    (void)fresh;
    if (a->manifest->kind == pipeline::ActionKind::kComposite)
      for (const auto& s : a->manifest->steps)
        if (s.uses) LS_TRY(visit(*s.uses, jobs, depth + 1));
    return {};
  };
  for (const auto& [uses, jobs] : top) LS_TRY(visit(uses, jobs, 0));
  for (auto& [k, a] : by_key) lock.actions.push_back(std::move(a));
  bool any = !top.empty();
  std::vector<const pipeline::Workflow*> workflows = {&wf};
  for (const auto& cw : calls.workflows) workflows.push_back(&cw->workflow);
  for (const auto* w : workflows)
    for (const auto& job : w->jobs)
      for (const auto& s : job.steps)
        if (s.uses)
          if (auto ref = pipeline::parse_action_ref(*s.uses);
              ref && ref->kind == pipeline::ActionRef::Kind::kLocal)
            any = true;
  if (any) {
    LS_TRY_ASSIGN(NodeRuntime node, prepare_node_runtime(o.state_dir));
    lock.node_runtime = node.digest;
  }
  return {};
}

Result<LockOptions> parse_options(const std::vector<std::string>& args) {
  LS_TRY_ASSIGN(ParsedArgs p, lock_command_line().parse(args));
  LockOptions o;
  LS_TRY_ASSIGN(o.workflow, workflow_argument(p));
  o.output = p.get("output").value_or("");
  o.check = p.has("check");
  o.config_file = p.get("config").value_or("");
  for (const auto& s : p.all("platform")) {
    LS_TRY_ASSIGN(auto kv, split_key_value(s, "platform", "LABEL=IMAGE"));
    o.platforms[kv.first] = kv.second;
  }
  o.insecure = p.all("insecure-registry");
  LS_TRY_ASSIGN(o.mirror, mirror_option(p));
  if (auto u = p.get("actions-url")) {
    o.actions.base_url = *u;
    o.actions_url_given = true;
  }
  o.state_dir = p.get("state-dir").value_or("");
  o.fetches_run = p.get("fetches").value_or("");
  return o;
}

// One image: through its registry, else (or for localhost/ names) from the
// local image store.
class ImageLocker {
 public:
  ImageLocker(const fs::path& state_dir, std::vector<std::string> insecure, std::string mirror)
      : store_(state_dir), settings_{std::move(insecure), std::move(mirror)} {}

  Result<pipeline::LockedImage> lock(const std::string& text) {
    pipeline::LockedImage img;
    img.reference = text;
    auto ref = registry::Reference::parse(text);
    Error registry_error("not tried");
    if (ref && ref->domain != "localhost") {
      auto resolved = resolve_remote(*ref);
      if (resolved) {
        if (resolved->index) img.index = resolved->index->str();
        img.manifests[std::string(pipeline::kLockPlatform)] = resolved->manifest.str();
        return img;
      }
      registry_error = resolved.error();
    }
    auto rec = store_.resolve(text);
    if (!rec) {
      if (rec.error().kind() == ErrorKind::kNotFound && ref && ref->domain != "localhost")
        return fail(std::move(registry_error).context("resolve image '" + text + "'"));
      return fail(std::move(rec.error()).context("resolve image '" + text + "'"));
    }
    if (ref && ref->domain != "localhost")
      std::fprintf(stderr,
                   "lockstep: warning: image '%s': registry unavailable (%s); locked from the "
                   "local image store\n",
                   text.c_str(), std::string(registry_error.message()).c_str());
    img.source = "local";
    if (rec->index) img.index = rec->index->str();
    img.manifests[rec->platform.str()] = rec->manifest.str();
    return img;
  }

 private:
  Result<registry::ResolvedImage> resolve_remote(const registry::Reference& ref) {
    return through_mirror<registry::ResolvedImage>(
        settings_, mirror_down_, ref.domain,
        [&](const std::string& mirror) -> Result<registry::ResolvedImage> {
          auto& client = mirror.empty() ? direct_ : through_;
          if (!client) {
            registry::ClientOptions options;
            options.insecure = settings_.insecure_registries;
            options.mirror = mirror;
            options.max_attempts = 2;
            LS_TRY_ASSIGN(registry::RegistryClient c, registry::RegistryClient::create(options));
            client = std::make_unique<registry::RegistryClient>(std::move(c));
          }
          return client->resolve(ref, cache::Platform{});
        });
  }

  cache::ImageStore store_;
  PullSettings settings_;
  std::atomic<bool> mirror_down_{false};
  std::unique_ptr<registry::RegistryClient> direct_, through_;
};

// The lock as the workflow resolves now.
Result<pipeline::Lockfile> resolve_lock(const LockOptions& o, const fs::path& lock_path) {
  LS_TRY_ASSIGN(pipeline::Workflow wf, pipeline::load_workflow(o.workflow));
  LS_TRY_ASSIGN(std::string bytes, read_file(o.workflow));
  pipeline::Lockfile lock;
  lock.lockstep_version = kVersion;
  std::error_code ec;
  lock.workflow_path = fs::absolute(o.workflow, ec)
                           .lexically_normal()
                           .lexically_relative(fs::absolute(lock_path, ec).parent_path())
                           .string();
  lock.workflow_digest = sha256_of(bytes).str();

  // The workflow's own repository at HEAD, as `lockstep run` checks it out.
  std::string own_url, own_commit, own_branch;
  if (auto st = cache::inspect_worktree(fs::absolute(o.workflow, ec).parent_path())) {
    if (!st->head_commit.empty()) {
      own_url = st->root.string();
      own_commit = st->head_commit;
      own_branch = st->branch;
      lock.sources.push_back({own_url, "HEAD", own_commit, true, {}});
    }
  } else if (st.error().kind() != ErrorKind::kNotFound) {
    return fail(std::move(st.error()).context("inspect the repository of " + o.workflow.string()));
  }

  // The github context `run` evaluates the same expressions with; a lock
  // has no run, so no run id.
  GithubContextInput gin;
  gin.workflow = wf.name.empty() ? o.workflow.filename().string() : wf.name;
  gin.branch = own_branch;
  gin.sha = own_commit;
  if (!own_url.empty()) gin.dir_name = fs::path(own_url).filename().string();
  gin.identity = repository_identity(own_url, gin.dir_name);
  pipeline::EvalContext base;
  base.contexts["github"] = github_context(gin);
  base.contexts["inputs"] = pipeline::Value::object();
  base.contexts["vars"] = pipeline::Value::object();
  // Every reusable workflow the jobs call, read as a run reads them.
  ActionSources sources(o.state_dir, o.actions, nullptr, {}, false);
  WorkflowFiles files(o.state_dir, sources, OwnRepository{own_url, own_commit, ""}, o.workflow,
                      false);
  LS_TRY_ASSIGN(pipeline::CallGraph calls,
                pipeline::load_call_graph(wf, files.loader(), files.root_identity()));
  LS_TRY_ASSIGN(std::vector<pipeline::InputUse> uses,
                pipeline::collect_inputs(wf, base, with_hosted_defaults(o.platforms), &calls));

  std::map<std::string, std::vector<std::string>> images;  // reference -> instances
  std::map<std::pair<std::string, std::string>, std::vector<std::string>> checkouts;
  std::map<std::string, std::vector<std::string>> actions;  // uses text -> instances
  for (const auto& u : uses) {
    if (!u.unlockable.empty()) {
      std::fprintf(stderr,
                   "lockstep: warning: job %s: %s %s '%s' %s: not locked (run --frozen refuses "
                   "it)\n",
                   u.job_id.c_str(), u.what.c_str(), pipeline::to_string(u.kind), u.text.c_str(),
                   u.unlockable.c_str());
      lock.unlockable.push_back({pipeline::to_string(u.kind), u.text, u.job_id, u.unlockable});
      continue;
    }
    if (u.kind == pipeline::InputUse::Kind::kImage) {
      if (u.reference.empty())
        return fail("job '" + u.job_id + "' " + u.what + ": the image is empty",
                    ErrorKind::kWorkflow);
      images[u.reference].push_back(u.instance);
      continue;
    }
    if (u.kind == pipeline::InputUse::Kind::kAction) {
      actions[u.text].push_back(u.instance);
      continue;
    }
    if (u.reference.empty() && u.ref.empty()) {  // the workflow's own repository at HEAD
      if (!lock.sources.empty()) lock.sources[0].jobs.push_back(u.instance);
      continue;
    }
    std::string url = u.reference.empty() ? own_url : u.reference;
    if (url.empty())
      return fail("job '" + u.job_id + "' " + u.what +
                      ": actions/checkout of the workflow's repository, but " +
                      o.workflow.string() + " is not in a git repository",
                  ErrorKind::kWorkflow);
    checkouts[{url, u.ref.empty() ? "HEAD" : u.ref}].push_back(u.instance);
  }

  ImageLocker locker(o.state_dir, o.insecure, o.mirror);
  for (const auto& [ref, jobs] : images) {
    LS_TRY_ASSIGN(pipeline::LockedImage img, locker.lock(ref));
    img.jobs = jobs;
    lock.images.push_back(std::move(img));
  }
  cache::GitMirrors mirrors(o.state_dir);
  for (const auto& [key, jobs] : checkouts) {
    const auto& [url, ref] = key;
    auto m = mirrors.update(url);
    if (!m) return fail(std::move(m.error()).context("lock checkout of '" + url + "'"));
    auto r = mirrors.resolve_ref(*m, ref);
    if (!r) return fail(std::move(r.error()).context("lock checkout of '" + url + "'"));
    lock.sources.push_back({url, ref, r->commit, false, jobs});
  }
  LS_TRY(lock_actions(o, sources, wf, calls, actions, lock));
  return lock;
}

}  // namespace

int cmd_lock(const std::vector<std::string>& args) {
  if (CommandLine::wants_help(args)) {
    std::fputs(lock_command_line().help().c_str(), stdout);
    return 0;
  }
  auto o = parse_options(args);
  if (!o) return report_error(o.error());
  auto config = load_config_for(o->workflow, o->config_file);
  if (!config) return report_error(config.error());
  for (const auto& [label, image] : config->platforms) o->platforms.emplace(label, image);
  o->state_dir = choose_state_dir(o->state_dir, *config);
  if (auto m = apply_config_mirror(*config, o->mirror); !m) return report_error(m.error());
  apply_config_actions(*config, o->actions, o->actions_url_given);
  fs::path lock_path = o->output.empty() ? default_lock_path(o->workflow) : o->output;

  auto now = resolve_lock(*o, lock_path);
  if (!now) return report_error(now.error());
  // Pinned fetches come from runs, not from resolving: a lock keeps its own,
  // --fetches RUN adds (and re-pins) what RUN downloaded.
  if (auto text = read_file(lock_path)) {
    if (auto old = pipeline::parse_lockfile(*text, lock_path.string())) now->fetches = old->fetches;
  }
  if (!o->fetches_run.empty()) {
    auto rec = load_record(o->fetches_run, o->state_dir);
    if (!rec) return report_error(rec.error());
    auto pins = pinned_fetches(rec->doc);
    if (!pins) return report_error(pins.error());
    for (auto& p : *pins) {
      std::erase_if(now->fetches, [&](const auto& f) { return f.url == p.url; });
      now->fetches.push_back(std::move(p));
    }
  }
  std::string bytes = pipeline::serialize_lockfile(*now);

  if (o->check) {
    std::error_code ec;
    if (!fs::exists(lock_path, ec)) {
      std::fprintf(stderr, "lockstep: %s does not exist; run 'lockstep lock'\n", lock_path.c_str());
      return 1;
    }
    auto text = read_file(lock_path);
    if (!text) return report_error(text.error());
    auto old = pipeline::parse_lockfile(*text, lock_path.string());
    if (!old) return report_error(old.error());
    auto diff = pipeline::lock_differences(*old, *now);
    if (diff.empty()) {
      std::printf("%s is current\n", lock_path.c_str());
      return 0;
    }
    for (const auto& d : diff)
      std::fprintf(stderr, "%s: stale: %s\n", lock_path.c_str(), d.c_str());
    std::fprintf(stderr, "lockstep: %s is stale (%zu differences); run 'lockstep lock'\n",
                 lock_path.c_str(), diff.size());
    return 1;
  }
  if (auto w = write_file_atomic(lock_path, bytes); !w) return report_error(w.error());
  std::printf("wrote %s (%zu images, %zu sources, %zu actions, %zu fetches)\n", lock_path.c_str(),
              now->images.size(), now->sources.size(), now->actions.size(), now->fetches.size());
  return 0;
}

}  // namespace lockstep::runner
