#pragma once
// One job's egress services, listening inside its network namespace at
// 127.0.0.53: a DNS stub (port 53) forwarding to the host's resolvers, and
// an HTTP(S) proxy (port 3128) that connects from the host; plus the log of
// every connection the job made itself (connection tracking of its
// namespace). Everything is recorded; finish() returns the record
// (docs/network.md, "The fetch record"). Boost.Asio stays in the .cpp files.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cache/blob_store.hpp"
#include "common/error.hpp"
#include "common/json.hpp"
#include "egress/policy.hpp"
#include "egress/tls_inspect.hpp"
#include "executor/network.hpp"

namespace lockstep::egress {

class Service;  // service.hpp

struct JobEgressOptions {
  std::string name;  // the job, for messages
  std::shared_ptr<const executor::NetworkNamespace> ns;
  executor::EgressFabric* fabric = nullptr;  // for host names of the allow-list
  Policy policy;
  // Called (from a service thread) with one line for the job's log: a
  // refused connection or lookup, as it happens.
  std::function<void(const std::string&)> note;
  // Where plain-HTTP bodies are kept (by sha256) and pinned ones served
  // from; null: nothing is kept.
  const cache::BlobStore* store = nullptr;
  // URL -> "sha256:..." (lockstep.lock fetches, or a replayed record's):
  // served from the store, fetched and checked when not there yet; bytes
  // that do not match are refused.
  std::map<std::string, std::string> pins;
  // Plain-HTTP downloads the pins do not name: refused (403) instead of
  // recorded.
  bool refuse_unpinned = false;
  // Names that are the job's own (its services, as /etc/hosts has them):
  // requests for these, for localhost and for loopback addresses are made
  // inside the job's namespace, as if there were no proxy (tools that ignore
  // NO_PROXY still reach their services). They are not fetches.
  std::vector<std::string> local_names;
  // HTTPS inspection (egress.inspect): CONNECT tunnels are opened with this
  // run's CA and each request in them recorded like a plain-HTTP fetch
  // (docs/network.md, "Inspecting HTTPS"). Null: tunnels are relayed as
  // bytes.
  std::shared_ptr<Inspection> inspection;
  // Without root only a process of the job's user namespace may send
  // requests to the kernel of its network namespace: this sends `request`
  // (NETLINK_NETFILTER) from there and returns the socket to read the
  // replies from (executor::rootless_netlink_request). Unset: the
  // connection log's own socket sends it.
  std::function<Result<UniqueFd>(const std::string& request)> netlink_request;
};

class JobEgress {
 public:
  virtual ~JobEgress() = default;
  // The variables a job gets so that tools use the proxy.
  virtual std::map<std::string, std::string> env() const = 0;
  // The same for clients that cannot trust the run's CA (a Dockerfile's RUN
  // steps): under inspection a port (3129) whose tunnels are relayed as
  // bytes, as without it; else env().
  virtual std::map<std::string, std::string> opaque_env() const = 0;
  // /etc/resolv.conf for the job.
  virtual std::string resolv_conf() const = 0;
  // Stops listening, reads the final byte counts and returns the record:
  // {"dns": [...], "connections": [...], "fetches": [...]}, plus
  // "violations" (one line each: a download that did not match its pin, an
  // unpinned one refused) when there were any.
  virtual Json finish() = 0;
};

Result<std::unique_ptr<JobEgress>> start_job_egress(Service& service, JobEgressOptions options);

}  // namespace lockstep::egress
