#pragma once
// The container's root filesystem: an overlay of the image layers with a fresh
// upper dir, the standard pseudo filesystems, the user's bind mounts,
// pivot_root, and Docker's masked and read-only paths.
//
// build_rootfs_plan() runs in the parent and prepares every string;
// setup_rootfs() runs in the cloned child (new mount namespace) and does only
// system calls. All mounts live in the container's private mount namespace,
// so they vanish with its last process: the host mount table never sees them.
#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "executor/spec.hpp"

namespace lockstep::executor::detail {

struct RootfsStep {
  enum Kind { kMount, kBind, kMknod, kSymlink, kAppend };
  Kind kind = kMount;
  std::string target;  // relative to the new root, no leading '/': "dev/pts"
  // kMount: fs source; kBind: host path; kSymlink: link text; kAppend: the
  // text appended
  std::string source;
  std::string fstype;
  std::string data;
  unsigned long flags = 0;
  bool read_only = false;  // kBind: remount read-only afterwards
  bool target_dir = true;  // create the target as a directory (else a file)
  mode_t mode = 0;         // kMknod
  dev_t dev = 0;           // kMknod
  // kBind in a user namespace: index into RootfsPlan::trees; the runner
  // sends a detached copy of `source` that is moved onto the target (the
  // container's root could not bind-mount host paths itself).
  int tree = -1;
  // kAppend: what a missing target starts as (relative paths, the first
  // that exists).
  std::vector<std::string> seed;
};

// A detached mount the runner makes for a container in a user namespace
// (open_tree(2) + mount_setattr(2)) and sends to its init.
struct DetachedTree {
  std::string source;      // host path
  bool recursive = false;  // with every mount below it
  bool read_only = false;  // read-only, nosuid, nodev (recursively)
  bool idmapped = false;   // idmapped through the container's user namespace
};

struct RootfsPlan {
  // Non-empty: mount a tmpfs here first and create upper/, work/ and root/
  // in it (rootfs_dir is then <scratch_tmpfs>/root).
  std::string scratch_tmpfs;
  std::string rootfs_dir;    // host path the overlay is mounted on
  std::string overlay_data;  // "lowerdir=...,upperdir=...,workdir=..."
  std::vector<RootfsStep> steps;
  std::vector<std::string> masked_paths;    // absolute, after pivot_root
  std::vector<std::string> readonly_paths;  // absolute, after pivot_root

  // A user namespace (docs/containers.md). base_dir holds lower/<i>, upper,
  // work and root (a tmpfs is mounted on it first when scratch_tmpfs is
  // set); overlay_data then names them relative to it. trees[0..n_layers)
  // are the idmapped layers, lowest first.
  bool userns = false;
  bool userns_setgroups = false;
  std::string base_dir;
  size_t n_layers = 0;
  std::vector<std::string> layer_dirs;  // "lower/0", ...
  std::vector<DetachedTree> trees;
  // Rootless (executor/rootless.hpp): the init makes the trees itself from
  // the host paths (the runner may not), and the layers are not idmapped
  // (their files already belong to the mapped ids).
  bool make_trees = false;
  // The "copy" rootfs: trees[0] is a per-container copy of the layers,
  // mounted as the root instead of an overlay.
  bool copy_root = false;
};

struct RootfsDirs {
  std::filesystem::path rootfs, upper, work;
  std::filesystem::path scratch_tmpfs;  // empty: upper and work are on disk
  // A user namespace: the directory described at RootfsPlan::base_dir.
  std::filesystem::path userns_base;
  bool rootless = false;
  std::filesystem::path copy_root;  // rootless "copy" rootfs
};

// Fails on an empty layer list, a relative bind target or an option string
// too long for mount(2).
Result<RootfsPlan> build_rootfs_plan(const ContainerSpec& spec, const RootfsDirs& dirs);

// Child side. Returns 0, or errno with *step (a RootfsFailure) and *detail
// (index of the step or path) set.
enum RootfsFailure {
  kFailMakePrivate = 1,
  kFailScratch,
  kFailOverlay,
  kFailOpenRoot,
  kFailTarget,
  kFailStep,
  kFailRemountRo,
  kFailPivot,
  kFailDetachOldRoot,
  kFailMask,
  kFailReadonly,
  kFailUserns,    // taking the container's root credentials
  kFailMoveTree,  // detail: index into trees
  kFailMakeTree,  // rootless: detail: index into trees
};
// tree_fds: the detached mounts for plan.trees (user namespace), else null.
// In a user namespace the caller is still the host's root (unmapped); this
// switches it to the container's root after opening base_dir.
int setup_rootfs(const RootfsPlan& plan, int* tree_fds, int* step, int* detail) noexcept;

// Parent side: one line describing a child failure, e.g.
// "mount /dev/pts (devpts)".
std::string describe_rootfs_failure(const RootfsPlan& plan, int step, int detail);

}  // namespace lockstep::executor::detail
