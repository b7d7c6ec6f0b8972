#include "executor/spec.hpp"

namespace lockstep::executor {

std::string to_string(const Network& n) {
  switch (n.mode) {
    case NetworkMode::kNone:
      return "none";
    case NetworkMode::kHost:
      return "host";
    case NetworkMode::kContainer:
      return "container:" + n.container;
    case NetworkMode::kEgress:
      return "egress";
  }
  return "none";
}

}  // namespace lockstep::executor
