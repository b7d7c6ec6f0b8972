#pragma once
// The egress network of one run (docs/network.md): the fabric (bridge, NAT,
// rules) and the egress services (DNS stub, proxy, connection log), made
// when the first egress job starts and removed with the run.
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cache/blob_store.hpp"
#include "common/error.hpp"
#include "egress/job_egress.hpp"
#include "egress/service.hpp"
#include "executor/network.hpp"
#include "pipeline/egress_allow.hpp"

namespace lockstep::runner {

// The policy of an allow-list (empty: every public address).
egress::Policy egress_policy(const std::vector<pipeline::EgressAllowEntry>& allow);

struct RunNetworkOptions {
  std::vector<pipeline::EgressAllowEntry> allow;
  std::filesystem::path state_dir;  // the content store for plain-HTTP bodies
  // URL -> sha256: lockstep.lock's fetches, or what a replayed run received.
  std::map<std::string, std::string> pins;
  bool refuse_unpinned = false;  // --frozen with egress.unpinned: refuse
  // egress.inspect: HTTPS recorded by URL and sha256 through a CA made for
  // this run (on its first egress job); `ca_files`: egress.ca, roots the
  // proxy trusts for origins besides the host's.
  bool inspect = false;
  std::vector<std::filesystem::path> ca_files;
  std::string run_id;  // names the CA
};

// Where a job finds the run's CA under inspection: the image's bundle with
// the CA appended (and the variables that point tools at it).
inline constexpr const char* kJobCaBundle = "/etc/ssl/certs/ca-certificates.crt";
// Where update-ca-certificates (Debian, Alpine) finds it again when a job
// rebuilds the bundle.
inline constexpr const char* kJobCaFile = "/usr/local/share/ca-certificates/lockstep-run-ca.crt";

class RunNetwork {
 public:
  explicit RunNetwork(RunNetworkOptions options);
  ~RunNetwork();

  // One job's namespace and egress services; `note` gets refusals as they
  // happen (for the job's log).
  struct Job {
    std::shared_ptr<const executor::NetworkNamespace> ns;
    std::unique_ptr<egress::JobEgress> egress;
    std::string ca_pem;  // the run's CA under inspection, else empty
  };
  // `local_names`: the job's services (reached inside the job, never out).
  Result<Job> attach(const std::string& name, std::function<void(const std::string&)> note,
                     std::vector<std::string> local_names = {});

  // The allow-list as written, for the environment hash.
  std::vector<std::string> allow_text() const;
  bool inspects() const { return o_.inspect; }

 private:
  RunNetworkOptions o_;
  egress::Policy policy_;
  cache::BlobStore store_;
  std::mutex mu_;
  bool uplink_noted_ = false;
  std::unique_ptr<executor::EgressFabric> fabric_;
  std::unique_ptr<egress::Service> service_;
  std::shared_ptr<egress::Inspection> inspection_;
};

}  // namespace lockstep::runner
