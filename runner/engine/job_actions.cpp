// Actions in a job: resolving them before the job starts, their inputs, and
// running the three kinds GitHub has - JavaScript (lockstep's Node.js
// runtime in the job container), composite (nested steps) and Docker (a
// sibling container sharing the job's workspace, files and network) - with
// their pre and post stages. GitHub's runner defines the semantics; see
// docs/actions.md for what lockstep does and does not do.
#include <algorithm>
#include <cctype>
#include <cstdio>

#include "common/text.hpp"
#include "pipeline/action.hpp"
#include "pipeline/options.hpp"
#include "runner/engine/dockerfile_action.hpp"
#include "runner/engine/job_internal.hpp"

namespace lockstep::runner::detail {

namespace {

// A value of `inputs` by name, case-insensitively as GitHub matches them.
const std::string* find_input(const std::map<std::string, std::string>& inputs,
                              const std::string& name) {
  std::string want = ascii_lower(name);
  for (const auto& [k, v] : inputs)
    if (ascii_lower(k) == want) return &v;
  return nullptr;
}

constexpr int kMaxCompositeDepth = 9;  // GitHub's limit on nested composite actions

const char* kind_name(pipeline::ActionKind k) {
  switch (k) {
    case pipeline::ActionKind::kNode:
      return "node";
    case pipeline::ActionKind::kComposite:
      return "composite";
    case pipeline::ActionKind::kDocker:
      return "docker";
  }
  return "?";
}

}  // namespace

Status JobExecution::prepare_actions(executor::ContainerSpec& spec) {
  bool uses_actions = false;
  // Repository actions, also inside repository composite actions, resolve
  // now: a missing repository, ref or action.yml fails the job before its
  // container starts, and pre stages know what to run.
  std::function<Status(const std::vector<pipeline::Step>&, const std::string&, int)> walk =
      [&](const std::vector<pipeline::Step>& steps, const std::string& where, int depth) -> Status {
    if (depth > kMaxCompositeDepth)
      return fail(where + ": composite actions nested more than " +
                      std::to_string(kMaxCompositeDepth) + " deep (is there a cycle?)",
                  ErrorKind::kWorkflow);
    for (size_t i = 0; i < steps.size(); ++i) {
      const auto& step = steps[i];
      if (!step.uses) continue;
      LS_TRY_ASSIGN(pipeline::ActionRef ref, pipeline::parse_action_ref(*step.uses));
      if (ref.builtin() || ref.kind == pipeline::ActionRef::Kind::kDocker) continue;
      uses_actions = true;
      if (ref.kind != pipeline::ActionRef::Kind::kRepository) continue;
      std::string what = depth == 0 ? "step '" + step_display_name(step, i) + "'"
                                    : where + " step " + std::to_string(i + 1);
      if (prepared_.count(*step.uses)) continue;
      auto a = run_.actions->resolve_action(ref);
      if (!a) return fail(std::move(a.error()).context(what));
      JobAction ja{ref, *a, ""};
      prepared_[*step.uses] = ja;
      auto& inputs = report_.inputs;
      bool seen = std::any_of(inputs.begin(), inputs.end(), [&](const ResolvedInput& in) {
        return in.kind == "action" && in.reference == a->repo.key;
      });
      if (!seen) inputs.push_back({"action", a->repo.key, a->repo.commit, a->repo.pinned});
      if (a->manifest->kind == pipeline::ActionKind::kComposite)
        LS_TRY(walk(a->manifest->steps, "action '" + *step.uses + "'", depth + 1));
    }
    return {};
  };
  LS_TRY(walk(job_.steps, "", 0));
  if (!uses_actions) return {};

  LS_TRY_ASSIGN(NodeRuntime node, run_.node->get());
  if (run_.lock && !run_.lock->node_runtime.empty() && run_.lock->node_runtime != node.digest) {
    std::string msg = "lockstep.lock pins the Node.js runtime " + run_.lock->node_runtime +
                      ", this host has " + node.digest + " (node " + node.version + ")";
    if (run_.frozen) return fail("--frozen: " + msg + ": run 'lockstep lock'", ErrorKind::kUsage);
    log_->note("warning: " + msg);
  }
  report_.inputs.push_back({"runtime", "node " + node.version, node.digest,
                            run_.lock && run_.lock->node_runtime == node.digest});
  spec.mounts.push_back({node.dir, kNodeMount, true});
  std::error_code ec;
  fs::create_directories(job_dir_ / "toolcache", ec);
  if (ec) return fail("create " + (job_dir_ / "toolcache").string() + ": " + ec.message());
  spec.mounts.push_back({job_dir_ / "toolcache", kContainerToolCache, false});
  node_ = std::move(node);
  return {};
}

Status JobExecution::prepare_checkouts() {
  // Every actions/checkout whose repository and ref are known before the
  // job runs resolves now, so the job's environment hash names the commits
  // it will build; the checkout then takes exactly that commit.
  for (size_t i = 0; i < job_.steps.size(); ++i) {
    const auto& step = job_.steps[i];
    if (!step.uses || builtin_action_name(*step.uses) != "actions/checkout") continue;
    std::string texts[2];
    bool known = true;
    for (int k = 0; k < 2; ++k) {
      auto it = step.with.find(k == 0 ? "repository" : "ref");
      if (it == step.with.end()) continue;
      auto used = pipeline::contexts_used(it->second, false);
      if (!used || std::find(used->begin(), used->end(), "steps") != used->end() ||
          std::find(used->begin(), used->end(), "job") != used->end()) {
        known = false;
        break;
      }
      auto v = pipeline::interpolate(it->second, ctx_);
      if (!v) {
        known = false;
        break;
      }
      texts[k] = *v;
    }
    const std::string& repository = texts[0];
    const std::string& ref = texts[1];
    if (!known || (repository.empty() && ref.empty())) continue;  // the run's own commit
    std::string url = repository.empty() ? run_.source_url : repository;
    if (url.empty()) continue;
    std::string key = url + "@" + (ref.empty() ? "HEAD" : ref);
    if (checkouts_.count(key)) continue;
    if (auto locked = pin_checkout(run_.lock, repository, ref, run_.source_url)) {
      checkouts_[key] = *locked;
      continue;
    }
    auto commit = run_.actions->resolve_checkout(url, ref);
    if (!commit)
      return fail(std::move(commit.error())
                      .context("step '" + step_display_name(step, i) + "' (actions/checkout)"));
    checkouts_[key] = *commit;
  }
  return {};
}

Result<JobAction> JobExecution::job_action(const pipeline::Step& step, const std::string& what) {
  LS_TRY_ASSIGN(pipeline::ActionRef ref, pipeline::parse_action_ref(*step.uses));
  JobAction a;
  if (ref.kind == pipeline::ActionRef::Kind::kLocal) {
    // An action inside the workspace, read when the step runs (an earlier
    // step checked it out or made it).
    fs::path rel = fs::path(ref.local).lexically_normal();
    if (rel.is_absolute() || (!rel.empty() && *rel.begin() == ".."))
      return fail(what + ": action '" + ref.local + "' is outside the workspace",
                  ErrorKind::kWorkflow);
    a.ref = ref;
    a.resolved.dir = rel == "." ? workspace_host_ : workspace_host_ / rel;
    std::error_code ec;
    if (!fs::is_directory(a.resolved.dir, ec))
      return fail(what + ": action '" + ref.local +
                      "' is not a directory of the workspace (check the repository out first)",
                  ErrorKind::kWorkflow);
    std::string digest;
    auto m = load_action_manifest(a.resolved.dir, ref.local, &digest);
    if (!m) return fail(std::move(m.error()).context(what));
    a.resolved.manifest = *m;
    a.resolved.manifest_digest = digest;
    a.dir = rel == "." ? workspace_ : workspace_ + "/" + rel.string();
    return a;
  }
  if (auto it = prepared_.find(*step.uses); it != prepared_.end()) {
    a = it->second;
  } else {
    auto r = run_.actions->resolve_action(ref);
    if (!r) return fail(std::move(r.error()).context(what));
    a = JobAction{ref, *r, ""};
    auto& inputs = report_.inputs;
    bool seen = std::any_of(inputs.begin(), inputs.end(), [&](const ResolvedInput& in) {
      return in.kind == "action" && in.reference == r->repo.key;
    });
    if (!seen) inputs.push_back({"action", r->repo.key, r->repo.commit, r->repo.pinned});
  }
  // GitHub's layout: the repository at /__w/_actions/OWNER/REPO/REF, a copy
  // per job (an action may write into its own directory; the shared tree
  // stays as fetched).
  std::string rel = "_actions/" + ref.owner + "/" + ref.repo + "/" + ref.ref;
  fs::path host = job_dir_ / "w" / rel;
  if (!copied_.count(rel)) {
    std::error_code ec;
    if (!fs::exists(host, ec)) {
      fs::create_directories(host.parent_path(), ec);
      fs::copy(a.resolved.repo.tree, host,
               fs::copy_options::recursive | fs::copy_options::copy_symlinks, ec);
      if (ec)
        return fail(what + ": copy action " + a.resolved.repo.key +
                    " into the job: " + ec.message());
    }
    copied_.insert(rel);
  }
  a.dir = croot_ + "/" + rel + (ref.path.empty() ? "" : "/" + ref.path);
  return a;
}

Result<std::map<std::string, std::string>> JobExecution::action_inputs(
    const pipeline::Step& step, const pipeline::ActionManifest& m, const std::string& what) {
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : step.with) {
    LS_TRY_ASSIGN(out[k], eval_string(v, ctx_, what + " with." + k));
  }
  std::vector<std::string> unexpected;
  for (const auto& [k, v] : out) {
    const pipeline::ActionInput* in = nullptr;
    for (const auto& i : m.inputs)
      if (ascii_lower(i.name) == ascii_lower(k)) in = &i;
    if (!in) {
      bool docker_arg = m.kind == pipeline::ActionKind::kDocker &&
                        (ascii_lower(k) == "args" || ascii_lower(k) == "entrypoint");
      if (!docker_arg) unexpected.push_back(k);
    } else if (!in->deprecation.empty()) {
      log_->note("warning: Input '" + k + "' has been deprecated with message: " + in->deprecation);
    }
  }
  if (!unexpected.empty()) {
    std::string list, valid;
    for (const auto& u : unexpected) list += (list.empty() ? "'" : "', '") + u;
    for (const auto& i : m.inputs) valid += (valid.empty() ? "'" : "', '") + i.name;
    log_->note("warning: Unexpected input(s) " + list + "', valid inputs are [" + valid +
               (valid.empty() ? "" : "'") + "]");
  }
  for (const auto& i : m.inputs) {
    if (find_input(out, i.name)) continue;
    if (i.default_value) {
      LS_TRY_ASSIGN(out[i.name], eval_string(*i.default_value, ctx_,
                                             what + " default of input '" + i.name + "'"));
    } else if (i.required) {
      return fail(what + ": input '" + i.name + "' is required by action '" + *step.uses +
                      "' and not given",
                  ErrorKind::kWorkflow);
    } else {
      out[i.name] = "";
    }
  }
  return out;
}

