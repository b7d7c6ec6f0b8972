// Environment hashes of a job and its steps (docs/environment-hash.md), the
// checks a replay makes against the recorded documents, the variations a
// verify build applies, and the shell a replay opens where it stopped.
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <tuple>

#include "cache/artifacts.hpp"
#include "common/userns.hpp"
#include "executor/interactive.hpp"
#include "registry-mirror/reference.hpp"
#include "runner/job_internal.hpp"

namespace lockstep::runner::detail {

namespace {

std::map<std::string, std::string> env_map(const std::vector<std::string>& env) {
  std::map<std::string, std::string> m;
  for (const auto& e : env) {
    auto eq = e.find('=');
    if (eq == std::string::npos) continue;
    m[e.substr(0, eq)] = e.substr(eq + 1);
  }
  return m;
}

Status chown_tree(const fs::path& root, uid_t uid, gid_t gid) {
  std::error_code ec;
  if (::lchown(root.c_str(), uid, gid) != 0)
    return fail(Error::from_errno("chown " + root.string(), errno));
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (::lchown(it->path().c_str(), uid, gid) != 0)
      return fail(Error::from_errno("chown " + it->path().string(), errno));
  }
  if (ec) return fail("walk " + root.string() + ": " + ec.message());
  return {};
}

}  // namespace

namespace {

// disorderfs resolves its root to a real path and reaches it with the
// caller's uid: a state dir under a private parent (mode 0700) would make a
// verify build running as another uid fail. The root is therefore a bind of
// the workspace under /run/lockstep-disorder/<pid>-<name>/, whose parents
// anyone may traverse. What a killed lockstep left there is swept by the next.
constexpr const char* kDisorderRoot = "/run/lockstep-disorder";

void sweep_stale_disorder_binds() {
  std::error_code ec;
  for (auto it = fs::directory_iterator(kDisorderRoot, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    std::string name = it->path().filename().string();
    pid_t owner = static_cast<pid_t>(std::strtol(name.c_str(), nullptr, 10));
    if (owner > 0 && (::kill(owner, 0) == 0 || errno == EPERM)) continue;
    ::umount2(it->path().c_str(), MNT_DETACH);
    fs::remove(it->path(), ec);
  }
}

}  // namespace

Status DisorderMount::mount(const fs::path& real, const fs::path& at) {
  static const char* kBinary = "/usr/bin/disorderfs";
  if (::access(kBinary, X_OK) != 0)
    return fail(
        "verify's dir-order variation needs disorderfs (apt-get install disorderfs), or leave it "
        "out with --vary -dir-order",
        ErrorKind::kUnsupported);
  std::error_code ec;
  if (::mkdir(kDisorderRoot, 0755) != 0 && errno != EEXIST)
    return fail(Error::from_errno(std::string("create ") + kDisorderRoot, errno));
  sweep_stale_disorder_binds();
  bind = fs::path(kDisorderRoot) /
         (std::to_string(::getpid()) + "-" + at.parent_path().filename().string());
  fs::create_directories(bind, ec);
  fs::create_directories(at, ec);
  if (ec) return fail("create " + at.string() + ": " + ec.message());
  if (::mount(real.c_str(), bind.c_str(), nullptr, MS_BIND | MS_PRIVATE, nullptr) != 0) {
    int e = errno;
    unmount();
    return fail(Error::from_errno("bind " + real.string() + " to " + bind.string(), e));
  }
  // Forks into the background once mounted; auto_unmount cleans up should
  // lockstep die.
  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    unmount();
    return fail(Error::from_errno("fork", e));
  }
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull >= 0) {
      ::dup2(devnull, 0);
      ::dup2(devnull, 1);
    }
    ::execl(kBinary, kBinary, "--quiet", "--multi-user=yes", "--reverse-dirents=yes", "-o",
            "auto_unmount,attr_timeout=0,entry_timeout=0,negative_timeout=0", bind.c_str(),
            at.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    unmount();
    return fail("disorderfs " + bind.string() + " " + at.string() + " failed (status " +
                std::to_string(status) + ")");
  }
  view = at;
  return {};
}

void DisorderMount::unmount() {
  std::error_code ec;
  if (!view.empty()) {
    ::umount2(view.c_str(), MNT_DETACH);
    fs::remove(view, ec);
    view.clear();
  }
  if (!bind.empty()) {
    ::umount2(bind.c_str(), MNT_DETACH);
    fs::remove(bind, ec);
    bind.clear();
  }
}

std::string JobExecution::secret_free(const std::string& text) const {
  if (!inst_.scope) return pipeline::redact_secrets(text, run_.secrets);
  // A called job: also what its call made of them, under the names it sees.
  std::map<std::string, std::string> secrets = run_.secrets;
  for (auto it = inst_.scope->secrets.begin(); it != inst_.scope->secrets.end(); ++it)
    if (it.value().is_string()) secrets[it.key()] = it.value().get<std::string>();
  return pipeline::redact_secrets(text, secrets);
}

