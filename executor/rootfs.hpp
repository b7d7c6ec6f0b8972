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
  enum Kind { kMount, kBind, kMknod, kSymlink };
  Kind kind = kMount;
  std::string target;  // relative to the new root, no leading '/': "dev/pts"
  std::string source;  // kMount: fs source; kBind: host path; kSymlink: link text
  std::string fstype;
  std::string data;
  unsigned long flags = 0;
  bool read_only = false;  // kBind: remount read-only afterwards
  bool target_dir = true;  // create the target as a directory (else a file)
  mode_t mode = 0;         // kMknod
  dev_t dev = 0;           // kMknod
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
};

struct RootfsDirs {
  std::filesystem::path rootfs, upper, work;
  std::filesystem::path scratch_tmpfs;  // empty: upper and work are on disk
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
};
int setup_rootfs(const RootfsPlan& plan, int* step, int* detail) noexcept;

// Parent side: one line describing a child failure, e.g.
// "mount /dev/pts (devpts)".
std::string describe_rootfs_failure(const RootfsPlan& plan, int step, int detail);

}  // namespace lockstep::executor::detail