Result<std::string> JobExecution::event_file() {
  // The event payload actions read (@actions/github's context.payload), as
  // the `github.event` context holds it.
  fs::path dir = temp_host_ / "_github_workflow";
  if (!fs::exists(dir / "event.json")) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return fail("create " + dir.string() + ": " + ec.message());
    const Value& gh = ctx_.contexts["github"];
    Value event = gh.contains("event") ? gh["event"] : Value::object();
    LS_TRY(write_file(dir / "event.json", event.dump() + "\n"));
  }
  return ctemp_ + "/_github_workflow/event.json";
}

Result<std::string> JobExecution::docker_action_image(const JobAction& a, const std::string& what) {
  const auto& m = *a.resolved.manifest;
  if (m.image.rfind("docker://", 0) == 0) return m.image.substr(9);
  std::string key = a.resolved.dir.string() + "|" + m.image;
  if (auto it = built_by_action_.find(key); it != built_by_action_.end()) return it->second;
  DockerfileBuild req;
  req.context = a.resolved.dir;
  req.dockerfile = m.image;
  bool repo = a.ref.kind == pipeline::ActionRef::Kind::kRepository;
  req.name = repo ? a.ref.name() : "local/" + fs::path(a.ref.local).filename().string();
  if (repo) req.context_id = "commit:" + a.resolved.repo.commit + "/" + a.ref.path;
  req.network = spec_copy_.network.mode == executor::NetworkMode::kHost ? "host" : "none";
  if (net_.egress && net_.ns) {
    req.network = "egress";
    req.netns_fd = net_.ns->fd();
    req.proxy_env = net_.egress->opaque_env();  // the build does not trust the run's CA
  }
  req.timestamp = run_.source_date_epoch;
  req.scratch = run_.state_dir / "tmp" / "builds";
  req.resolve_base = [this](const std::string& ref) -> Result<PreparedImage> {
    ImagePin pin = replay_pin(ref);
    LS_TRY_ASSIGN(PreparedImage p, run_.images->get(pin.lookup));
    LS_TRY(verify_image_pin(pin, ref, p.record));
    auto& rin = report_.inputs;
    if (std::none_of(rin.begin(), rin.end(), [&](const ResolvedInput& r) {
          return r.kind == "image" && r.reference == ref;
        }))
      rin.push_back({"image", ref, p.record.manifest.str(), !pin.locked.empty()});
    return p;
  };
  req.note = [this](const std::string& line) { log_->note(line); };
  auto built = build_dockerfile_action(*run_.images, req);
  if (!built) return fail(std::move(built.error()).context(what + ": action '" + a.ref.text + "'"));
  log_->note((built->cached ? "using " : "built ") + built->tag + " (" +
             built->digest.substr(0, 19) + ")");
  report_.inputs.push_back({"image", built->tag, built->digest, false});
  built_[built->tag] = built->digest;
  built_by_action_[key] = built->tag;
  return built->tag;
}

