#include "server/planner.hpp"

#include <regex>
#include <set>

#include <spdlog/spdlog.h>

#include "cache/git_mirror.hpp"
#include "cache/image_store.hpp"
#include "pipeline/action.hpp"
#include "pipeline/lock_inputs.hpp"
#include "pipeline/matrix.hpp"
#include "pipeline/parse.hpp"
#include "pipeline/project_config.hpp"
#include "pipeline/triggers.hpp"
#include "registry-mirror/client.hpp"
#include "registry-mirror/reference.hpp"
#include "runner/engine/action_source.hpp"
#include "server/queue.hpp"
#include "server/repo_git.hpp"

namespace lockstep::server {

using nlohmann::json;
using runner::ActionsConfig;
using runner::ActionSources;

json event_to_json(const HookEvent& ev) {
  return {{"kind", ev.kind},           {"repo", ev.repo},
          {"clone_url", ev.clone_url}, {"ref", ev.ref},
          {"before", ev.before},       {"after", ev.after},
          {"deleted", ev.deleted},     {"number", ev.number},
          {"action", ev.action},       {"base_ref", ev.base_ref},
          {"base_sha", ev.base_sha},   {"head_ref", ev.head_ref},
          {"head_sha", ev.head_sha},   {"head_clone_url", ev.head_clone_url},
          {"fork", ev.fork},           {"head_pull_ref", ev.head_pull_ref}};
}

HookEvent event_from_json(const json& j) {
  HookEvent ev;
  ev.kind = j.value("kind", "");
  ev.repo = j.value("repo", "");
  ev.clone_url = j.value("clone_url", "");
  ev.ref = j.value("ref", "");
  ev.before = j.value("before", "");
  ev.after = j.value("after", "");
  ev.deleted = j.value("deleted", false);
  ev.number = j.value("number", int64_t{0});
  ev.action = j.value("action", "");
  ev.base_ref = j.value("base_ref", "");
  ev.base_sha = j.value("base_sha", "");
  ev.head_ref = j.value("head_ref", "");
  ev.head_sha = j.value("head_sha", "");
  ev.head_clone_url = j.value("head_clone_url", "");
  ev.fork = j.value("fork", false);
  ev.head_pull_ref = j.value("head_pull_ref", "");
  return ev;
}

Result<bool> store_delivery(pg::Pool& db, int64_t repo_id, const std::string& delivery_id,
                            const HookEvent& ev) {
  LS_TRY_ASSIGN(auto c, db.take());
  LS_TRY_ASSIGN(auto r, c->exec("INSERT INTO deliveries (repo_id, delivery_id, event, payload) "
                                "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING id",
                                {pg::p(repo_id), pg::p(delivery_id), pg::p(ev.kind),
                                 pg::p(event_to_json(ev).dump())}));
  if (!r.empty()) LS_TRY(c->exec("NOTIFY lockstep_deliveries"));
  return !r.empty();
}

namespace {

std::set<std::string> secret_names(const pipeline::Job& job) {
  static const std::regex re(R"(secrets\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*'([^']+)'\s*\]))");
  std::set<std::string> out;
  for (const auto& site : job.expressions) {
    for (std::sregex_iterator it(site.text.begin(), site.text.end(), re), end; it != end; ++it)
      out.insert((*it)[1].matched ? (*it)[1].str() : (*it)[2].str());
  }
  return out;
}

bool runs_on_failure(const std::string& cond) {
  return cond.find("always()") != std::string::npos || cond.find("failure()") != std::string::npos;
}

bool must_not_retry(const pipeline::Job& job) {
  for (const auto& [k, v] : job.env)
    if (k == "LOCKSTEP_RETRY" && v == "false") return true;
  return false;
}

// github.event for the job: the fields of GitHub's payload a workflow reads
// most (the ref and commits of a push; a pull request's number, action, head
// and base), in GitHub's shape whichever forge sent the webhook.
json event_payload(const HookEvent& ev, const std::string& clone_url, const std::string& base_sha) {
  json repo = {{"full_name", ev.repo}, {"clone_url", clone_url}};
  if (ev.kind == "pull_request") {
    json head = {{"ref", ev.head_ref}, {"sha", ev.head_sha}};
    if (!ev.head_clone_url.empty()) head["repo"] = {{"clone_url", ev.head_clone_url}};
    return {{"action", ev.action},
            {"number", ev.number},
            {"pull_request",
             {{"number", ev.number},
              {"head", head},
              {"base", {{"ref", ev.base_ref}, {"sha", base_sha}}}}},
            {"repository", repo}};
  }
  return {{"ref", ev.ref}, {"before", ev.before}, {"after", ev.after}, {"repository", repo}};
}

struct Target {
  std::string ref, sha, base_sha;
  pipeline::TriggerEvent trigger;
  std::string run_key;
};

// What the event runs on, fetching what it needs into the mirror.
Result<Target> resolve_target(const cache::GitMirrors& mirrors, const std::string& clone_url,
                              const HookEvent& ev, std::filesystem::path* mirror_path) {
  Target t;
  t.trigger.name = ev.kind;
  if (ev.kind == "push") {
    std::vector<std::string> extra;
    LS_TRY_ASSIGN(auto m, mirrors.update(clone_url, extra));
    *mirror_path = m.path;
    t.ref = ev.ref;
    t.sha = ev.after;
    if (ev.ref.rfind("refs/tags/", 0) == 0)
      t.trigger.tag = ev.ref.substr(10);
    else if (ev.ref.rfind("refs/heads/", 0) == 0)
      t.trigger.branch = ev.ref.substr(11);
    LS_TRY_ASSIGN(auto changed, changed_paths(m.path, ev.before, ev.after));
    t.trigger.paths_known = changed.has_value();
    if (changed) t.trigger.changed_paths = std::move(*changed);
    t.run_key = "push:" + ev.ref + ":" + ev.after;
    return t;
  }
  // pull_request: the head commit, a fork's too, is under the base
  // repository's refs/pull/N/head (GitHub, Gitea and Forgejo keep it there;
  // GitLab under refs/merge-requests/N/head).
  std::string pull_ref = ev.head_pull_ref.empty()
                             ? "refs/pull/" + std::to_string(ev.number) + "/head"
                             : ev.head_pull_ref;
  LS_TRY_ASSIGN(auto m, mirrors.update(clone_url));
  *mirror_path = m.path;
  if (!mirrors.resolve(m, ev.head_sha))
    LS_TRY(mirrors.update(clone_url, {"+" + pull_ref + ":" + pull_ref}));
  LS_TRY_ASSIGN(std::string base_sha, mirrors.resolve(m, "refs/heads/" + ev.base_ref));
  LS_TRY_ASSIGN(t.sha, merge_commit(m.path, base_sha, ev.head_sha));
  t.base_sha = base_sha;
  t.ref = "refs/pull/" + std::to_string(ev.number) + "/merge";
  t.trigger.branch = ev.base_ref;
  t.trigger.action = ev.action;
  auto mb = merge_base(m.path, base_sha, ev.head_sha);
  if (mb) {
    LS_TRY_ASSIGN(auto changed, changed_paths(m.path, *mb, ev.head_sha));
    t.trigger.paths_known = changed.has_value();
    if (changed) t.trigger.changed_paths = std::move(*changed);
  } else {
    t.trigger.paths_known = false;
  }
  t.run_key = "pr:" + std::to_string(ev.number) + ":" + ev.head_sha + ":" + base_sha;
  return t;
}

// The digests image references name in their registries as a delivery is
// planned, each asked once: a job plan pins its container's and services'
// images from the start, so the jobs of a run that start together on
// different agents run the same image. Local names (localhost/...), references
// by digest and registries that cannot answer are left to the agents (the
// log says why).
class ImagePinner {
 public:
  explicit ImagePinner(const ImagePinSettings& s) : settings_(s) {}

