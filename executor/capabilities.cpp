// Capability names, resolution of cap_add/cap_drop, and the child-side apply
// with raw syscalls (no libcap: nothing here may allocate after fork).
#include "executor/capabilities.hpp"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>

namespace lockstep::executor {
namespace {

// Index = capability number (linux/capability.h), without the CAP_ prefix.
constexpr const char* kNames[kLastKnownCap + 1] = {
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
};
static_assert(CAP_CHECKPOINT_RESTORE == kLastKnownCap && CAP_NET_RAW == 13 && CAP_SETFCAP == 31);

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool is_all(std::string_view name) {
  return upper(name) == "ALL" || upper(name) == "CAP_ALL";
}

}  // namespace

std::vector<std::string> CapSet::names() const {
  std::vector<std::string> out;
  for (int c = 0; c < 64; ++c) {
    if (has(c)) out.push_back(capability_name(c));
  }
  return out;
}

CapSet default_capabilities() {
  CapSet s;
  for (int c : {CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID, CAP_KILL, CAP_NET_BIND_SERVICE,
                CAP_SETFCAP, CAP_SETGID, CAP_SETPCAP, CAP_SETUID, CAP_SYS_CHROOT}) {
    s.add(c);
  }
  return s;
}

CapSet all_capabilities() {
  CapSet s;
  for (int c = 0; c <= kLastKnownCap; ++c) s.add(c);
  return s;
}

Result<int> capability_from_name(std::string_view name) {
  std::string n = upper(name);
  if (n.rfind("CAP_", 0) == 0) n.erase(0, 4);
  for (int c = 0; c <= kLastKnownCap; ++c) {
    if (n == kNames[c]) return c;
  }
  return fail("unknown capability '" + std::string(name) + "'", ErrorKind::kUsage);
}

std::string capability_name(int cap) {
  if (cap >= 0 && cap <= kLastKnownCap) return std::string("CAP_") + kNames[cap];
  return "CAP_" + std::to_string(cap);
}

Result<CapSet> resolve_capabilities(const std::vector<std::string>& add,
                                    const std::vector<std::string>& drop) {
  CapSet adds, drops;
  bool add_all = false, drop_all = false;
  for (const auto& [names, set, all, what] : {std::tuple(&add, &adds, &add_all, "cap_add"),
                                              std::tuple(&drop, &drops, &drop_all, "cap_drop")}) {
    for (const std::string& name : *names) {
      if (is_all(name)) {
        *all = true;
        continue;
      }
      auto cap = capability_from_name(name);
      if (!cap)
        return fail(std::move(cap.error()).context(std::string(what)).set_kind(ErrorKind::kUsage));
      set->add(*cap);
    }
  }
  CapSet result = drop_all ? CapSet{} : default_capabilities();
  result.bits &= ~drops.bits;
  if (add_all) result.bits = all_capabilities().bits & ~drops.bits;
  result.bits |= adds.bits;
  return result;
}

int apply_capabilities(const CapSet& caps, bool keep_for_uid_change) noexcept {
  // Bounding set first: dropping needs CAP_SETPCAP in the effective set,
  // which capset() below may take away.
  for (int c = 0; c < 64; ++c) {
    if (caps.has(c)) continue;
    if (::prctl(PR_CAPBSET_READ, c, 0, 0, 0) < 0) {
      if (errno == EINVAL) break;  // past the kernel's last capability
      return errno;
    }
    if (::prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0) return errno;
  }
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    return errno;
  }
  if (keep_for_uid_change && ::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return errno;

  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capget, &header, data) != 0) return errno;
  const uint64_t have = uint64_t{data[0].permitted} | (uint64_t{data[1].permitted} << 32);
  uint64_t want = caps.bits;
  if (keep_for_uid_change) want |= (uint64_t{1} << CAP_SETUID) | (uint64_t{1} << CAP_SETGID);
  want &= have;
  for (int i = 0; i < 2; ++i) {
    data[i].effective = data[i].permitted = static_cast<uint32_t>(want >> (32 * i));
    data[i].inheritable = 0;
  }
  if (::syscall(SYS_capset, &header, data) != 0) return errno;
  return 0;
}

int set_no_new_privs() noexcept {
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 ? 0 : errno;
}

}  // namespace lockstep::executor
