#pragma once

namespace lockstep::runner {
inline constexpr const char* kVersion = "0.1.0";
}