Json JobExecution::action_document(const JobAction& a) const {
  const auto& m = *a.resolved.manifest;
  Json d = {{"kind", kind_name(m.kind)},
            {"using", m.using_text},
            {"metadata", a.resolved.manifest_digest}};
  if (a.ref.kind == pipeline::ActionRef::Kind::kRepository) {
    d["repository"] = a.ref.repository();
    d["ref"] = a.ref.ref;
    d["commit"] = a.resolved.repo.commit;
    d["path"] = a.ref.path;
  } else {
    d["local"] = a.ref.local;
  }
  if (m.kind == pipeline::ActionKind::kNode && node_) d["runtime"] = node_->digest;
  return d;
}

Result<executor::ProcessResult> JobExecution::run_action(const pipeline::Step& step, StepIo& io,
                                                         JobEnv::Map env, StepReport* sr,
                                                         size_t index, const std::string& what) {
  LS_TRY_ASSIGN(pipeline::ActionRef ref, pipeline::parse_action_ref(*step.uses));
  std::optional<JobAction> action;
  std::map<std::string, std::string> inputs;
  Json doc;
  if (ref.kind == pipeline::ActionRef::Kind::kDocker) {
    for (const auto& [k, v] : step.with) {
      LS_TRY_ASSIGN(inputs[k], eval_string(v, ctx_, what + " with." + k));
    }
    doc = {{"kind", "docker"}, {"image", ref.image}};
  } else {
    LS_TRY_ASSIGN(action, job_action(step, what));
    LS_TRY_ASSIGN(inputs, action_inputs(step, *action->resolved.manifest, what));
    doc = action_document(*action);
    if (action->resolved.manifest->kind == pipeline::ActionKind::kDocker) {
      // A Dockerfile action's image is built (or found) before the step's
      // hash, which then names its digest.
      LS_TRY_ASSIGN(std::string image, docker_action_image(*action, what));
      doc["image"] = image;
      if (auto it = built_.find(image); it != built_.end()) doc["image_digest"] = it->second;
    }
  }
  if (sr) {
    pipeline::StepEnvInputs hin;
    hin.index = index;
    hin.id = step.id;
    hin.name = sr->name;
    hin.kind = "uses";
    hin.uses = *step.uses;
    for (const auto& [k, v] : inputs) hin.with[k] = secret_free(v);
    hin.action = doc;
    hin.workdir = workspace_;
    for (const auto& [k, v] : env) hin.env[k] = secret_free(v);
    auto coe = eval_bool_text(step.continue_on_error, ctx_, false, "continue-on-error");
    hin.continue_on_error = coe && *coe;
    LS_TRY(compute_step_hash(hin, *sr));
    last_ps_ = {};
    last_ps_.workdir = workspace_;
    if (stop_here_) return stopped_result();
  }
  io.state = &states_[io.tag];
  if (ref.kind == pipeline::ActionRef::Kind::kDocker)
    return run_docker(ref.image, nullptr, Stage::kMain, inputs, io, std::move(env), what);

  const JobAction& a = *action;
  const auto& m = *a.resolved.manifest;
  const std::string post_name = "Post " + (sr ? sr->name : step_display_name(step, index));
  if (ref.kind == pipeline::ActionRef::Kind::kLocal &&
      (!m.pre.empty() || !m.pre_entrypoint.empty()))
    log_->note("warning: `pre` execution is not supported for local action from '" + ref.local +
               "'");
  switch (m.kind) {
    case pipeline::ActionKind::kNode: {
      if (node_ && m.node_major > node_->major)
        log_->note("warning: " + what + ": action '" + *step.uses +
                   "' declares 'using: " + m.using_text + "'; lockstep's Node.js runtime is " +
                   node_->version + ", which runs it");
      LS_TRY_ASSIGN(executor::ProcessResult pr, run_node(a, Stage::kMain, inputs, io, env, what));
      if (!m.post.empty()) {
        StepIo post_io;
        post_io.id = io.id;
        post_io.tag = "post" + io.tag;
        post_io.state = io.state;
        posts_.push_back({post_name, nullptr, m.post_if,
                          [this, a, inputs, post_io, env, what](StepReport&) mutable {
                            return run_node(a, Stage::kPost, inputs, post_io, env, what);
                          }});
      }
      return pr;
    }
    case pipeline::ActionKind::kComposite:
      return run_composite(step, a, inputs, io, std::move(env), what);
    case pipeline::ActionKind::kDocker: {
      LS_TRY_ASSIGN(std::string image, docker_action_image(a, what));
      LS_TRY_ASSIGN(executor::ProcessResult pr,
                    run_docker(image, &a, Stage::kMain, inputs, io, env, what));
      if (!m.post_entrypoint.empty()) {
        StepIo post_io;
        post_io.id = io.id;
        post_io.tag = "post" + io.tag;
        post_io.state = io.state;
        posts_.push_back({post_name, nullptr, m.post_if,
                          [this, image, a, inputs, post_io, env, what](StepReport&) mutable {
                            return run_docker(image, &a, Stage::kPost, inputs, post_io, env, what);
                          }});
      }
      return pr;
    }
  }
  return fail(what + ": unknown kind of action", ErrorKind::kUnsupported);
}

