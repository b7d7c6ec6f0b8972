#include "executor/state.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

#include "common/fd.hpp"
#include "common/fs.hpp"
#include "common/json.hpp"

namespace lockstep::executor::detail {
namespace fs = std::filesystem;

fs::path containers_dir(const fs::path& state_dir) {
  return state_dir / "containers";
}

Status write_state(const fs::path& file, const ContainerState& s, bool exclusive) {
  Json j = {{"id", s.id},
            {"owner_pid", s.owner_pid},
            {"owner_start", s.owner_start},
            {"init_pid", s.init_pid},
            {"init_start", s.init_start}};
  std::string text = j.dump() + "\n";
  int flags = O_WRONLY | O_CLOEXEC | (exclusive ? O_CREAT | O_EXCL : 0);
  UniqueFd fd(::open(file.c_str(), flags, 0644));
  if (!fd) return fail_errno((exclusive ? "create " : "open ") + file.string());
  if (::pwrite(fd.get(), text.data(), text.size(), 0) != static_cast<ssize_t>(text.size()))
    return fail_errno("write " + file.string());
  if (!exclusive && ::ftruncate(fd.get(), static_cast<off_t>(text.size())) != 0)
    return fail_errno("truncate " + file.string());
  return {};
}

Result<ContainerState> read_state(const fs::path& file) {
  LS_TRY_ASSIGN(std::string text, read_file(file));
  LS_TRY_ASSIGN(Json j, parse_json(text, file.string()));
  try {
    ContainerState s;
    s.id = j.at("id").get<std::string>();
    s.owner_pid = j.at("owner_pid").get<pid_t>();
    s.owner_start = j.at("owner_start").get<uint64_t>();
    s.init_pid = j.at("init_pid").get<pid_t>();
    s.init_start = j.at("init_start").get<uint64_t>();
    return s;
  } catch (const std::exception& e) {
    return fail(file.string() + ": " + e.what(), ErrorKind::kIntegrity);
  }
}

std::optional<uint64_t> process_start_time(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  char buf[1024];
  ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
  if (n <= 0) return std::nullopt;
  buf[n] = '\0';
  // The command name (field 2) may contain spaces and ')': fields after the
  // last ')' are fixed. starttime is field 22, the 20th after ')'.
  std::string_view s(buf, static_cast<size_t>(n));
  size_t close = s.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  s.remove_prefix(close + 1);
  int field = 2;
  size_t pos = 0;
  while (pos < s.size()) {
    while (pos < s.size() && s[pos] == ' ') ++pos;
    size_t end = s.find(' ', pos);
    if (end == std::string_view::npos) end = s.size();
    if (++field == 22)
      return std::strtoull(std::string(s.substr(pos, end - pos)).c_str(), nullptr, 10);
    pos = end;
  }
  return std::nullopt;
}

bool process_alive(pid_t pid, uint64_t start) {
  if (pid <= 0) return false;
  auto t = process_start_time(pid);
  return t && *t == start;
}

}  // namespace lockstep::executor::detail
