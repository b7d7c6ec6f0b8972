#include "executor/confinement.hpp"

namespace lockstep::executor::detail {

struct Confinement {
  int placeholder = 0;
};

Result<std::shared_ptr<const Confinement>> prepare_confinement(const ContainerSpec&) {
  return std::make_shared<const Confinement>();
}

int apply_capabilities_in_child(const Confinement&) noexcept {
  return 0;
}
int apply_seccomp_in_child(const Confinement&) noexcept {
  return 0;
}

}  // namespace lockstep::executor::detail
