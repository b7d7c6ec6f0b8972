#pragma once
// seccomp filters for container processes. The parent compiles a profile
// (the built-in default, "unconfined", or a Docker seccomp JSON profile) into
// a classic BPF program with libseccomp; the forked child loads it right
// before exec without allocating.
#include <linux/filter.h>

#include <string>
#include <vector>

#include "common/digest.hpp"
#include "common/error.hpp"
#include "executor/capabilities.hpp"

namespace lockstep::executor {

struct SeccompProgram {
  // Empty: no filter ("unconfined").
  std::vector<sock_filter> filter;
  // sha256 of the profile as given (JSON text), of the built-in default's
  // canonical JSON, or of "unconfined": part of the environment hash.
  Digest profile_digest;

  bool unconfined() const { return filter.empty(); }
};

// profile: "" = the built-in default (Docker's default policy: an allow-list,
// EPERM for every other syscall, namespace-creating clone flags refused,
// personality limited to the harmless values, AF_VSOCK sockets refused;
// mount, unshare, setns, ptrace, bpf, keyctl, kexec_load, reboot,
// init_module, open_by_handle_at, ... allowed only with the capability that
// the kernel itself would demand). "unconfined" = no filter. Anything else is
// the text of a Docker seccomp JSON profile; errors name the part at fault:
// "seccomp profile: syscalls[2]: unknown action 'SCMP_ACT_FOO'".
//
// caps: the container's capabilities, for the profile's includes/excludes
// "caps" conditions (as Docker applies them). Without it: the default set.
Result<SeccompProgram> compile_seccomp(const std::string& profile);
Result<SeccompProgram> compile_seccomp(const std::string& profile, const CapSet& caps);

// In the child, right before exec: installs the filter (no-op when
// unconfined). Needs no_new_privs set, or CAP_SYS_ADMIN. Async-signal-safe,
// no allocation. Returns 0 or errno.
int load_seccomp(const SeccompProgram& program) noexcept;

// The built-in default profile as Docker seccomp JSON (canonical form), for
// users who want to start their own from it.
std::string default_seccomp_profile_json();

}  // namespace lockstep::executor
