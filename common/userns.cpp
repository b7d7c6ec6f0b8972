#include "common/userns.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>

#include "common/command.hpp"
#include "common/fd.hpp"
#include "common/fs.hpp"

namespace lockstep {
namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// "0" or "1" of a sysctl file; empty when the kernel has no such file.
std::string sysctl(const char* path) {
  auto t = read_file(path);
  return t ? trim(*t) : std::string();
}

bool executable(const char* path) {
  return ::access(path, X_OK) == 0;
}

Error setup_error(const std::string& what) {
  return Error("rootless: " + what, 0, ErrorKind::kUnsupported);
}

// Why an ordinary user cannot make user namespaces here, or "".
std::string userns_disabled(const RootlessHostFacts& h) {
  if (h.unprivileged_userns_clone == "0")
    return "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone = 0); "
           "enable them with 'sysctl kernel.unprivileged_userns_clone=1' as root, or run "
           "lockstep as root";
  if (h.max_user_namespaces == "0")
    return "user namespaces are disabled (user.max_user_namespaces = 0); raise it with "
           "'sysctl user.max_user_namespaces=15000' as root, or run lockstep as root";
  if (h.apparmor_restrict_userns == "1")
    return "AppArmor restricts unprivileged user namespaces "
           "(kernel.apparmor_restrict_unprivileged_userns = 1); set it to 0 as root, or give "
           "lockstep an AppArmor profile that allows 'userns,'";
  return "";
}

RootlessHostFacts read_host_facts() {
  RootlessHostFacts h;
  h.unprivileged_userns_clone = sysctl("/proc/sys/kernel/unprivileged_userns_clone");
  h.max_user_namespaces = sysctl("/proc/sys/user/max_user_namespaces");
  h.apparmor_restrict_userns = sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
  h.uid = ::geteuid();
  h.gid = ::getegid();
  std::vector<char> buf(16384);
  struct passwd pw, *found = nullptr;
  if (::getpwuid_r(h.uid, &pw, buf.data(), buf.size(), &found) == 0 && found)
    h.user = found->pw_name;
  auto subuid = read_file("/etc/subuid");
  auto subgid = read_file("/etc/subgid");
  if (subuid) h.subuid = *subuid;
  if (subgid) h.subgid = *subgid;
  h.newuidmap = executable("/usr/bin/newuidmap");
  h.newgidmap = executable("/usr/bin/newgidmap");
  return h;
}

std::string map_args(const std::vector<IdRange>& m) {
  std::string t;
  for (const auto& r : m)
    t += std::to_string(r.inside) + " " + std::to_string(r.outside) + " " +
         std::to_string(r.count) + "\n";
  return t;
}

Status write_proc(pid_t pid, const char* name, const std::string& text) {
  std::string path = "/proc/" + std::to_string(pid) + "/" + name;
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return fail_errno("open " + path);
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    return fail_errno("write " + path);
  return {};
}

Status run_map_helper(const char* helper, pid_t pid, const std::vector<IdRange>& m) {
  std::vector<std::string> argv = {helper, std::to_string(pid)};
  for (const auto& r : m) {
    argv.push_back(std::to_string(r.inside));
    argv.push_back(std::to_string(r.outside));
    argv.push_back(std::to_string(r.count));
  }
  LS_TRY_ASSIGN(CommandOutput out, run_command(argv));
  if (out.exit_code != 0) {
    std::string err = trim(out.err);
    std::replace(err.begin(), err.end(), '\n', ' ');
    return fail(setup_error(std::string(helper) + " failed (exit " + std::to_string(out.exit_code) +
                            "): " + err));
  }
  return {};
}

// Writes the maps of `pid`, a child that unshared its user namespace.
Status write_maps(pid_t pid, const RootlessMapping& m) {
  if (!m.subordinate) {
    // An ordinary user may map its own ids once setgroups is denied.
    LS_TRY(write_proc(pid, "setgroups", "deny"));
    LS_TRY(write_proc(pid, "uid_map", map_args(m.uid_map)));
    return write_proc(pid, "gid_map", map_args(m.gid_map));
  }
  LS_TRY(run_map_helper("/usr/bin/newuidmap", pid, m.uid_map));
  return run_map_helper("/usr/bin/newgidmap", pid, m.gid_map);
}

Result<UniqueFd> make_userns(const RootlessMapping& m) {
  int up[2], down[2];
  if (::pipe2(up, O_CLOEXEC) != 0) return fail_errno("pipe");
  UniqueFd up_r(up[0]), up_w(up[1]);
  if (::pipe2(down, O_CLOEXEC) != 0) return fail_errno("pipe");
  UniqueFd down_r(down[0]), down_w(down[1]);
  pid_t pid = ::fork();
  if (pid < 0) return fail_errno("fork for the user namespace");
  if (pid == 0) {
    // Holds the namespace until the parent has an fd of it (or gives up):
    // EOF on `down` once the parent closed its end.
    up_r.reset();
    down_w.reset();
    int err = ::unshare(CLONE_NEWUSER) == 0 ? 0 : errno;
    ssize_t ignored = ::write(up_w.get(), &err, sizeof err);
    (void)ignored;
    char c;
    ignored = ::read(down_r.get(), &c, 1);
    ::_exit(0);
  }
  up_w.reset();
  down_r.reset();
  auto reap = [&] {
    down_w.reset();
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  };
  int err = EIO;
  if (::read(up_r.get(), &err, sizeof err) != sizeof err) err = EIO;
  if (err != 0) {
    reap();
    std::string why = userns_disabled(read_host_facts());
    if (!why.empty()) return fail(setup_error(why));
    return fail(setup_error(std::string("cannot create a user namespace: ") + std::strerror(err) +
                            (err == ENOSPC ? " (user.max_user_namespaces reached)" : "")));
  }
  Status s = write_maps(pid, m);
  UniqueFd ns;
  if (s) {
    std::string path = "/proc/" + std::to_string(pid) + "/ns/user";
    ns = UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns) s = fail_errno("open " + path);
  }
  reap();
  if (!s) return fail(std::move(s.error()));
  return ns;
}

}  // namespace