Result<executor::ProcessResult> JobExecution::run_node(
    const JobAction& a, Stage stage, const std::map<std::string, std::string>& inputs, StepIo& io,
    JobEnv::Map env, const std::string& what) {
  if (!node_)
    return fail(what + ": lockstep's Node.js runtime is not mounted in this job",
                ErrorKind::kUnsupported);
  const auto& m = *a.resolved.manifest;
  const std::string& script = stage == Stage::kPre    ? m.pre
                              : stage == Stage::kPost ? m.post
                                                      : m.main;
  // GitHub's order: the env context, then the action's state and inputs,
  // then the runner's own variables.
  for (const auto& [k, v] : *io.state) env["STATE_" + k] = v;
  for (const auto& [k, v] : inputs) env[pipeline::input_env_name(k)] = v;
  std::map<std::string, std::string> injected = injected_env(io.id);
  LS_TRY_ASSIGN(auto files, step_files(io, ctemp_));
  for (const auto& [var, path] : files) injected[var] = path;
  injected["GITHUB_ACTION_PATH"] = a.dir;
  injected["RUNNER_TOOL_CACHE"] = kContainerToolCache;
  LS_TRY_ASSIGN(injected["GITHUB_EVENT_PATH"], event_file());
  if (a.ref.kind == pipeline::ActionRef::Kind::kRepository) {
    injected["GITHUB_ACTION_REPOSITORY"] = a.ref.repository();
    injected["GITHUB_ACTION_REF"] = a.ref.ref;
  }
  io.allow_unsecure = env.count("ACTIONS_ALLOW_UNSECURE_COMMANDS") &&
                      ascii_lower(env["ACTIONS_ALLOW_UNSECURE_COMMANDS"]) == "true";
  executor::ProcessSpec ps;
  ps.argv = {std::string(kNodeMount) + "/bin/node", a.dir + "/" + script};
  ps.env = job_env_.process_env(std::move(env), injected, default_path_);
  ps.workdir = workspace_;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline_ - std::chrono::steady_clock::now());
  ps.timeout = std::max(left, std::chrono::milliseconds(1));
  LS_TRY(own_workspace());
  if (io.tag.find('.') == std::string::npos && stage == Stage::kMain) last_ps_ = ps;
  return exec_step(*container_, ps, io);
}