void JobExecution::apply_variation(executor::ContainerSpec& spec) {
  const auto& v = run_.vary;
  if (!v.hostname.empty()) spec.hostname = v.hostname;
  if (!v.domainname.empty()) spec.domainname = v.domainname;
  if (v.umask) spec.umask = *v.umask;
  if (!v.cpuset.empty()) spec.limits.cpuset = v.cpuset;
  if (v.uid_gid)
    spec.user = std::to_string(v.uid_gid->first) + ":" + std::to_string(v.uid_gid->second);
}

Status JobExecution::own_workspace(bool for_build) {
  if (!run_.vary.uid_gid && !run_.userns) return {};
  // Without root the user is root of the containers: what it writes on the
  // host side already belongs to container id 0, and other container ids
  // are given as root of the user namespace.
  if (running_rootless()) {
    if (!run_.vary.uid_gid) return {};
    std::pair<uint32_t, uint32_t> ids{0, 0};
    if (for_build) ids = *run_.vary.uid_gid;
    if (workspace_owner_ == ids) return {};
    std::vector<fs::path> dirs = {workspace_host_.parent_path().parent_path(), home_host_};
    LS_TRY(run_as_userns_root(
        [&]() -> Status {
          for (const auto& d : dirs)
            if (Status s = chown_tree(d, ids.first, ids.second); !s) return s;
          return {};
        },
        "give the workspace to the build's user"));
    workspace_owner_ = ids;
    return {};
  }
  // Built-in actions write on the host side as root; a build running as
  // another user, or as root of a user namespace (a host id of its own),
  // must own what it builds in.
  uint32_t uid = 0, gid = 0;
  if (for_build) {
    if (run_.vary.uid_gid) std::tie(uid, gid) = *run_.vary.uid_gid;
    if (run_.userns) {
      auto to_host = [](const std::vector<executor::IdMapping>& map, uint32_t id) {
        for (const auto& m : map)
          if (id >= m.container_id && id - m.container_id < m.size)
            return m.host_id + (id - m.container_id);
        return map.empty() ? id : map.front().host_id;
      };
      uid = to_host(run_.userns->uid_map, uid);
      gid = to_host(run_.userns->gid_map, gid);
    }
  }
  // Consecutive steps of one kind need no second walk over the tree: what a
  // run step creates already belongs to the ids it runs as.
  if (workspace_owner_ == std::make_pair(uid, gid)) return {};
  for (const auto& d : {workspace_host_.parent_path().parent_path(), home_host_})
    LS_TRY(chown_tree(d, uid, gid));
  workspace_owner_ = std::make_pair(uid, gid);
  return {};
}