  std::optional<std::string> pin(const std::string& text) {
    if (auto it = memo_.find(text); it != memo_.end()) return it->second;
    std::optional<std::string>& out = memo_[text];
    auto ref = registry::Reference::parse(text);
    if (!ref || ref->domain == "localhost" || ref->digest) return out;
    if (!client_) {
      registry::ClientOptions o;
      o.insecure = settings_.insecure_registries;
      o.mirror = settings_.mirror;
      o.max_attempts = 2;
      auto c = registry::RegistryClient::create(o);
      if (!c) {
        spdlog::warn("planner: image pins: {}", c.error().message());
        return out;
      }
      client_ = std::make_unique<registry::RegistryClient>(std::move(*c));
    }
    auto r = client_->resolve(*ref, cache::Platform{});
    if (!r) {
      spdlog::warn("planner: image '{}' is left to the agents: {}", text, r.error().message());
      return out;
    }
    out = r->manifest.str();
    return out;
  }

 private:
  const ImagePinSettings& settings_;
  std::map<std::string, std::optional<std::string>> memo_;
  std::unique_ptr<registry::RegistryClient> client_;
};

// The commits `uses: owner/repo@ref` steps name as a delivery is planned,
// each resolved once, from where the repository's .lockstep.yml says
// actions come from (else GitHub): a job plan pins them from the start.
// Actions inside composite actions, and a .lockstep.yml whose action
// sources are relative to the checkout, are left to the agents.
class ActionPinner {
 public:
  ActionPinner(const std::filesystem::path& state_dir, const std::filesystem::path& mirror,
               const std::string& sha) {
    ActionsConfig config;
    auto text = file_at(mirror, sha, std::string(pipeline::kProjectConfigName));
    if (text && *text) {
      auto parsed = pipeline::parse_project_config(**text, ".lockstep.yml");
      if (!parsed) return;  // the agents report it
      auto absolute = [](const std::string& u) {
        return u.find("://") != std::string::npos || (!u.empty() && u[0] == '/');
      };
      if (!parsed->actions_url.empty()) {
        if (!absolute(parsed->actions_url)) return;
        config.base_url = parsed->actions_url;
      }
      for (const auto& [owner, url] : parsed->action_owners) {
        if (!absolute(url)) return;
        config.owners[owner] = url;
      }
    }
    sources_.emplace(state_dir, config, nullptr, std::map<std::string, std::string>{}, false);
  }

