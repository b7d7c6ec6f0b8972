#pragma once
// What the executor does differently without root (docs/rootless.md): the
// containers join the process's user namespace (common/userns.hpp), cgroups
// come from a delegated cgroup v2 subtree or not at all, and the root
// filesystem is an overlay mounted inside the user namespace or, where the
// kernel refuses that, a copy of the layers.
#include <filesystem>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "executor/cgroup.hpp"
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

namespace detail {

// "copy" rootfs: the layers merged into `dest` (whiteouts and opaque
// directories applied), owners kept, as root of the user namespace.
Status copy_layers(const std::vector<std::filesystem::path>& layers,
                   const std::filesystem::path& dest);

}  // namespace detail
}  // namespace lockstep::executor