bool running_rootless() {
  return ::geteuid() != 0;
}

IdRange find_subordinate_range(std::string_view text, std::string_view name, uint32_t id) {
  const std::string id_text = std::to_string(id);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    size_t c1 = line.find(':');
    size_t c2 = c1 == std::string_view::npos ? c1 : line.find(':', c1 + 1);
    if (c2 == std::string_view::npos) continue;
    std::string_view who = line.substr(0, c1);
    if (who != id_text && (name.empty() || who != name)) continue;
    std::string start(line.substr(c1 + 1, c2 - c1 - 1));
    std::string count(line.substr(c2 + 1));
    char *e1 = nullptr, *e2 = nullptr;
    unsigned long s = std::strtoul(start.c_str(), &e1, 10);
    unsigned long n = std::strtoul(count.c_str(), &e2, 10);
    if (start.empty() || count.empty() || *e1 || *e2 || n == 0 || s > UINT32_MAX ||
        n > UINT32_MAX || s + n > UINT32_MAX)
      continue;
    return {0, static_cast<uint32_t>(s), static_cast<uint32_t>(n)};
  }
  return {};
}

Result<RootlessMapping> plan_rootless_mapping(const RootlessHostFacts& h) {
  if (std::string why = userns_disabled(h); !why.empty()) return fail(setup_error(why));
  RootlessMapping m;
  m.uid = h.uid;
  m.gid = h.gid;
  m.user = h.user;
  IdRange u = find_subordinate_range(h.subuid, m.user, m.uid);
  IdRange g = find_subordinate_range(h.subgid, m.user, m.gid);
  std::string who = m.user.empty() ? "uid " + std::to_string(m.uid) : "user " + m.user;
  if ((u.count == 0) != (g.count == 0))
    return fail(setup_error(
        who + " has subordinate ids in " +
        (u.count ? "/etc/subuid but not in /etc/subgid" : "/etc/subgid but not in /etc/subuid") +
        "; add both (usermod --add-subuids 100000-165535 --add-subgids "
        "100000-165535 " +
        (m.user.empty() ? std::string("USER") : m.user) + ")"));
  m.uid_map.push_back({0, m.uid, 1});
  m.gid_map.push_back({0, m.gid, 1});
  if (u.count == 0) {
    m.limitation = who +
                   " has no subordinate ids in /etc/subuid and /etc/subgid: only container id 0 "
                   "is mapped, so files of other owners in images belong to root inside and "
                   "jobs cannot switch to another user (add ranges with usermod "
                   "--add-subuids/--add-subgids)";
    return m;
  }
  if (!h.newuidmap || !h.newgidmap)
    return fail(setup_error(std::string(h.newuidmap ? "/usr/bin/newgidmap" : "/usr/bin/newuidmap") +
                            " is missing; install Debian's uidmap package (apt-get install "
                            "uidmap) to map the subordinate ids of " +
                            who));
  m.subordinate = true;
  m.uid_map.push_back({1, u.outside, std::min(u.count, kRootlessIds - 1)});
  m.gid_map.push_back({1, g.outside, std::min(g.count, kRootlessIds - 1)});
  return m;
}