Result<executor::ProcessResult> JobExecution::run_composite(
    const pipeline::Step& step, const JobAction& a,
    const std::map<std::string, std::string>& inputs, StepIo& io, JobEnv::Map env,
    const std::string& what) {
  if (composite_depth_ >= kMaxCompositeDepth)
    return fail(what + ": composite actions nested more than " +
                    std::to_string(kMaxCompositeDepth) + " deep (is there a cycle?)",
                ErrorKind::kWorkflow);
  const auto& m = *a.resolved.manifest;
  // The steps inside see their own `steps` and `inputs`, github.action_path
  // and the composite step's env; everything else is the job's.
  Value saved_steps = ctx_.contexts["steps"];
  Value saved_inputs = ctx_.contexts["inputs"];
  Value saved_github = ctx_.contexts["github"];
  pipeline::JobStatus saved_status = ctx_.status;
  Value in = Value::object();
  for (const auto& [k, v] : inputs) in[k] = v;
  ctx_.contexts["steps"] = Value::object();
  ctx_.contexts["inputs"] = in;
  ctx_.contexts["github"]["action_path"] = a.dir;
  if (a.ref.kind == pipeline::ActionRef::Kind::kRepository) {
    ctx_.contexts["github"]["action_repository"] = a.ref.repository();
    ctx_.contexts["github"]["action_ref"] = a.ref.ref;
  }
  JobEnv::Map overrides;
  for (const auto& [k, v] : step.env) overrides[k] = env[k];
  job_env_.push_overrides(std::move(overrides));
  ++composite_depth_;
  // Undone on every way out, errors included.
  struct Scope {
    JobExecution* self;
    Value steps, inputs, github;
    pipeline::JobStatus status;
    bool open = true;
    void close() {
      if (!open) return;
      open = false;
      --self->composite_depth_;
      self->job_env_.pop_overrides();
      self->ctx_.contexts["steps"] = std::move(steps);
      self->ctx_.contexts["inputs"] = std::move(inputs);
      self->ctx_.contexts["github"] = std::move(github);
      self->ctx_.status = status;
    }
    ~Scope() { close(); }
  } scope{this, saved_steps, saved_inputs, saved_github, saved_status};

  bool failed = false;
  std::string reason;
  for (size_t j = 0; j < m.steps.size(); ++j) {
    const pipeline::Step& inner = m.steps[j];
    std::string id = inner.id.empty() ? "__step" + std::to_string(j + 1) : inner.id;
    std::string name = step_display_name(inner, j);
    std::string inner_what = what + " > '" + name + "'";
    ctx_.status = token_.cancelled() ? pipeline::JobStatus::kCancelled
                  : failed           ? pipeline::JobStatus::kFailure
                                     : pipeline::JobStatus::kSuccess;
    auto inner_env = job_env_.step_env(inner, ctx_);
    Result<bool> should = inner_env ? pipeline::evaluate_if(inner.if_expr, ctx_)
                                    : Result<bool>(tl::unexpected(inner_env.error()));
    std::optional<executor::ProcessResult> pr;
    std::string error;
    if (!should) {
      error = std::string(first_line_of(should.error()));
    } else if (!*should) {
      ctx_.contexts["steps"][id] = {
          {"outcome", "skipped"}, {"conclusion", "skipped"}, {"outputs", Value::object()}};
      continue;
    } else {
      log_->note("step: " + std::string(static_cast<size_t>(composite_depth_) * 2, ' ') + name);
      StepIo iio;
      iio.id = id;
      iio.tag = io.tag + "." + std::to_string(j + 1);
      Result<executor::ProcessResult> r = fail("no step");
      if (inner.uses) {
        auto iref = pipeline::parse_action_ref(*inner.uses);
        if (iref && iref->builtin())
          r = run_builtin_step(inner, nullptr, id, j, inner_what);
        else
          r = run_action(inner, iio, std::move(*inner_env), nullptr, j, inner_what);
      } else {
        r = run_script(inner, iio, std::move(*inner_env), nullptr, j, inner_what);
      }
      if (r)
        pr = *r;
      else
        error = r.error().message();
    }
    JobResult outcome = pr && pr->ok()                                     ? JobResult::kSuccess
                        : pr && pr->kind == executor::ExitKind::kCancelled ? JobResult::kCancelled
                                                                           : JobResult::kFailure;
    auto coe =
        eval_bool_text(inner.continue_on_error, ctx_, false, inner_what + " continue-on-error");
    JobResult conclusion =
        outcome == JobResult::kFailure && coe && *coe ? JobResult::kSuccess : outcome;
    Value& sc = ctx_.contexts["steps"][id];
    if (!sc.contains("outputs")) sc["outputs"] = Value::object();
    sc["outcome"] = to_string(outcome);
    sc["conclusion"] = to_string(conclusion);
    if (outcome != JobResult::kSuccess) {
      std::string why = pr ? pr->reason : error;
      log_->note("step '" + name + "' failed: " + why +
                 (conclusion == JobResult::kSuccess ? " (continue-on-error)" : ""));
      if (conclusion != JobResult::kSuccess && !failed) {
        failed = true;
        reason = "step '" + name + "' of " + *step.uses + " failed: " + why;
      }
    }
  }
  // The action's outputs, over its own steps and inputs.
  std::map<std::string, std::string> outputs;
  for (const auto& o : m.outputs) {
    auto v = pipeline::interpolate(o.value, ctx_);
    if (!v) {
      if (!failed) {
        failed = true;
        reason = what + ": output '" + o.name + "': " + std::string(first_line_of(v.error()));
      }
      continue;
    }
    outputs[o.name] = *v;
  }
  // Back in the caller's scope: the outputs are the step's.
  scope.close();
  executor::ProcessResult pr;
  for (const auto& [k, v] : outputs) ctx_.contexts["steps"][io.id]["outputs"][k] = v;
  if (failed) {
    pr.exit_code = 1;
    pr.reason = reason;
  } else {
    pr.reason = "exit code 0";
  }
  return pr;
}

