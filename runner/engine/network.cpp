#include "runner/engine/network.hpp"

#include <linux/netlink.h>

#include <cstdlib>

#include "common/userns.hpp"
#include "executor/rootless.hpp"

namespace lockstep::runner {
namespace {

// LOCKSTEP_NETWORK_KEEPER: the pid of `lockstep agent`, which runs each job
// in a process of its own and keeps the egress network between them
// (EgressFabric::create).
pid_t network_keeper() {
  const char* v = ::getenv("LOCKSTEP_NETWORK_KEEPER");
  if (!v || !*v) return 0;
  char* end = nullptr;
  long pid = std::strtol(v, &end, 10);
  return (*end == '\0' && pid > 0 && pid < (1L << 22)) ? static_cast<pid_t>(pid) : 0;
}

}  // namespace

egress::Policy egress_policy(const std::vector<pipeline::EgressAllowEntry>& allow) {
  using Kind = pipeline::EgressAllowEntry::Kind;
  egress::Policy p;
  p.net.any_public = allow.empty();
  for (const auto& e : allow) {
    p.written.push_back(e.text);
    switch (e.kind) {
      case Kind::kAnyPublic:
        p.net.any_public = true;
        break;
      case Kind::kCidr:
        p.net.cidrs.push_back({e.value, e.port});
        break;
      case Kind::kHost:
        p.hosts.push_back({e.value, false, e.port});
        break;
      case Kind::kDomain:
        p.hosts.push_back({e.value, true, e.port});
        break;
    }
  }
  return p;
}

RunNetwork::RunNetwork(RunNetworkOptions options)
    : o_(std::move(options)), policy_(egress_policy(o_.allow)), store_(o_.state_dir) {}

// Jobs' services end before the service threads, namespaces before the
// fabric. The CA's key goes last (it was only ever in memory).
RunNetwork::~RunNetwork() {
  service_.reset();
  fabric_.reset();
}

std::vector<std::string> RunNetwork::allow_text() const {
  return policy_.written;
}

Result<RunNetwork::Job> RunNetwork::attach(const std::string& name,
                                           std::function<void(const std::string&)> note,
                                           std::vector<std::string> local_names) {
  executor::EgressFabric* fabric;
  egress::Service* service;
  {
    std::lock_guard lk(mu_);
    if (!fabric_) {
      // Without root: the same fabric in a namespace of the user's, out
      // through slirp4netns (docs/rootless.md).
      LS_TRY_ASSIGN(fabric_, running_rootless()
                                 ? executor::rootless_egress_fabric(policy_.net)
                                 : executor::EgressFabric::create(policy_.net, network_keeper()));
    }
    if (!service_) {
      LS_TRY_ASSIGN(service_, egress::make_service());
    }
    if (o_.inspect && !inspection_) {
      LS_TRY_ASSIGN(inspection_,
                    egress::Inspection::create("lockstep run " + o_.run_id + " CA", o_.ca_files));
    }
    fabric = fabric_.get();
    service = service_.get();
    if (!fabric->has_uplink() && !uplink_noted_) {
      uplink_noted_ = true;
      if (note)
        note("network egress: this host has no IPv4 default route; jobs reach nothing outside it");
    }
  }
  Job j;
  LS_TRY_ASSIGN(auto ns, fabric->create_namespace(name));
  j.ns = ns;
  egress::JobEgressOptions o;
  o.name = name;
  o.ns = ns;
  o.fabric = fabric;
  o.policy = policy_;
  o.note = std::move(note);
  o.store = &store_;
  o.pins = o_.pins;
  o.refuse_unpinned = o_.refuse_unpinned;
  o.local_names = std::move(local_names);
  o.inspection = inspection_;
  if (inspection_) j.ca_pem = inspection_->ca_pem();
  if (running_rootless())
    o.netlink_request = [ns](const std::string& request) {
      return executor::rootless_netlink_request(*ns, NETLINK_NETFILTER, request);
    };
  LS_TRY_ASSIGN(j.egress, egress::start_job_egress(*service, std::move(o)));
  return j;
}

}  // namespace lockstep::runner
