// A job's services as GitHub chooses them, its container volumes, and the
// `job` context that describes both to expressions.
#include <unistd.h>

#include "runner/engine/job_internal.hpp"

namespace lockstep::runner::detail {

namespace {

// The container ports of one `ports:` entry, docker's
// `[ip:][host-port:]container-port[/protocol]` (ranges "8000-8002" too).
Result<std::vector<std::string>> container_ports(const std::string& entry) {
  std::string s = entry;
  if (auto slash = s.find('/'); slash != std::string::npos) s.resize(slash);
  auto colon = s.rfind(':');
  std::string port = colon == std::string::npos ? s : s.substr(colon + 1);
  auto number = [](const std::string& t) -> std::optional<int> {
    if (t.empty() || t.size() > 5 || t.find_first_not_of("0123456789") != std::string::npos)
      return std::nullopt;
    int n = std::stoi(t);
    if (n < 1 || n > 65535) return std::nullopt;
    return n;
  };
  auto dash = port.find('-');
  auto first = number(port.substr(0, dash));
  auto last = dash == std::string::npos ? first : number(port.substr(dash + 1));
  if (!first || !last || *last < *first)
    return fail("ports entry '" + entry + "': expected [HOST-PORT:]CONTAINER-PORT[/PROTOCOL]",
                ErrorKind::kWorkflow);
  std::vector<std::string> out;
  for (int p = *first; p <= *last; ++p) out.push_back(std::to_string(p));
  return out;
}

}  // namespace

std::string JobExecution::service_container_id(const std::string& job_container_id,
                                               const std::string& name) {
  return job_container_id + "-svc-" + slug(name);
}

Status JobExecution::choose_services() {
  services_to_start_.clear();
  for (const auto& decl : job_.services) {
    LS_TRY_ASSIGN(std::string image,
                  eval_string(decl.container.image, ctx_, "service '" + decl.name + "' image"));
    if (image.empty()) {
      log_->note("service " + decl.name + ": its image is empty; not started");
      continue;
    }
    services_to_start_.push_back({&decl, std::move(image)});
  }
  return {};
}

// Each service starts, then the job waits until it is healthy.
Status JobExecution::start_services(const fs::path& job_dir, const std::string& job_container_id) {
  for (const auto& chosen : services_to_start_) {
    const pipeline::ServiceDecl& decl = *chosen.decl;
    auto svc = std::make_unique<Service>();
    svc->name = decl.name;
    svc->image = chosen.image;
    ImagePin pin = replay_pin(svc->image);
    LS_TRY_ASSIGN(PreparedImage img, run_.images->get(pin.lookup));
    LS_TRY(verify_image_pin(pin, svc->image, img.record));
    svc->image_digest = img.record.manifest.str();
    report_.inputs.push_back({"image", svc->image, svc->image_digest, !pin.locked.empty()});
    svc->log_file = job_dir / ("service-" + slug(decl.name) + ".log");
    report_.services.push_back({decl.name, svc->image, svc->image_digest, svc->log_file});
    executor::ContainerSpec spec;
    spec.id = service_container_id(job_container_id, decl.name);
    spec.layers = img.layer_dirs;
    spec.hostname = decl.name;
    spec.mounts.push_back({job_dir / "hosts", "/etc/hosts", true});
    spec.env = env_from_config(img.record.config_json);
    join_job_network(spec, job_container_id, false);
    spec.user = user_from_config(img.record.config_json);
    spec.user_namespace = run_.userns;
    std::vector<std::string> env;
    for (const auto& [k, v] : decl.container.env) {
      LS_TRY_ASSIGN(std::string val, eval_string(v, ctx_, "service '" + decl.name + "' env " + k));
      env.push_back(k + "=" + val);
    }
    LS_TRY_ASSIGN(std::string options,
                  eval_string(decl.container.options, ctx_, "service '" + decl.name + "' options"));
    // The options, parsed once: limits, env, health check and entrypoint.
    pipeline::ContainerOptions o;
    if (!options.empty()) {
      LS_TRY_ASSIGN(o, pipeline::parse_container_options(options));
      apply_resource_options(o, spec.limits);
      for (const auto& [k, v] : o.env) env.push_back(k + "=" + v);
    }
    HealthPolicy health = health_policy(img.record.config_json, o);
    log_->note("service " + decl.name + ": starting " + svc->image);
    LS_TRY(svc->start(*run_.executor, spec, service_argv(img.record.config_json, o), env));
    Service* raw = svc.get();
    services_.push_back(std::move(svc));
    LS_TRY(raw->wait_healthy(health));
    log_->note("service " + decl.name + ": healthy");
  }
  return {};
}

Status JobExecution::set_job_context(const std::string& job_container_id) {
  // Services share the job container's network namespace: that namespace,
  // named by the job container's id, is the network of both. A port is
  // reached at localhost:<port> from every step, so each published port
  // maps to itself.
  Value& job = ctx_.contexts["job"];
  job["container"] = {{"id", job_container_id}, {"network", job_container_id}};
  Value services = Value::object();
  for (const auto& chosen : services_to_start_) {
    const auto& decl = *chosen.decl;
    Value ports = Value::object();
    for (const auto& p : decl.ports) {
      LS_TRY_ASSIGN(std::string text, eval_string(p, ctx_, "service '" + decl.name + "' ports"));
      auto list = container_ports(text);
      if (!list) return fail(std::move(list.error()).context("service '" + decl.name + "'"));
      for (const auto& port : *list) ports[port] = port;
    }
    services[decl.name] = {{"id", service_container_id(job_container_id, decl.name)},
                           {"network", job_container_id},
                           {"ports", ports}};
  }
  job["services"] = services;
  return {};
}

Status JobExecution::add_volume(const std::string& v, executor::ContainerSpec& spec) {
  auto bad = [&](const std::string& why) {
    return fail("container volume '" + v + "': " + why, ErrorKind::kWorkflow);
  };
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    size_t colon = v.find(':', start);
    parts.push_back(v.substr(start, colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  for (const auto& p : parts)
    if (p.empty() || parts.size() > 3)
      return bad(
          "expected /host/path:/container/path[:ro], NAME:/container/path[:ro] or "
          "/container/path");
  bool read_only = false;
  if (parts.size() == 3) {
    if (parts[2] == "ro")
      read_only = true;
    else if (parts[2] != "rw")
      return bad("unknown mode '" + parts[2] + "' (expected ro or rw)");
  }
  std::string target = parts.size() == 1 ? parts[0] : parts[1];
  if (target[0] != '/') return bad("the container path '" + target + "' is not absolute");
  std::optional<std::pair<uint32_t, uint32_t>> owner;
  if (run_.userns && !run_.userns->uid_map.empty() && !run_.userns->gid_map.empty())
    owner = {run_.userns->uid_map.front().host_id, run_.userns->gid_map.front().host_id};

  if (parts.size() == 1) {  // an anonymous volume: empty, the job's own
    fs::path dir = job_dir_ / "volumes" / std::to_string(anonymous_volumes_.size() + 1);
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return fail("create " + dir.string() + ": " + ec.message());
    anonymous_volumes_.push_back(dir);
    if (owner && ::chown(dir.c_str(), owner->first, owner->second) != 0)
      return fail_errno("chown " + dir.string());
    spec.mounts.push_back({dir, target, false});
    volume_kinds_[target] = {"anonymous-volume", ""};
    return {};
  }
  const std::string& source = parts[0];
  if (source[0] == '/') {
    spec.mounts.push_back({source, target, read_only});
    return {};
  }
  if (!cache::valid_volume_name(source))
    return bad("'" + source +
               "' is neither an absolute host path nor a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]+)");
  cache::VolumeStore store(run_.state_dir);
  auto use = store.use(source, owner);
  if (!use) return fail(std::move(use.error()).context("container volume '" + v + "'"));
  spec.mounts.push_back({use->data, target, read_only});
  volume_kinds_[target] = {"named-volume", source};
  volume_uses_.push_back(std::move(*use));
  return {};
}

void JobExecution::release_volumes() {
  volume_uses_.clear();
  if (anonymous_volumes_.empty()) return;
  fs::path all = anonymous_volumes_.front().parent_path();
  if (auto r = remove_tree(all); !r && log_)
    log_->note("remove " + all.string() + ": " + r.error().message());
  anonymous_volumes_.clear();
}

void JobExecution::stop_services() {
  for (auto& s : services_) s->stop();
  services_.clear();
}

}  // namespace lockstep::runner::detail