Result<executor::ProcessResult> JobExecution::run_docker(
    const std::string& image, const JobAction* a, Stage stage,
    const std::map<std::string, std::string>& inputs, StepIo& io, JobEnv::Map env,
    const std::string& what) {
  ImagePin pin = replay_pin(image);
  auto prepared = run_.images->get(pin.lookup);
  if (!prepared) return fail(std::move(prepared.error()).context(what + ": image " + image));
  LS_TRY(verify_image_pin(pin, image, prepared->record));
  std::string digest = prepared->record.manifest.str();
  auto& rin = report_.inputs;
  if (std::none_of(rin.begin(), rin.end(), [&](const ResolvedInput& r) {
        return r.kind == "image" && r.reference == image;
      }))
    rin.push_back({"image", image, digest, !pin.locked.empty()});

  const pipeline::ActionManifest* m = a ? a->resolved.manifest.get() : nullptr;
  // The container: the image's filesystem, the job's workspace, $HOME and
  // step files where GitHub puts them, and the job's network.
  LS_TRY(event_file());
  fs::path workflow_dir = temp_host_ / "_github_workflow";
  executor::ContainerSpec spec;
  spec.id = spec_copy_.id + "-act-" + io.tag;
  for (char& c : spec.id)
    if (c == '.') c = '_';
  spec.layers = prepared->layer_dirs;
  spec.hostname = spec_copy_.hostname;
  spec.mounts = {{workspace_host_, "/github/workspace", false},
                 {home_host_, "/github/home", false},
                 {temp_host_, "/github/file_commands", false},
                 {workflow_dir, "/github/workflow", false},
                 {job_dir_ / "hosts", "/etc/hosts", true}};
  spec.env = env_from_config(prepared->record.config_json);
  spec.user = user_from_config(prepared->record.config_json);
  spec.user_namespace = run_.userns;
  spec.limits = spec_copy_.limits;
  spec.workdir = "/github/workspace";
  join_job_network(spec, spec_copy_.id, true);

  // Entry point and arguments: the stage's entrypoint, else `with:
  // entrypoint`, else runs.entrypoint, else the image's; `with: args` (split
  // as a shell would), else runs.args (expressions over inputs), else the
  // image's Cmd.
  auto [image_entry, image_cmd] = image_entrypoint_and_cmd(prepared->record.config_json);
  std::vector<std::string> entry = image_entry;
  const std::string* with_entry = find_input(inputs, "entrypoint");
  if (stage == Stage::kPre && m)
    entry = {m->pre_entrypoint};
  else if (stage == Stage::kPost && m)
    entry = {m->post_entrypoint};
  else if (with_entry && !with_entry->empty())
    entry = {*with_entry};
  else if (m && !m->entrypoint.empty())
    entry = {m->entrypoint};
  std::vector<std::string> args = image_cmd;
  bool entry_overridden = entry != image_entry;
  if (entry_overridden) args.clear();  // as docker: a new entrypoint drops the image's Cmd
  pipeline::EvalContext actx = ctx_;
  Value in = Value::object();
  for (const auto& [k, v] : inputs) in[k] = v;
  actx.contexts["inputs"] = in;
  if (const std::string* with_args = find_input(inputs, "args"); with_args && !with_args->empty()) {
    auto split = pipeline::split_shell_words(*with_args);
    if (!split) return fail(std::move(split.error()).context(what + " with.args"));
    args = *split;
  } else if (m && !m->args.empty()) {
    args.clear();
    for (const auto& t : m->args) {
      LS_TRY_ASSIGN(std::string v, eval_string(t, actx, what + " args"));
      args.push_back(v);
    }
  }
  std::vector<std::string> argv = entry;
  argv.insert(argv.end(), args.begin(), args.end());
  if (argv.empty())
    return fail(what + ": image " + image + " has no entrypoint or command to run",
                ErrorKind::kWorkflow);

  if (m)
    for (const auto& [k, v] : m->env) {
      LS_TRY_ASSIGN(env[k], eval_string(v, actx, what + " env " + k));
    }
  for (const auto& [k, v] : *io.state) env["STATE_" + k] = v;
  for (const auto& [k, v] : inputs) env[pipeline::input_env_name(k)] = v;
  std::map<std::string, std::string> injected = injected_env(io.id);
  LS_TRY_ASSIGN(auto files, step_files(io, "/github/file_commands"));
  for (const auto& [var, path] : files) injected[var] = path;
  injected["GITHUB_WORKSPACE"] = "/github/workspace";
  injected["HOME"] = "/github/home";
  injected["GITHUB_EVENT_PATH"] = "/github/workflow/event.json";
  injected["RUNNER_TEMP"] = "/github/file_commands";
  if (a && a->ref.kind == pipeline::ActionRef::Kind::kRepository) {
    injected["GITHUB_ACTION_REPOSITORY"] = a->ref.repository();
    injected["GITHUB_ACTION_REF"] = a->ref.ref;
  }
  io.allow_unsecure = env.count("ACTIONS_ALLOW_UNSECURE_COMMANDS") &&
                      ascii_lower(env["ACTIONS_ALLOW_UNSECURE_COMMANDS"]) == "true";
  executor::ProcessSpec ps;
  ps.argv = std::move(argv);
  // The image's PATH, not the job image's.
  std::string path;
  for (const auto& e : spec.env)
    if (e.rfind("PATH=", 0) == 0) path = e.substr(5);
  env.erase("PATH");
  ps.env = job_env_.process_env(std::move(env), injected, path);
  ps.workdir = "/github/workspace";
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline_ - std::chrono::steady_clock::now());
  ps.timeout = std::max(left, std::chrono::milliseconds(1));
  LS_TRY(own_workspace());

  log_->note("running " + image + " (" + digest.substr(0, 19) + ")");
  auto started = run_.executor->start(spec);
  if (!started)
    return fail(std::move(started.error()).context(what + ": start the container of " + image));
  std::unique_ptr<executor::Container> c = std::move(*started);
  executor::Container* raw = c.get();
  token_.on_cancel([raw, this] {
    raw->cancel(std::chrono::seconds(5));
    if (container_) container_->cancel(std::chrono::seconds(5));
  });
  auto pr = exec_step(*c, ps, io);
  executor::Container* job = container_.get();
  token_.on_cancel([job] { job->cancel(std::chrono::seconds(5)); });
  auto stopped = c->stop(std::chrono::duration_cast<std::chrono::milliseconds>(kStopGrace));
  if (!pr) return pr;
  if (!stopped && pr->ok())
    return fail(std::move(stopped.error()).context(what + ": stop container"));
  return pr;
}

