#pragma once
// Canonical JSON: sorted keys (nlohmann::json's default object is a std::map),
// no whitespace, UTF-8 kept as is. Hashes are computed over this form, so its
// output must never depend on insertion order, locale or platform.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.hpp"

namespace lockstep {

using Json = nlohmann::json;

// Refuses floating-point numbers anywhere in the document: their text form is
// not canonical across implementations. Refuses a string that is not UTF-8
// (an error, never an exception).
Result<std::string> canonical_json(const Json& doc);

// Human-facing, stable form: sorted keys, two-space indent, trailing newline.
// Bytes that are not UTF-8 are written as U+FFFD (see common/utf8.hpp).
std::string pretty_json(const Json& doc);

// Refuses, besides malformed text, text nested deeper than kMaxJsonDepth.
Result<Json> parse_json(std::string_view text, std::string_view what);

// Arrays and objects nested deeper than this are refused by parse_json (and
// by the other readers of outside JSON): nlohmann parses them without
// recursion, but copying, comparing and writing a document recurse, and a
// deep enough one would exhaust the stack.
inline constexpr size_t kMaxJsonDepth = 512;
// True when the arrays and objects of `text` nest deeper than `limit`
// (brackets inside strings do not count). Does not check anything else.
bool json_nesting_exceeds(std::string_view text, size_t limit = kMaxJsonDepth);

}  // namespace lockstep

namespace lockstep {
// Where two documents differ, one line per leaf: `env.CFLAGS: "-O2" -> "-O3"`,
// `image.manifest_digest: "sha256:…" -> "sha256:…"`, `env.NEW: (absent) ->
// "1"`. Paths join object keys with '.', array indices as [i]. At most
// `max` lines (0: all), in key order.
std::vector<std::string> json_differences(const Json& a, const Json& b, size_t max = 0);
}  // namespace lockstep

namespace lockstep {
// Tolerant readers of documents written by another version: the member as a
// string / integer, or `fallback` when absent or of another type.
std::string json_string(const Json& obj, const char* key, const std::string& fallback = "");
int64_t json_int(const Json& obj, const char* key, int64_t fallback = 0);
}  // namespace lockstep
