#pragma once
// Linux capabilities of container processes. The parent resolves the set
// (Podman's default, changed by cap_add/cap_drop); the forked child applies it
// right before exec with async-signal-safe, allocation-free calls.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace lockstep::executor {

// A set of capabilities as a bit mask (bit n = capability number n), the form
// /proc/<pid>/status prints as CapEff/CapBnd.
struct CapSet {
  uint64_t bits = 0;

  bool has(int cap) const { return cap >= 0 && cap < 64 && (bits >> cap) & 1; }
  void add(int cap) { bits |= uint64_t{1} << cap; }
  void remove(int cap) { bits &= ~(uint64_t{1} << cap); }
  // "CAP_CHOWN", ... in capability-number order (deterministic for hashing).
  std::vector<std::string> names() const;
  friend bool operator==(const CapSet&, const CapSet&) = default;
};

// Highest capability number lockstep knows by name (CAP_CHECKPOINT_RESTORE).
inline constexpr int kLastKnownCap = 40;

// Podman's default: Docker's minus NET_RAW, MKNOD and AUDIT_WRITE. CHOWN,
// DAC_OVERRIDE, FOWNER, FSETID, KILL, NET_BIND_SERVICE, SETFCAP, SETGID,
// SETPCAP, SETUID, SYS_CHROOT (mask 0x800405fb).
CapSet default_capabilities();

// Every capability lockstep knows by name.
CapSet all_capabilities();

// "NET_RAW", "cap_net_raw", "CAP_NET_RAW" -> 13. Unknown -> error naming it.
Result<int> capability_from_name(std::string_view name);
// 13 -> "CAP_NET_RAW"; unnamed numbers -> "CAP_<n>".
std::string capability_name(int cap);

// Docker's rules: start from the default set; drop "ALL" empties it, other
// drops remove; add "ALL" grants every capability except the explicit drops,
// other adds are granted (an add beats a drop of the same name). Names may
// carry CAP_ or not, in any case. An unknown name is an error naming it:
// "unknown capability 'FOO' in cap_add".
Result<CapSet> resolve_capabilities(const std::vector<std::string>& add,
                                    const std::vector<std::string>& drop);

// In the child, before exec (async-signal-safe, no allocation). Drops every
// other capability from the bounding set, clears the ambient set, empties the
// inheritable set (so file inheritable bits grant nothing, CVE-2022-24769)
// and sets effective = permitted = caps. Capabilities the calling process
// lacks itself (this host's bounding set has no CAP_SYS_RESOURCE) cannot be
// granted and are left out rather than failing.
//
// keep_for_uid_change: the caller will still call setgroups/setgid/setuid;
// CAP_SETUID and CAP_SETGID stay in effective/permitted (never in the
// bounding set) and PR_SET_KEEPCAPS is set so that the set survives the uid
// change. execve then recomputes: a non-root user ends with empty
// permitted/effective sets, root with exactly `caps`.
//
// Returns 0 or the errno of the failing call.
int apply_capabilities(const CapSet& caps, bool keep_for_uid_change) noexcept;

// prctl(PR_SET_NO_NEW_PRIVS): execve never grants privileges again (setuid
// bits and file capabilities are ignored). Returns 0 or errno.
int set_no_new_privs() noexcept;

}  // namespace lockstep::executor
