// A job's network: the egress namespace its container and services join,
// the variables and /etc/resolv.conf that point tools at lockstep's DNS stub
// and proxy, and what the job fetched, for the record.
#include "common/userns.hpp"
#include "runner/engine/job_internal.hpp"

namespace lockstep::runner::detail {

Status JobExecution::attach_network(const fs::path& job_dir, executor::ContainerSpec& spec) {
  if (spec.network.mode != executor::NetworkMode::kEgress) return {};
  if (!run_.network) return fail("network egress is not available in this run");
  JobLog* log = log_.get();
  std::vector<std::string> services;
  for (const auto& svc : job_.services) services.push_back(svc.name);
  LS_TRY_ASSIGN(
      net_, run_.network->attach(
                inst_.display_name, [log](const std::string& line) { log->note(line); }, services));
  spec.network.ns = net_.ns;
  LS_TRY(write_file(job_dir / "resolv.conf", net_.egress->resolv_conf()));
  spec.mounts.push_back({job_dir / "resolv.conf", "/etc/resolv.conf", true});
  // Services are reached by name: never through the proxy.
  for (auto [k, v] : net_.egress->env()) {
    if (k == "NO_PROXY" || k == "no_proxy")
      for (const auto& svc : job_.services) v += "," + svc.name;
    spec.env.push_back(k + "=" + v);
  }
  add_run_ca(spec);
  return {};
}

// Under inspection: the run's CA in the container's bundle (its own overlay
// upper dir: the image is untouched) and the variables tools read a bundle
// from, all naming that bundle (the image's certificates plus the CA).
void JobExecution::add_run_ca(executor::ContainerSpec& spec) const {
  if (net_.ca_pem.empty()) return;
  // An image whose bundle has another name (RHEL and Fedora, openSUSE,
  // Alpine's cert.pem) gets the one named here made from it.
  spec.appends.push_back(
      {kJobCaBundle,
       "\n" + net_.ca_pem,
       {"/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/ca-bundle.pem", "/etc/ssl/cert.pem"}});
  spec.appends.push_back({kJobCaFile, net_.ca_pem, {}});
  for (const char* k : {"SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE",
                        "CURL_CA_BUNDLE", "GIT_SSL_CAINFO"})
    spec.env.push_back(std::string(k) + "=" + kJobCaBundle);
}

void JobExecution::join_job_network(executor::ContainerSpec& spec,
                                    const std::string& job_container_id, bool proxy_env) {
  spec.network = {executor::NetworkMode::kContainer, job_container_id, nullptr};
  // Without root the runner may not open the namespaces of the job's
  // container (its init is not dumpable, in the user namespace): the egress
  // namespace, or the host's, is joined directly; it is the same network.
  if (running_rootless() && net_.ns)
    spec.network = {executor::NetworkMode::kEgress, "", net_.ns};
  else if (running_rootless() && spec_copy_.network.mode == executor::NetworkMode::kHost)
    spec.network = {executor::NetworkMode::kHost, "", nullptr};
  if (!net_.egress) return;
  spec.mounts.push_back({job_dir_ / "resolv.conf", "/etc/resolv.conf", true});
  if (!proxy_env) return;
  for (const auto& e : spec_copy_.env)
    for (const char* k :
         {"HTTP_PROXY=", "HTTPS_PROXY=", "http_proxy=", "https_proxy=", "NO_PROXY=", "no_proxy="})
      if (e.rfind(k, 0) == 0) spec.env.push_back(e);
  add_run_ca(spec);
}

Status JobExecution::finish_network() {
  if (!net_.egress) return {};
  report_.egress = net_.egress->finish();
  net_ = {};
  // A download that broke its pin fails the job, whatever the tool did with
  // the proxy's refusal.
  const Json& v = report_.egress.contains("violations") ? report_.egress["violations"] : Json();
  if (v.is_array() && !v.empty()) return fail(v[0].get<std::string>());
  return {};
}

}  // namespace lockstep::runner::detail
