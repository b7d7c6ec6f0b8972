#pragma once
// Canonical JSON: sorted keys (nlohmann::json's default object is a std::map),
// no whitespace, UTF-8 kept as is. Hashes are computed over this form, so its
// output must never depend on insertion order, locale or platform.
#include <string>

#include <nlohmann/json.hpp>

#include "common/error.hpp"

namespace lockstep {

using Json = nlohmann::json;

// Refuses floating-point numbers anywhere in the document: their text form is
// not canonical across implementations.
Result<std::string> canonical_json(const Json& doc);

// Human-facing, stable form: sorted keys, two-space indent, trailing newline.
std::string pretty_json(const Json& doc);

Result<Json> parse_json(std::string_view text, std::string_view what);

}  // namespace lockstep
