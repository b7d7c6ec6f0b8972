#pragma once
// What every fuzz target asserts besides "no crash, no sanitizer report":
// an error from a reader is a message a terminal can show and JSON can hold.
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "common/error.hpp"
#include "common/utf8.hpp"

namespace lockstep::fuzz {

// Aborts (a finding) when `cond` is false.
inline void require(bool cond, const char* what) {
  if (!cond) {
    std::fprintf(stderr, "fuzz property violated: %s\n", what);
    std::abort();
  }
}

// Every reader checks its input is UTF-8 before anything else, so nothing it
// says may hold bytes that are not.
inline void require_clean_error(const Error& e) {
  require(!e.message().empty(), "an error has a message");
  if (!is_valid_utf8(e.message()))
    std::fprintf(stderr, "the message: %s\n", printable(e.message()).c_str());
  require(is_valid_utf8(e.message()), "an error message is UTF-8");
}

}  // namespace lockstep::fuzz
