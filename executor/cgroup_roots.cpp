// Finding the cgroup hierarchies from /proc/self/mountinfo, and the byte
// formatting used in OOM messages.
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "common/fs.hpp"
#include "common/userns.hpp"
#include "executor/cgroup.hpp"
#include "executor/rootless.hpp"

namespace lockstep::executor {
namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_octal(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      const char a = s[i + 1], b = s[i + 2], c = s[i + 3];
      if (a >= '0' && a <= '7' && b >= '0' && b <= '7' && c >= '0' && c <= '7') {
        out.push_back(static_cast<char>((a - '0') * 64 + (b - '0') * 8 + (c - '0')));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t end = s.find(sep, start);
    if (end == std::string_view::npos) {
      out.emplace_back(s.substr(start));
      break;
    }
    out.emplace_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

bool lists_controllers(const std::filesystem::path& mount_point) {
  auto text = read_file(mount_point / "cgroup.controllers");
  if (!text) return false;
  std::istringstream in(*text);
  bool memory = false, pids = false;
  for (std::string word; in >> word;) {
    memory |= word == "memory";
    pids |= word == "pids";
  }
  return memory && pids;
}

constexpr const char* kV1Controllers[] = {"memory", "pids", "cpu", "cpuacct", "cpuset", "freezer"};
// Everything but cpuset is needed for every container; cpuset only when a
// container asks for one.
constexpr const char* kV1Required[] = {"memory", "pids", "cpu", "cpuacct", "freezer"};

}  // namespace

Result<CgroupRoots> CgroupRoots::from_mountinfo(std::string_view mountinfo) {
  CgroupRoots roots;
  for (const std::string& line : split(mountinfo, '\n')) {
    // "36 25 0:31 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory"
    const size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    const std::vector<std::string> head = split(std::string_view(line).substr(0, dash), ' ');
    const std::vector<std::string> tail = split(std::string_view(line).substr(dash + 3), ' ');
    if (head.size() < 5 || tail.size() < 3) continue;
    const std::filesystem::path mount_point = unescape_octal(head[4]);
    if (tail[0] == "cgroup2") {
      if (roots.unified.empty() && lists_controllers(mount_point)) roots.unified = mount_point;
    } else if (tail[0] == "cgroup") {
      for (const std::string& opt : split(tail[2], ',')) {
        for (const char* c : kV1Controllers) {
          if (opt == c && !roots.v1.count(c)) roots.v1[c] = mount_point;
        }
      }
    }
  }
  if (roots.is_v2()) {
    roots.v1.clear();  // controllers are either on v2 or v1; v2 wins
    return roots;
  }
  std::string missing;
  for (const char* c : kV1Required) {
    if (!roots.v1.count(c)) missing += missing.empty() ? c : std::string(", ") + c;
  }
  if (!missing.empty()) {
    return fail(
        "no usable cgroup hierarchy: no cgroup2 mount offers memory and pids, and "
        "cgroup v1 lacks " +
            missing,
        ErrorKind::kUnsupported);
  }
  return roots;
}

Result<CgroupRoots> CgroupRoots::detect() {
  if (running_rootless()) return rootless_cgroup_roots();
  static const Result<CgroupRoots> cached = []() -> Result<CgroupRoots> {
    auto text = read_file("/proc/self/mountinfo");
    if (!text) return fail(std::move(text.error()).context("detect cgroup hierarchies"));
    return from_mountinfo(*text);
  }();
  return cached;
}

std::string format_bytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  size_t unit = 0;
  uint64_t whole = bytes;
  while (whole >= 1024 && unit + 1 < std::size(kUnits)) {
    whole /= 1024;
    ++unit;
  }
  const uint64_t scale = uint64_t{1} << (10 * unit);
  if (bytes % scale == 0) return std::to_string(bytes / scale) + " " + kUnits[unit];
  // One decimal, rounded to nearest; 1023.96 KiB rounds to "1024.0 KiB", not
  // worth a special case.
  const uint64_t tenths = (bytes / scale) * 10 + ((bytes % scale) * 10 + scale / 2) / scale;
  return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + " " + kUnits[unit];
}

}  // namespace lockstep::executor
