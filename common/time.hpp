#pragma once
// Time as records, logs and the mirror's log lines write it.
#include <chrono>
#include <cstdint>
#include <string>

namespace lockstep {

// UTC with milliseconds, RFC 3339: "2026-12-07T17:25:53.923Z".
std::string rfc3339_ms(std::chrono::system_clock::time_point t);

// Milliseconds since the Unix epoch, now (the wall clock).
int64_t unix_ms();

}  // namespace lockstep
