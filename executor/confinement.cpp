#include "executor/confinement.hpp"

#include "executor/capabilities.hpp"
#include "executor/seccomp.hpp"

namespace lockstep::executor::detail {

struct Confinement {
  CapSet caps;
  SeccompProgram seccomp;
};

Result<std::shared_ptr<const Confinement>> prepare_confinement(const ContainerSpec& spec) {
  auto c = std::make_shared<Confinement>();
  auto caps = resolve_capabilities(spec.cap_add, spec.cap_drop);
  if (!caps) return fail(std::move(caps.error()).context("container " + spec.id));
  c->caps = *caps;
  auto prog = compile_seccomp(spec.seccomp_profile, c->caps);
  if (!prog) return fail(std::move(prog.error()).context("container " + spec.id));
  c->seccomp = std::move(*prog);
  return std::shared_ptr<const Confinement>(std::move(c));
}

// The uid change comes after this call (spawn.cpp), so CAP_SETUID/SETGID are
// kept until then; execve settles the final sets (empty for non-root users).
int apply_capabilities_in_child(const Confinement& c) noexcept {
  return apply_capabilities(c.caps, true);
}

int apply_seccomp_in_child(const Confinement& c) noexcept {
  return load_seccomp(c.seccomp);
}

}  // namespace lockstep::executor::detail
