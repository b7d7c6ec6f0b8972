#pragma once
// Rootless lockstep: the user namespace an ordinary user's containers, layer
// unpacking and clean-ups run in (docs/rootless.md).
//
// One user namespace per lockstep process, made on first use: the user's own
// uid and gid are 0 inside, and ids 1..65535 are the user's subordinate ranges
// from /etc/subuid and /etc/subgid, written by Debian's setuid `newuidmap` and
// `newgidmap` (package uidmap). Without ranges only the user's own ids are
// mapped (0 inside), which needs no helper. Every container of the process
// joins this namespace, so the maps are written once (two execs of setuid
// helpers cost ~10 ms), and children of the process that must act on files
// owned by subordinate ids (chown at unpack time, removal of what a job wrote)
// join it as its root.
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace lockstep {

// One line of a uid_map or gid_map: ids [inside, inside + count) in the
// namespace are [outside, outside + count) on the host.
struct IdRange {
  uint32_t inside = 0;
  uint32_t outside = 0;
  uint32_t count = 0;
};

struct RootlessMapping {
  std::string user;  // login name
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<IdRange> uid_map;
  std::vector<IdRange> gid_map;
  // true: subordinate ranges are mapped (setgroups allowed inside). false:
  // only the user's own ids; `limitation` says what that costs.
  bool subordinate = false;
  std::string limitation;
};

// Container ids a rootless container maps: 0 (the user) and 1..65535 (the
// start of the subordinate range), the same ids `run --userns` maps as root.
inline constexpr uint32_t kRootlessIds = 65536;

// True when lockstep runs without root (effective uid not 0).
bool running_rootless();

// The first range of `name` (or of `uid` written as a number) in the text of
// /etc/subuid or /etc/subgid ("name:start:count" lines); count 0 when none.
IdRange find_subordinate_range(std::string_view text, std::string_view name, uint32_t id);

// What decides whether and how an ordinary user gets a user namespace.
struct RootlessHostFacts {
  // sysctl values as read ("" when the kernel has no such file).
  std::string unprivileged_userns_clone;  // kernel.unprivileged_userns_clone
  std::string max_user_namespaces;        // user.max_user_namespaces
  std::string apparmor_restrict_userns;   // kernel.apparmor_restrict_unprivileged_userns
  uid_t uid = 0;
  gid_t gid = 0;
  std::string user;            // login name, "" when the uid has none
  std::string subuid, subgid;  // texts of /etc/subuid and /etc/subgid
  bool newuidmap = false;      // /usr/bin/newuidmap is executable
  bool newgidmap = false;
};

// The mapping `h` allows, or the one-line error saying what to change.
Result<RootlessMapping> plan_rootless_mapping(const RootlessHostFacts& h);

// The mapping for this user, and whether the host lets an ordinary user make
// one: a one-line error when unprivileged user namespaces are disabled
// (kernel.unprivileged_userns_clone, user.max_user_namespaces, AppArmor's
// kernel.apparmor_restrict_unprivileged_userns), when only one of the two
// range files has the user, or when ranges exist and newuidmap/newgidmap are
// missing. Computed once per process.
Result<RootlessMapping> rootless_mapping();

// An fd of the process's user namespace with rootless_mapping() written,
// created on the first call (kept open for the life of the process).
Result<int> rootless_userns_fd();

// Runs `fn` in a forked child that joined the rootless user namespace as its
// root (uid and gid 0 inside, every capability there): it may chown files to
// mapped ids and remove files that mapped ids own. `fn` must not log or take
// locks other threads of the caller may hold. Waits for the child.
Status run_as_userns_root(const std::function<Status()>& fn, std::string_view what);

}  // namespace lockstep
