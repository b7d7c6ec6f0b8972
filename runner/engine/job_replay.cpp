// What a replay holds a job to: its environment hashes, from what they
// cover (job_record.hpp), checked against the recorded documents; images
// pinned to the recorded digests; the stop before --until and the shell
// there.
#include <unistd.h>

#include <cstdio>

#include "cache/artifacts.hpp"
#include "executor/interactive.hpp"
#include "registry-mirror/reference.hpp"
#include "runner/engine/job_internal.hpp"
#include "runner/engine/job_record.hpp"

namespace lockstep::runner::detail {

std::string JobExecution::secret_free(const std::string& text) const {
  if (!inst_.scope) return pipeline::redact_secrets(text, run_.secrets);
  // A called job: also what its call made of them, under the names it sees.
  std::map<std::string, std::string> secrets = run_.secrets;
  for (auto it = inst_.scope->secrets.begin(); it != inst_.scope->secrets.end(); ++it)
    if (it.value().is_string()) secrets[it.key()] = it.value().get<std::string>();
  return pipeline::redact_secrets(text, secrets);
}

Status JobExecution::compute_job_hash(const executor::ContainerSpec& spec,
                                      const PreparedImage& image) {
  spec_copy_ = spec;
  JobHashInput in;
  in.workflow_name = run_.workflow->name;
  in.job_id = job_.id;
  in.display_name = inst_.display_name;
  in.matrix = inst_.matrix.is_object() ? Json::parse(inst_.matrix.dump()) : Json::object();
  in.image = report_.image;
  in.manifest_digest = image.record.manifest.str();
  in.platform = image.record.platform.str();
  in.source_commit = run_.source_commit;
  in.source_tree = run_.source_tree;
  in.dirty_patch = run_.dirty_patch;
  in.declared = pipeline::declared_job(wf_, job_);
  // A called job: which workflow file (and commit) it came from, through
  // which calls, with which inputs; and the secrets its call passed.
  in.redact = run_.secrets;
  if (inst_.scope) {
    in.call = pipeline::call_document(*inst_.scope);
    for (auto it = inst_.scope->secrets.begin(); it != inst_.scope->secrets.end(); ++it) {
      std::string v = it.value().is_string() ? it.value().get<std::string>() : "";
      in.secrets[it.key()] = v;
      if (it.value().is_string()) in.redact[it.key()] = v;
    }
  } else {
    in.secrets = run_.secrets;
  }
  in.spec = &spec;
  in.base_env = job_env_.base();
  in.secret_key = run_.secret_key;
  in.mount_kinds = {{croot_, {"workspace", ""}},   {chome_, {"home", ""}},
                    {"/etc/hosts", {"hosts", ""}}, {"/etc/resolv.conf", {"resolv.conf", ""}},
                    {kNodeMount, {"runtime", ""}}, {kContainerToolCache, {"toolcache", ""}}};
  for (const auto& [target, kind] : volume_kinds_) in.mount_kinds[target] = kind;
  if (run_.network) {
    in.egress_allow = run_.network->allow_text();
    in.egress_inspect = run_.network->inspects();
  }
  in.limits_enforced = run_.limits_enforced;
  in.bash = bash_;
  in.job_timeout = job_timeout_;
  for (const auto& chosen : services_to_start_) {
    const pipeline::ServiceDecl& decl = *chosen.decl;
    pipeline::EnvService s;
    s.name = decl.name;
    s.image = chosen.image;
    ImagePin pin = replay_pin(s.image);  // as start_services resolves it
    LS_TRY_ASSIGN(PreparedImage img, run_.images->get(pin.lookup));
    LS_TRY(verify_image_pin(pin, s.image, img.record));
    s.manifest_digest = img.record.manifest.str();
    for (const auto& [k, v] : decl.container.env) {
      LS_TRY_ASSIGN(s.env[k], eval_string(v, ctx_, "service '" + decl.name + "' env " + k));
    }
    LS_TRY_ASSIGN(s.options,
                  eval_string(decl.container.options, ctx_, "service '" + decl.name + "' options"));
    in.services.push_back(std::move(s));
  }
  for (const JobReport* r : needed_) {
    auto& n = in.needs[r->job_id];
    n.result = to_string(r->outcome.result);
    n.outputs = r->outputs;
    cache::ArtifactStore store(run_.state_dir);
    for (const auto& name : r->artifacts)
      if (auto a = store.get(run_.run_id, name)) n.artifacts[name] = a->digest.str();
  }
  if (node_) in.node_runtime = node_->digest;
  in.checkouts = checkouts_;
  for (const auto& [uses, a] : prepared_) in.actions[a.resolved.repo.key] = a.resolved.repo.commit;
  LS_TRY_ASSIGN(EnvHash h, job_env_hash(in));
  report_.env_doc = h.doc;
  report_.env_hash = h.digest.str();
  chain_ = h.digest;
  log_->note("environment hash " + h.digest.str());
  return check_expected(inst_.display_name, h.doc);
}

Status JobExecution::compute_step_hash(const pipeline::StepEnvInputs& in, StepReport& sr) {
  LS_TRY_ASSIGN(EnvHash h, step_env_hash(in, chain_));
  sr.env_doc = h.doc;
  sr.env_hash = h.digest.str();
  chain_ = h.digest;
  return check_expected(inst_.display_name + "#" + std::to_string(in.index + 1), h.doc);
}

Status JobExecution::check_expected(const std::string& key, const Json& doc) {
  return check_expected_doc(run_.replay.expected_docs, key, doc);
}

ImagePin JobExecution::replay_pin(const std::string& image) const {
  auto it = run_.replay.image_pins.find(image);
  if (it == run_.replay.image_pins.end()) return pin_image(run_.lock, image);
  // By digest: from the local store when it is there, else pulled from the
  // reference's registry.
  ImagePin pin{it->second, it->second};
  if (auto ref = registry::Reference::parse(image)) pin.lookup = ref->name() + "@" + it->second;
  return pin;
}

bool JobExecution::is_until_step(const pipeline::Step& step, size_t i, const StepReport& sr) const {
  const std::string& u = run_.replay.until_step;
  if (u.empty()) return false;
  return u == std::to_string(i + 1) || (!step.id.empty() && u == step.id) || u == sr.name;
}

void JobExecution::open_shell() {
  if (!container_) return;
  if (!::isatty(0)) {
    log_->note("--shell: standard input is not a terminal; not opening a shell");
    return;
  }
  executor::ProcessSpec ps = last_ps_;
  ps.argv = {bash_ ? "/bin/bash" : "/bin/sh"};
  ps.timeout.reset();
  ps.tty = true;
  if (ps.workdir.empty()) ps.workdir = workspace_;
  std::fprintf(stderr, "lockstep: shell in job %s (exit the shell to end the replay)\n",
               inst_.display_name.c_str());
  auto r = executor::run_interactive(*container_, ps);
  if (!r) log_->note("shell: " + r.error().message());
}

}  // namespace lockstep::runner::detail