Status JobExecution::run_pre_steps(bool& failed, std::string& reason) {
  for (size_t i = 0; i < job_.steps.size(); ++i) {
    const pipeline::Step& step = job_.steps[i];
    if (!step.uses) continue;
    auto it = prepared_.find(*step.uses);
    if (it == prepared_.end()) continue;
    const JobAction& prepared = it->second;
    const auto& m = *prepared.resolved.manifest;
    bool has_pre = (m.kind == pipeline::ActionKind::kNode && !m.pre.empty()) ||
                   (m.kind == pipeline::ActionKind::kDocker && !m.pre_entrypoint.empty());
    if (!has_pre) continue;
    StepReport sr;
    sr.name = "Pre " + report_.steps[i].name;
    std::string what = "step '" + sr.name + "'";
    auto begin = std::chrono::steady_clock::now();
    ctx_.status = failed ? pipeline::JobStatus::kFailure : pipeline::JobStatus::kSuccess;
    auto env = job_env_.step_env(step, ctx_);
    if (!env) return fail(std::move(env.error()).context(what));
    auto should = pipeline::evaluate_if(m.pre_if.empty() ? "always()" : m.pre_if, ctx_);
    if (!should) return fail(std::move(should.error()).context(what + " pre-if"));
    if (!*should) {
      sr.outcome = sr.conclusion = JobResult::kSkipped;
      report_.pre_steps.push_back(std::move(sr));
      continue;
    }
    log_->note("step: " + sr.name);
    StepIo io;
    io.id = report_.steps[i].id;
    io.tag = "pre" + std::to_string(i + 1);
    io.state = &states_[std::to_string(i + 1)];
    Result<executor::ProcessResult> r = fail("not run");
    auto a = job_action(step, what);
    if (!a) {
      r = fail(std::move(a.error()));
    } else {
      auto inputs = action_inputs(step, m, what);
      if (!inputs)
        r = fail(std::move(inputs.error()));
      else if (m.kind == pipeline::ActionKind::kNode)
        r = run_node(*a, Stage::kPre, *inputs, io, std::move(*env), what);
      else if (auto image = docker_action_image(*a, what); !image)
        r = fail(std::move(image.error()));
      else
        r = run_docker(*image, &*a, Stage::kPre, *inputs, io, std::move(*env), what);
    }
    sr.duration = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - begin);
    sr.outcome = sr.conclusion = r && r->ok() ? JobResult::kSuccess : JobResult::kFailure;
    if (sr.outcome != JobResult::kSuccess) {
      sr.reason = r ? r->reason : r.error().message();
      log_->note("step '" + sr.name + "' failed: " + sr.reason);
      if (!failed) {
        failed = true;
        reason = "step '" + sr.name + "' failed: " + sr.reason;
      }
    }
    sr.log_tail = log_->take_tail();
    report_.pre_steps.push_back(std::move(sr));
  }
  return {};
}

}  // namespace lockstep::runner::detail
