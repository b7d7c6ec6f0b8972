// A job's container: its image (container.image, else the runs-on label's),
// workspace and $HOME, mounts, options (.lockstep.yml defaults, then the
// job's), network, actions and environment hash; then it starts, with its
// services.
#include <cstdio>

#include "pipeline/options.hpp"
#include "runner/engine/job_internal.hpp"

namespace lockstep::runner::detail {

Status JobExecution::start_container(const fs::path& job_dir) {
  // Image: container.image, else the runs-on label mapping.
  std::string image;
  if (job_.container) {
    LS_TRY_ASSIGN(
        image, eval_string(job_.container->image, ctx_, "job '" + job_.id + "' container image"));
  } else {
    for (const auto& label : job_.runs_on) {
      LS_TRY_ASSIGN(std::string l, eval_string(label, ctx_, "job '" + job_.id + "' runs-on"));
      if (auto it = run_.platforms.find(l); it != run_.platforms.end()) {
        image = it->second;
        if (run_.hosted && run_.hosted->first_use(l))
          std::fprintf(stderr,
                       "lockstep: note: runs-on '%s' runs in %s (GitHub's hosted runner image "
                       "is a VM, not a container); choose another with runs-on: in "
                       ".lockstep.yml or --platform %s=IMAGE\n",
                       l.c_str(), image.c_str(), l.c_str());
        break;
      }
    }
    if (image.empty()) {
      std::string labels;
      for (const auto& l : job_.runs_on) labels += (labels.empty() ? "" : ", ") + l;
      return fail("job '" + job_.id + "' has no container and runs-on '" + labels +
                      "' is not mapped to an image: add 'container: IMAGE' to the job, or map "
                      "the label with --platform LABEL=IMAGE or in .lockstep.yml",
                  ErrorKind::kWorkflow);
    }
  }
  report_.image = image;
  log_->note("image " + image);
  ImagePin pin = replay_pin(image);
  LS_TRY_ASSIGN(PreparedImage prepared, run_.images->get(pin.lookup));
  LS_TRY(verify_image_pin(pin, image, prepared.record));
  report_.image_digest = prepared.record.manifest.str();
  report_.inputs.push_back({"image", image, report_.image_digest, !pin.locked.empty()});

  // Host side: <job>/w is the container's /__w; <job>/home its $HOME.
  fs::path w = job_dir / "w";
  workspace_host_ = w / run_.repo_name / run_.repo_name;
  temp_host_ = w / "_temp";
  std::error_code ec;
  home_host_ = job_dir / "home";
  for (const auto& d : {workspace_host_, temp_host_, home_host_}) {
    fs::create_directories(d, ec);
    if (ec) return fail("create " + d.string() + ": " + ec.message());
  }
  workspace_ = croot_ + "/" + run_.repo_name + "/" + run_.repo_name;
  bash_ = image_has_bash(prepared.layer_dirs);
  ctx_.hash_files = [this](const std::vector<std::string>& patterns) {
    return hash_workspace_files(workspace_host_, patterns);
  };

  executor::ContainerSpec spec;
  spec.id = "ls-" + run_.run_id + "-" + std::to_string(index_ + 1);
  spec.network.mode = executor::NetworkMode::kEgress;  // unless options say otherwise
  spec.layers = prepared.layer_dirs;
  if (run_.vary.reverse_dir_order) {
    LS_TRY(disorder_.mount(w, job_dir / "w-view"));
    spec.mounts.push_back({disorder_.view, croot_, false});
  } else {
    spec.mounts.push_back({w, croot_, false});
  }
  spec.mounts.push_back({job_dir / "home", chome_, false});
  spec.hostname = "lockstep";
  spec.env = env_from_config(prepared.record.config_json);
  for (const auto& e : spec.env)
    if (e.rfind("PATH=", 0) == 0) default_path_ = e.substr(5);
  spec.user = user_from_config(prepared.record.config_json);
  spec.workdir = workspace_;
  LS_TRY(choose_services());
  std::vector<std::string> service_names;
  for (const auto& svc : services_to_start_) service_names.push_back(svc.decl->name);
  LS_TRY(write_file(job_dir / "hosts", hosts_file(service_names)));
  spec.mounts.push_back({job_dir / "hosts", "/etc/hosts", true});
  LS_TRY(apply_container_options(spec));
  spec.user_namespace = run_.userns;
  apply_variation(spec);
  LS_TRY(attach_network(job_dir, spec));
  LS_TRY(prepare_actions(spec));
  LS_TRY(prepare_checkouts());
  report_.network = executor::to_string(spec.network);
  // The environment hash, before anything runs: a replay refuses here.
  LS_TRY(compute_job_hash(spec, prepared));

  auto c = run_.executor->start(spec);
  if (!c)
    return fail(std::move(c.error()).context("start container for job " + inst_.display_name));
  container_ = std::move(*c);
  executor::Container* raw = container_.get();
  token_.on_cancel([raw] { raw->cancel(std::chrono::seconds(5)); });
  LS_TRY(start_services(job_dir, spec.id));
  return set_job_context(spec.id);
}

Status JobExecution::apply_container_options(executor::ContainerSpec& spec) {
  if (!run_.default_options.empty()) {  // .lockstep.yml defaults; the job's options win
    LS_TRY_ASSIGN(pipeline::ContainerOptions d,
                  pipeline::parse_container_options(run_.default_options));
    LS_TRY(apply_parsed_options(d, spec));
  }
  if (!job_.container) return {};
  const auto& decl = *job_.container;
  for (const auto& [k, v] : decl.env) {
    LS_TRY_ASSIGN(std::string val, eval_string(v, ctx_, "container env " + k));
    spec.env.push_back(k + "=" + val);
  }
  for (const auto& vol : decl.volumes) {
    LS_TRY_ASSIGN(std::string v, eval_string(vol, ctx_, "container volume"));
    LS_TRY(add_volume(v, spec));
  }
  if (decl.options.empty()) return {};
  LS_TRY_ASSIGN(std::string text, eval_string(decl.options, ctx_, "container options"));
  LS_TRY_ASSIGN(pipeline::ContainerOptions o, pipeline::parse_container_options(text));
  return apply_parsed_options(o, spec);
}

Status JobExecution::apply_parsed_options(const pipeline::ContainerOptions& o,
                                          executor::ContainerSpec& spec) {
  apply_resource_options(o, spec.limits);
  if (o.memory_swap_bytes && o.memory_bytes && *o.memory_swap_bytes != *o.memory_bytes &&
      *o.memory_swap_bytes != 0)
    return fail(
        "container options: --memory-swap other than --memory is not supported "
        "(lockstep runs jobs without swap so that memory limits hold)",
        ErrorKind::kUnsupported);
  if (o.network) {
    if (*o.network == "none")
      spec.network.mode = executor::NetworkMode::kNone;
    else if (*o.network == "host")
      spec.network.mode = executor::NetworkMode::kHost;
    else if (*o.network == "egress")
      spec.network.mode = executor::NetworkMode::kEgress;
    else
      return fail("container options: --network '" + *o.network +
                      "' is not supported (use egress, none or host)",
                  ErrorKind::kUnsupported);
  }
  if (o.user) spec.user = *o.user;
  if (o.workdir) spec.workdir = *o.workdir;
  if (o.hostname) spec.hostname = *o.hostname;
  for (const auto& [k, v] : o.env) spec.env.push_back(k + "=" + v);
  spec.cap_add = o.cap_add;
  spec.cap_drop = o.cap_drop;
  if (o.entrypoint)
    return fail("container options: --entrypoint applies to services, not to job containers",
                ErrorKind::kWorkflow);
  return {};
}

}  // namespace lockstep::runner::detail
