#pragma once
// UTF-8 at lockstep's edges.
//
// nlohmann::json holds strings as bytes but refuses to write a string that is
// not UTF-8 (dump() throws type_error 316), and a byte that is not UTF-8 in a
// message garbles a terminal. So every text lockstep did not write itself is
// dealt with where it comes in, one of two ways:
//
// - Documents a person writes or a program hands over as text (workflows,
//   `.lockstep.yml`, `lockstep.lock`, action metadata, records, the mirror's
//   configuration, HTTP request targets) are checked with check_utf8() (YAML:
//   check_yaml_text()) before they are parsed, and refused with one located
//   line:
//     ci.yml:7:5: invalid UTF-8 (byte 0xC1)
// - Bytes that must pass through (a step's output lines, the values a step
//   writes to $GITHUB_OUTPUT and $GITHUB_ENV, file names from a job's
//   workspace) are kept as bytes where they are stored as bytes (log files)
//   and go through to_valid_utf8() where they become text (step outputs, env,
//   annotations, JSON documents), as GitHub's runner decodes them.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace lockstep {

// Offset of the first byte of the first ill-formed sequence in `text`, or
// nullopt when all of it is well-formed UTF-8 (RFC 3629: no overlong forms,
// no surrogates, nothing above U+10FFFF). NUL and other control characters are
// well-formed; a reader that refuses them does so itself.
std::optional<size_t> find_invalid_utf8(std::string_view text);

inline bool is_valid_utf8(std::string_view text) {
  return !find_invalid_utf8(text).has_value();
}

// 1-based line and column of byte `offset` in `text`. A line ends at LF;
// columns count bytes, as yaml-cpp's marks (and so every other located
// message of lockstep's readers) do. An offset past the end is placed just
// after the last byte.
struct TextPosition {
  int line = 1;
  int column = 1;
};
TextPosition text_position(std::string_view text, size_t offset);

// Ok when `text` is well-formed UTF-8. Otherwise an error of kind `kind` whose
// message is one line naming `name` (a path as the user gave it, or what the
// text is: "request target"), where, and the byte:
//   "ci.yml:7:5: invalid UTF-8 (byte 0xC1)"
//   "a.json:1:1: invalid UTF-8 (byte 0xFF; the file looks like UTF-16)"
// Call it on the whole input before parsing it; the message never contains
// the invalid bytes themselves.
Status check_utf8(std::string_view text, std::string_view name, ErrorKind kind);

// check_utf8(), and then what YAML 1.2 does not allow in a stream (its
// c-printable set): control characters but TAB, LF, CR and NEL, and the
// noncharacters U+FFFE and U+FFFF. Every reader of a YAML file calls this
// instead of check_utf8(): yaml-cpp takes text with a NUL among its first
// four bytes for UTF-16 or UTF-32 and decodes it so, which turns UTF-8 into
// text that is not.
//   "ci.yml:1:2: control character U+0000 is not allowed in YAML"
Status check_yaml_text(std::string_view text, std::string_view name, ErrorKind kind);

// The longest prefix of `text` of at most `max_bytes` bytes that does not
// end inside a UTF-8 sequence: for messages that quote the start of a value.
std::string_view utf8_prefix(std::string_view text, size_t max_bytes);

// `text` made fit for a one-line message: ill-formed sequences replaced as by
// to_valid_utf8(), and control characters written as escapes ("\n", "\t",
// "\x1B", "\u009B"), so that a value quoted in a message can neither break
// the line nor drive the terminal. Readers pass their messages through it.
std::string printable(std::string_view text);

// `text` with every ill-formed sequence replaced by U+FFFD, one replacement
// per maximal subpart (the Unicode Standard's recommended practice, which
// nlohmann::json's error_handler_t::replace and browsers follow too).
// Well-formed text comes back unchanged.
std::string to_valid_utf8(std::string_view text);

}  // namespace lockstep
