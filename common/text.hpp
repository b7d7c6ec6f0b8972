#pragma once
// Small text helpers shared by every layer.
#include <string>
#include <string_view>

namespace lockstep {

// `s` with ASCII letters lowercased; other bytes as they are.
inline std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

}  // namespace lockstep
