#pragma once
// A Docker seccomp profile as data: parsed from JSON, or the built-in default
// built in code. Internal to the executor (seccomp.cpp compiles it).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "common/json.hpp"

namespace lockstep::executor::seccomp {

struct Arg {
  unsigned index = 0;  // 0..5
  uint64_t value = 0;
  uint64_t value_two = 0;  // the masked value for SCMP_CMP_MASKED_EQ
  std::string op;          // "SCMP_CMP_EQ", ...
};

// Docker's includes/excludes filters of a rule.
struct Filter {
  std::vector<std::string> caps;    // "CAP_SYS_ADMIN"
  std::vector<std::string> arches;  // "amd64", "arm64", ... (Go names)
  std::string min_kernel;           // "4.8"
};

struct Rule {
  std::vector<std::string> names;
  std::string action;  // "SCMP_ACT_ALLOW", ...
  std::optional<int> errno_ret;
  std::vector<Arg> args;
  Filter includes;
  Filter excludes;
};

struct Profile {
  std::string default_action;
  std::optional<int> default_errno_ret;
  // "SCMP_ARCH_X86_64", ...; empty = the native architecture only.
  std::vector<std::string> architectures;
  // Docker's archMap: architecture -> sub-architectures. When present, the
  // entry of the native architecture decides (with its sub-architectures).
  std::vector<std::pair<std::string, std::vector<std::string>>> arch_map;
  std::vector<Rule> rules;
};

// Actions and comparison operators lockstep understands (Docker's names).
bool known_action(std::string_view action);
bool known_op(std::string_view op);

Result<Profile> parse_profile(std::string_view json_text);
Json to_json(const Profile& profile);

// The built-in default, modelled on Docker's default profile.
Profile default_profile();

}  // namespace lockstep::executor::seccomp