  // "owner/repo@ref" -> commit for the job's steps.
  json pins(const pipeline::Job& job) {
    json out = json::object();
    if (!sources_) return out;
    for (const auto& step : job.steps) {
      if (!step.uses) continue;
      auto ref = pipeline::parse_action_ref(*step.uses);
      if (!ref || ref->kind != pipeline::ActionRef::Kind::kRepository || ref->builtin()) continue;
      const std::string key = ref->repository() + "@" + ref->ref;
      if (auto it = memo_.find(key); it != memo_.end()) {
        if (it->second) out[key] = *it->second;
        continue;
      }
      auto r = sources_->resolve(*ref);
      if (!r) {
        spdlog::warn("planner: action '{}' is left to the agents: {}", *step.uses,
                     r.error().message());
        memo_[key] = std::nullopt;
        continue;
      }
      memo_[key] = r->commit;
      out[r->key] = r->commit;
    }
    return out;
  }

 private:
  std::optional<ActionSources> sources_;
  std::map<std::string, std::optional<std::string>> memo_;
};

// One workflow file into a run (or a failed run holding its error).
NewRun build_run(int64_t repo_id, int64_t delivery, const HookEvent& ev, const Target& t,
                 const std::string& clone_url, const WorkflowFile& wf_file, ImagePinner& pinner,
                 ActionPinner& actions) {
  NewRun run;
  run.repo_id = repo_id;
  run.delivery = delivery;
  run.run_key = t.run_key;
  run.event = ev.kind;
  run.ref = t.ref;
  run.sha = t.sha;
  run.base_sha = t.base_sha;
  run.fork = ev.fork;
  run.workflow_file = wf_file.path;
  auto wf = pipeline::parse_workflow(wf_file.text, wf_file.path);
  if (!wf) {
    run.error = wf.error().message();
    return run;
  }
  run.workflow_name = wf->name;
  pipeline::EvalContext ctx;
  ctx.contexts["github"] = {
      {"event_name", ev.kind},   {"ref", t.ref},           {"sha", t.sha}, {"repository", ev.repo},
      {"base_ref", ev.base_ref}, {"head_ref", ev.head_ref}};
  ctx.contexts["github"]["workflow"] = wf->name.empty() ? wf_file.path : wf->name;
  std::string ref_name = t.ref;  // GitHub: "main", "v1", "7/merge"
  for (const char* prefix : {"refs/heads/", "refs/tags/", "refs/pull/"})
    if (ref_name.rfind(prefix, 0) == 0) ref_name = ref_name.substr(std::string(prefix).size());
  ctx.contexts["github"]["ref_name"] = ref_name;
  ctx.contexts["inputs"] = pipeline::Value::object();
  ctx.contexts["vars"] = pipeline::Value::object();
  if (wf->concurrency) {
    // The group is evaluated once, as the run is planned (docs/server.md,
    // "Concurrency").
    auto where = [&](const std::string& what) {
      return wf_file.path + ":" + std::to_string(wf->concurrency->loc.line) + ":" +
             std::to_string(wf->concurrency->loc.column) + ": " + what;
    };
    auto group = pipeline::interpolate(wf->concurrency->group, ctx);
    if (!group) {
      run.error = where("concurrency group: " + group.error().message());
      return run;
    }
    auto cancel = pipeline::evaluate_if(wf->concurrency->cancel_in_progress, ctx);
    if (!cancel) {
      run.error = where("concurrency cancel-in-progress: " + cancel.error().message());
      return run;
    }
    run.concurrency_group = *group;
    run.cancel_in_progress = *cancel;
  }
  for (const auto& job : wf->jobs) {
    // A matrix made from the outputs of the jobs it needs is known once they
    // ran: the job stands in the run as one job until then, and the queue
    // expands it into its cells with their outputs (server/queue.hpp).
    auto instances =
        pipeline::matrix_depends_on_needs(job)
            ? Result<std::vector<pipeline::JobInstance>>(std::vector<pipeline::JobInstance>{
                  {&job, pipeline::OrderedValue(), job.id + " (matrix from needs)"}})
            : pipeline::expand_job(*wf, job, ctx);
    if (!instances) {
      run.error = instances.error().message();
      run.jobs.clear();
      return run;
    }
    auto secrets = secret_names(job);
    // The container's and services' images each instance names, as the
    // runner evaluates them before the job starts.
    std::map<std::string, json> image_pins;  // instance -> {reference: digest}
    if (auto uses = pipeline::collect_instance_inputs(*instances, ctx, {})) {
      for (const auto& u : *uses) {
        if (u.kind != pipeline::InputUse::Kind::kImage || !u.unlockable.empty() ||
            (u.what != "container" && u.what.rfind("service ", 0) != 0))
          continue;
        if (auto d = pinner.pin(u.reference)) image_pins[u.instance][u.reference] = *d;
      }
    }
    const json action_pins = actions.pins(job);
    for (const auto& inst : *instances) {
      NewJob j;
      j.key = job.id;
      j.name = inst.display_name;
      j.matrix = json::parse(inst.matrix.is_null() ? "{}" : inst.matrix.dump());
      j.needs = job.needs;
      j.retry = !must_not_retry(job);
      j.run_on_failure = runs_on_failure(job.if_expr);
      j.plan = {{"repo", ev.repo},
                {"clone_url", clone_url},
                {"event", ev.kind},
                {"ref", t.ref},
                {"sha", t.sha},
                {"workflow", wf_file.path},
                {"job", job.id},
                {"name", inst.display_name},
                {"matrix", j.matrix},
                {"secrets", std::vector<std::string>(secrets.begin(), secrets.end())},
                {"fork", ev.fork}};
      // A pull request runs on its merge commit, which only the server's
      // mirror holds: the agent makes the same commit from these (merge
      // commits are deterministic, repo_git.hpp) and checks it is `sha`.
      if (ev.kind == "pull_request")
        j.plan["merge"] = {{"base", t.base_sha},
                           {"head", ev.head_sha},
                           {"head_ref", ev.head_pull_ref.empty()
                                            ? "refs/pull/" + std::to_string(ev.number) + "/head"
                                            : ev.head_pull_ref}};
      j.plan["event_payload"] = event_payload(ev, clone_url, t.base_sha);
      if (inst.matrix.is_null() && pipeline::matrix_depends_on_needs(job))
        j.plan["matrix_from_needs"] = {{"workflow_text", wf_file.text}, {"contexts", ctx.contexts}};
      if (auto p = image_pins.find(inst.display_name); p != image_pins.end())
        j.plan["pins"]["images"] = p->second;
      if (!action_pins.empty()) j.plan["pins"]["actions"] = action_pins;
      json steps = json::array();
      for (const auto& s : job.steps) {
        json step = {{"name", s.name}};
        if (s.run) step["run"] = *s.run;
        if (s.uses) step["uses"] = *s.uses;
        steps.push_back(std::move(step));
      }
      j.plan["steps"] = std::move(steps);
      run.jobs.push_back(std::move(j));
    }
  }
  return run;
}

}  // namespace

Result<bool> Planner::plan_one() {
  LS_TRY_ASSIGN(auto conn, db_.take());
  LS_TRY_ASSIGN(auto tx, pg::Tx::begin(*conn));
  LS_TRY_ASSIGN(auto d, tx.exec("SELECT d.id, d.repo_id, d.payload, r.clone_url FROM deliveries d "
                                "JOIN repos r ON r.id = d.repo_id WHERE d.state = 'new' "
                                "ORDER BY d.id FOR UPDATE OF d SKIP LOCKED LIMIT 1"));
  if (d.empty()) return false;
  int64_t id = d.i64(0, 0), repo_id = d.i64(0, 1);
  HookEvent ev = event_from_json(json::parse(d.str(0, 2), nullptr, false));
  std::string clone_url = d.str(0, 3);
  auto mark = [&](const char* state, const std::string& error) -> Status {
    LS_TRY(tx.exec("UPDATE deliveries SET state = $2, error = $3 WHERE id = $1",
                   {pg::p(id), pg::p(state), pg::p(error)}));
    return tx.commit();
  };
  if ((ev.kind != "push" && ev.kind != "pull_request") || ev.deleted) {
    LS_TRY(mark("planned", ""));
    return true;
  }
  cache::GitMirrors mirrors(state_dir_);
  std::filesystem::path mirror;
  auto target = resolve_target(mirrors, clone_url, ev, &mirror);
  if (!target) {
    LS_TRY(mark("failed", target.error().message()));
    return true;
  }
  auto files = workflow_files(mirror, target->sha);
  if (!files) {
    LS_TRY(mark("failed", files.error().message()));
    return true;
  }
  ImagePinner pinner(pins_);
  ActionPinner action_pinner(state_dir_, mirror, target->sha);
  for (const auto& f : *files) {
    auto triggered = pipeline::workflow_triggered(f.text, f.path, target->trigger);
    NewRun run;
    if (!triggered) {
      run = build_run(repo_id, id, ev, *target, clone_url, f, pinner, action_pinner);
      run.jobs.clear();
      run.error = triggered.error().message();
    } else if (!*triggered) {
      continue;
    } else {
      run = build_run(repo_id, id, ev, *target, clone_url, f, pinner, action_pinner);
    }
    LS_TRY(insert_run(tx, run));
  }
  LS_TRY(mark("planned", ""));
  return true;
}

Result<int> poll_repo(pg::Pool& db, const std::filesystem::path& state_dir, int64_t repo_id) {
  std::string clone_url, name;
  {
    LS_TRY_ASSIGN(auto c, db.take());
    LS_TRY_ASSIGN(auto r,
                  c->exec("SELECT clone_url, name FROM repos WHERE id = $1", {pg::p(repo_id)}));
    if (r.empty()) return 0;
    clone_url = r.str(0, 0);
    name = r.str(0, 1);
  }
  bool first_look = false;
  {
    LS_TRY_ASSIGN(auto c, db.take());
    LS_TRY_ASSIGN(auto r,
                  c->exec("SELECT last_polled IS NULL FROM repos WHERE id = $1", {pg::p(repo_id)}));
    first_look = !r.empty() && r.boolean(0, 0);
  }
  cache::GitMirrors mirrors(state_dir);
  LS_TRY_ASSIGN(auto m, mirrors.update(clone_url));
  LS_TRY_ASSIGN(auto heads, branch_heads(m.path));
  int found = 0;
  for (const auto& [ref, sha] : heads) {
    LS_TRY_ASSIGN(auto c, db.take());
    LS_TRY_ASSIGN(auto prev, c->exec("SELECT sha FROM poll_heads WHERE repo_id = $1 AND ref = $2",
                                     {pg::p(repo_id), pg::p(ref)}));
    std::string before = prev.empty() ? std::string(40, '0') : prev.str(0, 0);
    if (before == sha) continue;
    LS_TRY(
        c->exec("INSERT INTO poll_heads (repo_id, ref, sha) VALUES ($1, $2, $3) "
                "ON CONFLICT (repo_id, ref) DO UPDATE SET sha = excluded.sha",
                {pg::p(repo_id), pg::p(ref), pg::p(sha)}));
    // The first look at a repository only records its heads; a branch
    // that appears later is a push of a new branch.
    if (first_look) continue;
    HookEvent ev;
    ev.kind = "push";
    ev.repo = name;
    ev.clone_url = clone_url;
    ev.ref = ref;
    ev.before = before;
    ev.after = sha;
    LS_TRY_ASSIGN(bool fresh, store_delivery(db, repo_id, "poll:" + ref + ":" + sha, ev));
    if (fresh) ++found;
  }
  LS_TRY_ASSIGN(auto c, db.take());
  LS_TRY(c->exec("UPDATE repos SET last_polled = now() WHERE id = $1", {pg::p(repo_id)}));
  return found;
}

}  // namespace lockstep::server