Result<RootlessMapping> rootless_mapping() {
  static const Result<RootlessMapping> cached = plan_rootless_mapping(read_host_facts());
  return cached;
}

Result<int> rootless_userns_fd() {
  static std::mutex mu;
  static UniqueFd fd;
  static std::optional<Error> failed;
  std::lock_guard lock(mu);
  if (fd) return fd.get();
  if (failed) return fail(*failed);
  auto m = rootless_mapping();
  if (!m) {
    failed = m.error();
    return fail(m.error());
  }
  auto ns = make_userns(*m);
  if (!ns) {
    failed = ns.error();
    return fail(ns.error());
  }
  fd = std::move(*ns);
  return fd.get();
}

Status run_as_userns_root(const std::function<Status()>& fn, std::string_view what) {
  LS_TRY_ASSIGN(int ns, rootless_userns_fd());
  LS_TRY_ASSIGN(RootlessMapping m, rootless_mapping());
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return fail_errno("pipe");
  UniqueFd rd(p[0]), wr(p[1]);
  pid_t pid = ::fork();
  if (pid < 0) return fail_errno("fork to " + std::string(what));
  if (pid == 0) {
    rd.reset();
    // Raw system calls: glibc's set*id would wait for the parent's other
    // threads, which do not exist in this child.
    std::string msg;
    if (::setns(ns, CLONE_NEWUSER) != 0) {
      msg = std::string("join the user namespace: ") + std::strerror(errno);
    } else if (m.subordinate && ::syscall(SYS_setgroups, 0, nullptr) != 0) {
      msg = std::string("setgroups: ") + std::strerror(errno);
    } else if (::syscall(SYS_setresgid, 0, 0, 0) != 0 || ::syscall(SYS_setresuid, 0, 0, 0) != 0) {
      msg = std::string("become root of the user namespace: ") + std::strerror(errno);
    } else if (Status s = fn(); !s) {
      msg = s.error().message();
    }
    ssize_t ignored = ::write(wr.get(), msg.data(), msg.size());
    (void)ignored;
    ::_exit(msg.empty() ? 0 : 1);
  }
  wr.reset();
  std::string msg;
  char buf[512];
  for (;;) {
    ssize_t n = ::read(rd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    msg.append(buf, static_cast<size_t>(n));
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!msg.empty()) return fail(std::string(what) + " (in the user namespace): " + msg);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return fail(std::string(what) + " (in the user namespace): the helper process died");
  return {};
}

}  // namespace lockstep
