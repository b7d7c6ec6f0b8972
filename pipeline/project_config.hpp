#pragma once
// .lockstep.yml: per-project settings for `lockstep run` and `lockstep lock`.
//
//   runs-on:                 # runs-on label -> image (--platform wins)
//     ubuntu-latest: localhost/busybox:1.35
//   defaults:                # for jobs whose container.options do not set them
//     memory: 1g
//     cpus: 2
//     pids-limit: 512
//     network: none          # egress (the default), none or host
//   egress:
//     allow: [files.example.com, "*.pypi.org", "10.1.0.0/16:5432"]
//     inspect: true          # HTTPS by URL and sha256, through a per-run CA
//     ca: certs/corp-ca.pem  # (or a list) roots for origins besides the host's
//   mirror: http://127.0.0.1:5000
//   userns: true             # as run --userns
//   actions-url: https://git.example.com   # where OWNER/REPO@REF actions come from
//   actions:                 # per owner (wins over actions-url)
//     my-org: https://forge.internal
//   state-dir: /var/lib/lockstep   # LOCKSTEP_HOME and --state-dir win
//
// Errors are kWorkflow with file:line:col and the quoted line, as the
// workflow parser reports them; unknown keys get a did-you-mean. Text that
// is not UTF-8 is refused first, in one line (common/utf8.hpp). See
// docs/config.md.
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "pipeline/egress_allow.hpp"
#include "pipeline/options.hpp"

namespace lockstep::pipeline {

inline constexpr std::string_view kProjectConfigName = ".lockstep.yml";

struct ProjectConfig {
  std::string file;  // as given; empty when there is none
  std::map<std::string, std::string> platforms;
  // The defaults as parsed container options (only limits and network set),
  // and as docker-style text for display and for the runner.
  ContainerOptions defaults;
  std::string default_options;  // "--memory 1g --cpus 2 --network none"
  std::string mirror;
  bool userns = false;      // every job and service in its own user namespace
  std::string actions_url;  // base of OWNER/REPO (URL or directory)
  std::map<std::string, std::string> action_owners;  // owner -> base
  std::string state_dir;
  // egress.allow; empty: every public address (as if ["*"]).
  std::vector<EgressAllowEntry> egress_allow;
  // egress.unpinned: what `run --frozen` does with a plain-HTTP download
  // lockstep.lock does not pin: "record" (the default) or "refuse".
  std::string egress_unpinned = "record";
  // egress.inspect: the proxy opens HTTPS with a CA made for the run and
  // records each request (docs/network.md, "Inspecting HTTPS").
  bool egress_inspect = false;
  // egress.ca: PEM files of roots the proxy trusts for origins, besides the
  // host's trust store, as written (relative to the file's directory).
  std::vector<std::string> egress_ca;
};

Result<ProjectConfig> parse_project_config(std::string_view yaml, const std::string& file);
Result<ProjectConfig> load_project_config(const std::filesystem::path& path);

}  // namespace lockstep::pipeline
