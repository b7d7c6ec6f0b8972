#pragma once
// What the executor does differently without root (docs/rootless.md): the
// containers join the process's user namespace (common/userns.hpp), cgroups
// come from a delegated cgroup v2 subtree or not at all, the root
// filesystem is an overlay mounted inside the user namespace or, where the
// kernel refuses that, a copy of the layers, and the egress network is
// routed through slirp4netns.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "executor/cgroup.hpp"
#include "executor/network.hpp"
#include "executor/spec.hpp"

namespace lockstep::executor {

// How rootless containers are made on this host, probed once per process.
struct RootlessHost {
  // "overlay": overlayfs mounted in the user namespace (Linux >= 5.11);
  // "copy": every container gets a copy of its layers (slower, uses disk).
  std::string rootfs;
  // Limits are enforced when the process runs in a delegated cgroup v2
  // subtree (systemd user session: `systemd-run --user --scope -p
  // Delegate=yes`, or a delegation by the administrator).
  bool limits_enforced = false;
  std::string limits_note;            // why not, one line
  std::filesystem::path cgroup_base;  // the delegated cgroup, when enforced
};

// The user namespace mapping of a rootless container (the user's, from
// common/userns.hpp), as a ContainerSpec takes it.
Result<UserNamespace> rootless_user_namespace();

// Probes the host (rootfs driver, delegation); cached.
Result<RootlessHost> rootless_host();

// The cgroup roots of a rootless process: the delegated subtree as a v2 root
// (the process moves itself into a leaf of it, lockstep/runner-<pid>, so that
// controllers can be enabled), or `none` set.
Result<CgroupRoots> rootless_cgroup_roots();

// ---- the egress network without root (rootless_network.cpp) ----

inline constexpr const char* kSlirp4netns = "/usr/bin/slirp4netns";
// slirp4netns's own network (the router's tap0, its gateway and its DNS
// forwarder): inside the pool of job networks, which no job ever reaches.
inline constexpr const char* kRootlessSlirpCidr = "10.213.255.0/24";

// The egress network of a run without root: a helper process, root of the
// user namespace, runs the fabric root runs on the host inside a network
// namespace of its own, whose way out is slirp4netns (the host's network,
// connections made as the user). Job namespaces, and sockets inside them,
// come from the helper. The host's own addresses are refused to jobs, as
// root's rules refuse them. Fails in one line without /usr/bin/slirp4netns.
Result<std::unique_ptr<EgressFabric>> rootless_egress_fabric(const EgressPolicy& policy);

// A netlink socket (`protocol`) of a namespace of rootless_egress_fabric()
// that has sent `request` to the kernel: only a process of the user
// namespace may ask the kernel of that namespace for anything (a dump of its
// connection tracking, say); the replies are read from the socket.
Result<UniqueFd> rootless_netlink_request(const NetworkNamespace& ns, int protocol,
                                          const std::string& request);

namespace detail {

// "copy" rootfs: the layers merged into `dest` (whiteouts and opaque
// directories applied), owners kept, as root of the user namespace.
Status copy_layers(const std::vector<std::filesystem::path>& layers,
                   const std::filesystem::path& dest);

}  // namespace detail
}  // namespace lockstep::executor