Status JobExecution::compute_job_hash(const executor::ContainerSpec& spec,
                                      const PreparedImage& image) {
  spec_copy_ = spec;
  pipeline::JobEnvInputs in;
  in.workflow_name = run_.workflow->name;
  in.job_id = job_.id;
  in.job_name = inst_.display_name;
  in.matrix = inst_.matrix.is_object() ? Json::parse(inst_.matrix.dump()) : Json::object();
  in.image = report_.image;
  in.manifest_digest = image.record.manifest.str();
  in.platform = image.record.platform.str();
  in.source_commit = run_.source_commit;
  in.source_tree = run_.source_tree;
  if (!run_.dirty_patch.empty()) in.dirty_patch_digest = sha256_of(run_.dirty_patch).str();
  in.declared = pipeline::declared_job(wf_, job_);
  // A called job: which workflow file (and commit) it came from, through
  // which calls, with which inputs.
  if (inst_.scope) in.call = pipeline::call_document(*inst_.scope);
  // The container's environment and the job's base environment (what every
  // step starts from; each step's full environment is in its document).
  for (const auto& [k, v] : env_map(spec.env)) in.env["container:" + k] = secret_free(v);
  for (const auto& [k, v] : job_env_.base()) in.env[k] = secret_free(v);
  if (inst_.scope) {  // the secrets its call passed
    for (auto it = inst_.scope->secrets.begin(); it != inst_.scope->secrets.end(); ++it)
      in.secrets[it.key()] = pipeline::keyed_hash(
          run_.secret_key, it.value().is_string() ? it.value().get<std::string>() : "");
  } else {
    for (const auto& [k, v] : run_.secrets)
      in.secrets[k] = pipeline::keyed_hash(run_.secret_key, v);
  }
  in.workdir = spec.workdir;
  for (const auto& m : spec.mounts) {
    std::string kind = m.target == croot_                ? "workspace"
                       : m.target == chome_              ? "home"
                       : m.target == "/etc/hosts"        ? "hosts"
                       : m.target == "/etc/resolv.conf"  ? "resolv.conf"
                       : m.target == kNodeMount          ? "runtime"
                       : m.target == kContainerToolCache ? "toolcache"
                                                         : "volume";
    std::string name;
    if (auto v = volume_kinds_.find(m.target); v != volume_kinds_.end())
      std::tie(kind, name) = v->second;
    in.mounts.push_back({m.target, m.read_only, kind, name});
  }
  in.user = spec.user;
  in.umask = spec.umask;
  in.hostname = spec.hostname;
  in.domainname = spec.domainname;
  in.network = executor::to_string(spec.network);
  if (run_.network) in.egress_allow = run_.network->allow_text();
  if (run_.network) in.egress_inspect = run_.network->inspects();
  if (spec.user_namespace) in.user_namespace = describe_user_namespace(*spec.user_namespace);
  in.memory_bytes = spec.limits.memory_bytes;
  if (spec.limits.cpus) in.cpus_milli = std::llround(*spec.limits.cpus * 1000);
  in.pids = spec.limits.pids;
  in.cpuset = spec.limits.cpuset;
  in.limits_enforced = run_.limits_enforced;
  in.cap_add = spec.cap_add;
  in.cap_drop = spec.cap_drop;
  in.seccomp_profile_digest = spec.seccomp_profile.empty() ? "default"
                              : spec.seccomp_profile == "unconfined"
                                  ? "unconfined"
                                  : sha256_of(spec.seccomp_profile).str();
  in.executor_protocol = executor::kProtocolVersion;
  in.shell_default = bash_ ? "bash" : "sh";
  auto base = job_env_.base();
  auto get = [&](const char* k) { return base.count(k) ? base.at(k) : std::string(); };
  in.source_date_epoch = std::strtoll(get("SOURCE_DATE_EPOCH").c_str(), nullptr, 10);
  in.tz = get("TZ");
  in.locale = get("LANG");
  in.job_timeout_ms = job_timeout_.count();
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
      LS_TRY_ASSIGN(std::string val, eval_string(v, ctx_, "service '" + decl.name + "' env " + k));
      s.env[k] = secret_free(val);
    }
    LS_TRY_ASSIGN(s.options,
                  eval_string(decl.container.options, ctx_, "service '" + decl.name + "' options"));
    in.services.push_back(std::move(s));
  }
  for (const JobReport* r : needed_) {
    auto& n = in.needs[r->job_id];
    n.result = to_string(r->outcome.result);
    for (const auto& [k, v] : r->outputs) n.outputs[k] = secret_free(v);
    cache::ArtifactStore store(run_.state_dir);
    for (const auto& name : r->artifacts)
      if (auto a = store.get(run_.run_id, name)) n.artifacts[name] = a->digest.str();
  }
  if (node_) in.node_runtime = node_->digest;
  in.checkouts = checkouts_;
  for (const auto& [uses, a] : prepared_) in.actions[a.resolved.repo.key] = a.resolved.repo.commit;
  Json doc = pipeline::job_document(in);
  LS_TRY_ASSIGN(Digest d, pipeline::hash_document(doc));
  report_.env_doc = doc;
  report_.env_hash = d.str();
  chain_ = d;
  log_->note("environment hash " + d.str());
  return check_expected(inst_.display_name, doc);
}

Status JobExecution::compute_step_hash(const pipeline::StepEnvInputs& in, StepReport& sr) {
  Json doc = pipeline::step_document(in, chain_);
  LS_TRY_ASSIGN(Digest d, pipeline::hash_document(doc));
  sr.env_doc = doc;
  sr.env_hash = d.str();
  chain_ = d;
  return check_expected(inst_.display_name + "#" + std::to_string(in.index + 1), doc);
}

Status JobExecution::check_expected(const std::string& key, const Json& doc) {
  if (!run_.expected_docs) return {};
  auto it = run_.expected_docs->find(key);
  if (it == run_.expected_docs->end()) return {};
  if (it->second == doc) return {};
  auto diffs = json_differences(it->second, doc, 5);
  std::string what;
  for (const auto& d : diffs) what += (what.empty() ? "" : "; ") + d;
  auto at = key.find('#');
  std::string where = at == std::string::npos ? "job" : "step " + key.substr(at + 1);
  return fail(
      "replay: the environment of " + where + " differs from the record (recorded -> now): " + what,
      ErrorKind::kIntegrity);
}

ImagePin JobExecution::replay_pin(const std::string& image) const {
  auto it = run_.image_pins.find(image);
  if (it == run_.image_pins.end()) return pin_image(run_.lock, image);
  // By digest: from the local store when it is there, else pulled from the
  // reference's registry.
  ImagePin pin{it->second, it->second};
  if (auto ref = registry::Reference::parse(image)) pin.lookup = ref->name() + "@" + it->second;
  return pin;
}

bool JobExecution::is_until_step(const pipeline::Step& step, size_t i, const StepReport& sr) const {
  const std::string& u = run_.until_step;
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
