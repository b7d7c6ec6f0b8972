#pragma once
// Reading YAML around two faults of yaml-cpp 0.7, for every reader of a YAML
// file (workflows, action metadata, .lockstep.yml, lockstep.lock). Such a
// reader checks the text with check_yaml_text() (common/utf8.hpp), loads it,
// then checks the tree with find_scalar_not_utf8().
#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>
#include <vector>

namespace lockstep::pipeline {

// The documents of `text`, as YAML::LoadAll returns them, except that
// yaml-cpp 0.7's LoadAll never returns on a ',' outside a flow collection
// (each turn makes an empty document of it without moving on, so memory grows
// until the process dies): here that is a YAML::ParserException at the ','.
// Otherwise throws what LoadAll throws. Check the text with
// check_yaml_text() (common/utf8.hpp) first.
std::vector<YAML::Node> load_yaml_documents(const std::string& text);

// Where the first key or scalar under `root` holds text that is not UTF-8;
// nullopt when every one is. From UTF-8 text yaml-cpp 0.7 makes UTF-8
// strings, except for the escapes \N and \_ of double-quoted strings, which
// it writes as the single bytes 0x85 and 0xA0. Every reader of a YAML file
// checks its tree with this before a string can reach nlohmann::json, and
// refuses with kNotUtf8AfterEscapes.
std::optional<YAML::Mark> find_scalar_not_utf8(const YAML::Node& root);

inline constexpr const char* kNotUtf8AfterEscapes =
    "this string is not UTF-8 after its escapes: lockstep cannot read \\N and \\_ (write "
    "\\u0085 and \\u00A0)";

}  // namespace lockstep::pipeline
