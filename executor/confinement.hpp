#pragma once
// The one place where a container process's security settings are prepared
// (in the parent: seccomp compiled, capability set resolved) and applied (in
// the child, async-signal-safe). Keeps the spawn code independent of how
// seccomp and capabilities are implemented.
#include <memory>

#include "common/error.hpp"
#include "executor/spec.hpp"

namespace lockstep::executor::detail {

struct Confinement;  // opaque: compiled seccomp program + capability sets

// Compiles everything once per container; shared by every exec into it.
Result<std::shared_ptr<const Confinement>> prepare_confinement(const ContainerSpec& spec);

// Child side; each returns 0 or errno.
int apply_capabilities_in_child(
    const Confinement& c) noexcept;                         // bounding, perm, eff, inh, ambient
int apply_seccomp_in_child(const Confinement& c) noexcept;  // after no_new_privs

}  // namespace lockstep::executor::detail
