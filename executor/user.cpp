#include "executor/user.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>

#include "common/fd.hpp"
#include "executor/child_util.hpp"

namespace lockstep::executor {
namespace {

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    size_t pos = s.find(sep, start);
    out.push_back(
        s.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start));
    if (pos == std::string_view::npos) return out;
    start = pos + 1;
  }
}

bool parse_id(std::string_view s, uint32_t* out) {
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

struct Entry {
  std::string_view name;
  uint32_t id = 0;
  uint32_t gid = 0;  // passwd: primary group
  std::string_view home;
  std::string_view members;  // group: comma-separated user names
};

// Parses "name:x:id:..." lines; malformed lines are skipped like libc does.
std::vector<Entry> parse_db(std::string_view text, bool passwd) {
  std::vector<Entry> out;
  for (std::string_view line : split(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    auto f = split(line, ':');
    Entry e;
    if (passwd) {
      if (f.size() < 7 || !parse_id(f[2], &e.id) || !parse_id(f[3], &e.gid)) continue;
      e.home = f[5];
    } else {
      if (f.size() < 4 || !parse_id(f[2], &e.id)) continue;
      e.members = f[3];
    }
    e.name = f[0];
    out.push_back(e);
  }
  return out;
}

Result<std::string> read_in_root(int root_fd, const char* rel) {
  UniqueFd fd(detail::openat2_resolve(root_fd, rel, O_RDONLY | O_CLOEXEC | O_NOCTTY,
                                      RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS));
  if (!fd) {
    if (errno == ENOENT) return std::string();
    return fail_errno(std::string("open /") + rel + " in the container");
  }
  std::string out;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno(std::string("read /") + rel + " in the container");
    }
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (64u << 20)) return fail(std::string("/") + rel + " is larger than 64 MiB");
  }
}

}  // namespace

Result<Credentials> resolve_user(std::string_view user, std::string_view passwd_file,
                                 std::string_view group_file, const std::vector<gid_t>& extra) {
  auto users = parse_db(passwd_file, true);
  auto groups = parse_db(group_file, false);
  std::string_view user_part = user, group_part;
  bool has_group = false;
  if (auto colon = user.find(':'); colon != std::string_view::npos) {
    user_part = user.substr(0, colon);
    group_part = user.substr(colon + 1);
    has_group = true;
  }
  if (user_part.empty()) user_part = "0";

  Credentials c;
  std::string_view name;
  uint32_t id = 0;
  const Entry* pw = nullptr;
  if (parse_id(user_part, &id)) {
    for (const auto& e : users)
      if (e.id == id) {
        pw = &e;
        break;
      }
    c.uid = id;
    c.gid = pw ? pw->gid : 0;
  } else {
    for (const auto& e : users)
      if (e.name == user_part) {
        pw = &e;
        break;
      }
    if (!pw)
      return fail("user '" + std::string(user_part) + "' not found in the image's /etc/passwd",
                  ErrorKind::kNotFound);
    c.uid = pw->id;
    c.gid = pw->gid;
  }
  if (pw) {
    name = pw->name;
    if (!pw->home.empty()) c.home = std::string(pw->home);
  }
  if (has_group) {
    if (group_part.empty())
      return fail("user '" + std::string(user) + "' has an empty group", ErrorKind::kUsage);
    if (!parse_id(group_part, &id)) {
      const Entry* gr = nullptr;
      for (const auto& e : groups)
        if (e.name == group_part) {
          gr = &e;
          break;
        }
      if (!gr)
        return fail("group '" + std::string(group_part) + "' not found in the image's /etc/group",
                    ErrorKind::kNotFound);
      id = gr->id;
    }
    c.gid = id;
  }
  if (!name.empty()) {
    for (const auto& g : groups)
      for (std::string_view member : split(g.members, ','))
        if (member == name) c.groups.push_back(g.id);
  }
  c.groups.insert(c.groups.end(), extra.begin(), extra.end());
  std::sort(c.groups.begin(), c.groups.end());
  c.groups.erase(std::unique(c.groups.begin(), c.groups.end()), c.groups.end());
  return c;
}

Result<Credentials> resolve_user_in_root(int root_fd, std::string_view user,
                                         const std::vector<gid_t>& extra) {
  LS_TRY_ASSIGN(std::string passwd, read_in_root(root_fd, "etc/passwd"));
  LS_TRY_ASSIGN(std::string group, read_in_root(root_fd, "etc/group"));
  return resolve_user(user, passwd, group, extra);
}

}  // namespace lockstep::executor
