// Host-wide state of the egress network: where it is kept, forwarding, and
// reaping what dead lockstep processes left.
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <thread>

#include "common/fs.hpp"
#include "common/json.hpp"
#include "common/lock_file.hpp"
#include "executor/netlink.hpp"
#include "executor/network.hpp"
#include "executor/network_internal.hpp"
#include "executor/network_rules.hpp"
#include "executor/state.hpp"

namespace lockstep::executor {
namespace detail {
namespace fs = std::filesystem;

std::string subnet4_of(int index) {
  return "10.213." + std::to_string(index) + ".0/24";
}

std::string subnet6_of(int index) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "fd6c:6f63:6b00:%x::/64", index);
  return buf;
}

std::string bridge_name(const std::string& key) {
  return "lsb-" + key;
}
std::string veth_prefix(const std::string& key) {
  return "lsv" + key;
}
std::string table_name(const std::string& key) {
  return "lockstep_" + key;
}

Result<fs::path> host_state_dir() {
  struct stat st {};
  if (::stat("/proc/thread-self/ns/net", &st) != 0)
    return fail_errno("stat /proc/thread-self/ns/net");
  fs::path dir = fs::path("/run/lockstep/net") / ("ns-" + std::to_string(st.st_ino));
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return fail(Error("create " + dir.string() + ": " + ec.message(), ec.value()));
  return dir;
}

namespace {
Json fabric_state_json(const FabricState& s) {
  Json j = {{"key", s.key},
            {"owner_pid", s.owner_pid},
            {"owner_start", s.owner_start},
            {"index", s.index}};
  if (s.keeper_pid > 0) {
    j["keeper_pid"] = s.keeper_pid;
    j["keeper_start"] = s.keeper_start;
    j["policy"] = s.policy;
  }
  return j;
}
}  // namespace

fs::path fabric_use_file(const fs::path& dir, const std::string& key) {
  return dir / (key + ".use");
}

Status rewrite_fabric_state(const fs::path& file, const FabricState& s) {
  return write_file_atomic(file, fabric_state_json(s).dump() + "\n");
}

Status write_fabric_state(const fs::path& file, const FabricState& s) {
  std::string text = fabric_state_json(s).dump() + "\n";
  UniqueFd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd) return fail_errno("create " + file.string());
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    return fail_errno("write " + file.string());
  return {};
}

Result<FabricState> read_fabric_state(const fs::path& file) {
  LS_TRY_ASSIGN(std::string text, read_file(file));
  LS_TRY_ASSIGN(Json j, parse_json(text, file.string()));
  try {
    FabricState s;
    s.key = j.at("key").get<std::string>();
    s.owner_pid = j.at("owner_pid").get<pid_t>();
    s.owner_start = j.at("owner_start").get<uint64_t>();
    s.index = j.at("index").get<int>();
    s.keeper_pid = j.value("keeper_pid", pid_t{0});
    s.keeper_start = j.value("keeper_start", uint64_t{0});
    s.policy = j.value("policy", "");
    return s;
  } catch (const std::exception& e) {
    return fail(file.string() + ": " + e.what(), ErrorKind::kIntegrity);
  }
}

Status remove_fabric_objects(const std::string& key) {
  Status result;
  auto keep = [&](Status s) {
    if (!s && result) result = std::move(s);
  };
  LS_TRY_ASSIGN(auto nl, Netlink::open());
  LS_TRY_ASSIGN(auto links, nl.links());
  // Veths first: deleting one end deletes its peer in the job's namespace.
  for (const auto& l : links)
    if (l.name.rfind(veth_prefix(key), 0) == 0) keep(nl.delete_link(l.name));
  for (const auto& l : links)
    if (l.name == bridge_name(key)) keep(nl.delete_link(l.name));
  auto tables = nft_tables();
  if (!tables) {
    keep(fail(tables.error()));
  } else if (std::find(tables->begin(), tables->end(), table_name(key)) != tables->end()) {
    keep(nft_run("delete table inet " + table_name(key), "remove table " + table_name(key)));
  }
  return result;
}

Result<std::vector<FabricState>> reap_and_list(const fs::path& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (struct dirent* e = ::readdir(d)) names.emplace_back(e->d_name);
    ::closedir(d);
  }
  std::sort(names.begin(), names.end());
  std::vector<FabricState> live;
  Status result;
  for (const auto& name : names) {
    if (!name.ends_with(".json") || name == "forwarding.json") continue;
    fs::path file = dir / name;
    auto st = read_fabric_state(file);
    if (st && (process_alive(st->owner_pid, st->owner_start) ||
               (st->keeper_pid > 0 && process_alive(st->keeper_pid, st->keeper_start)))) {
      live.push_back(*st);
      continue;
    }
    // Dead owner, or a file torn by a crash between create and write.
    std::string key = st ? st->key : name.substr(0, name.size() - 5);
    if (auto s = remove_fabric_objects(key); !s) {
      if (result) result = std::move(s);
      continue;  // keep the file: the next reaper tries again
    }
    ::unlink(file.c_str());
    ::unlink(fabric_use_file(dir, key).c_str());
  }
  if (live.empty()) LS_TRY(restore_forwarding(dir));
  if (!result) return fail(std::move(result.error()).context("reap stale egress networks"));
  return live;
}

Status write_sysctl(const std::string& path, const std::string& value) {
  std::string p = "/proc/sys/" + path;
  UniqueFd fd(::open(p.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return fail_errno("open " + p);
  if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size()))
    return fail_errno("write " + p);
  return {};
}

Result<std::string> read_sysctl(const std::string& path) {
  LS_TRY_ASSIGN(std::string v, read_file("/proc/sys/" + path));
  while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
  return v;
}

Status enable_forwarding(const fs::path& dir, bool ipv6) {
  fs::path file = dir / "forwarding.json";
  std::error_code ec;
  if (fs::exists(file, ec)) return {};  // another live fabric manages it
  Json changed = Json::object();
  LS_TRY_ASSIGN(std::string v4, read_sysctl("net/ipv4/ip_forward"));
  if (v4 != "1") changed["net/ipv4/ip_forward"] = v4;
  if (ipv6) {
    LS_TRY_ASSIGN(std::string v6, read_sysctl("net/ipv6/conf/all/forwarding"));
    if (v6 != "1") {
      changed["net/ipv6/conf/all/forwarding"] = v6;
      // A forwarding host ignores router advertisements unless accept_ra is
      // 2: without this the host would lose the routes it learned from them.
      for (const auto& e : fs::directory_iterator("/proc/sys/net/ipv6/conf", ec)) {
        std::string name = e.path().filename().string();
        if (name == "all" || name == "default" || name == "lo" || name.rfind("lsb-", 0) == 0 ||
            name.rfind("lsv", 0) == 0)
          continue;
        std::string key = "net/ipv6/conf/" + name + "/accept_ra";
        auto ra = read_sysctl(key);
        if (ra && *ra == "1") changed[key] = *ra;
      }
    }
  }
  bool guard = !changed.empty();
  Json doc = {{"changed", changed}, {"guard", guard}};
  LS_TRY(write_file_atomic(file, doc.dump() + "\n"));
  if (guard) LS_TRY(nft_run(guard_ruleset(), "add the forwarding guard"));
  for (const auto& [key, old] : changed.items()) {
    (void)old;
    LS_TRY(write_sysctl(key, key.ends_with("accept_ra") ? "2" : "1"));
  }
  return {};
}

Status restore_forwarding(const fs::path& dir) {
  fs::path file = dir / "forwarding.json";
  auto text = read_file(file);
  if (!text) return {};
  Status result;
  auto keep = [&](Status s) {
    if (!s && result) result = std::move(s);
  };
  if (auto doc = parse_json(*text, file.string()); doc && doc->is_object()) {
    // Forwarding off first, then accept_ra back.
    std::vector<std::pair<std::string, std::string>> items;
    for (const auto& [key, old] : (*doc)["changed"].items())
      if (old.is_string()) items.emplace_back(key, old.get<std::string>());
    std::stable_partition(items.begin(), items.end(),
                          [](const auto& kv) { return !kv.first.ends_with("accept_ra"); });
    for (const auto& [key, old] : items) {
      // An interface that is gone has nothing to restore.
      auto w = write_sysctl(key, old);
      if (!w && !(w.error().errnum() == ENOENT && key.ends_with("accept_ra"))) keep(std::move(w));
    }
    if ((*doc).value("guard", false)) {
      auto tables = nft_tables();
      if (tables && std::find(tables->begin(), tables->end(), kGuardTable) != tables->end())
        keep(nft_run(std::string("delete table inet ") + kGuardTable,
                     "remove the forwarding guard"));
    }
  }
  if (result) ::unlink(file.c_str());
  return result;
}

Status in_namespace(int netns_fd, const std::function<Status()>& fn, UniqueFd* created) {
  Status result;
  std::thread t([&] {
    if (netns_fd >= 0) {
      if (::setns(netns_fd, CLONE_NEWNET) != 0) {
        result = fail_errno("join a job's network namespace");
        return;
      }
    } else {
      if (::unshare(CLONE_NEWNET) != 0) {
        result = fail_errno("create a network namespace");
        return;
      }
      if (created) {
        *created = UniqueFd(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
        if (!*created) {
          result = fail_errno("open /proc/thread-self/ns/net");
          return;
        }
      }
    }
    result = fn();
  });
  t.join();
  return result;
}

namespace {
// The state dir of this network namespace's fabrics if one ever ran here
// (host_state_dir() without creating it).
std::optional<fs::path> existing_state_dir() {
  struct stat st {};
  if (::stat("/proc/thread-self/ns/net", &st) != 0) return std::nullopt;
  fs::path dir = fs::path("/run/lockstep/net") / ("ns-" + std::to_string(st.st_ino));
  std::error_code ec;
  if (!fs::exists(dir, ec)) return std::nullopt;
  return dir;
}
}  // namespace

}  // namespace detail

Status reap_stale_networks() {
  using namespace detail;
  // Nothing to reap where no fabric ever ran.
  auto found = existing_state_dir();
  if (!found) return {};
  const fs::path& dir = *found;
  LS_TRY_ASSIGN(auto lock, LockFile::acquire(dir / ".lock"));
  LS_TRY_ASSIGN(auto live, reap_and_list(dir));
  (void)live;
  return {};
}

Status release_kept_networks(pid_t keeper) {
  using namespace detail;
  auto found = existing_state_dir();
  if (!found) return {};
  const fs::path& dir = *found;
  LS_TRY_ASSIGN(auto lock, LockFile::acquire(dir / ".lock"));
  LS_TRY_ASSIGN(auto live, reap_and_list(dir));
  Status result;
  bool removed = false;
  for (const auto& f : live) {
    if (f.keeper_pid != keeper) continue;
    UniqueFd use(::open(fabric_use_file(dir, f.key).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (!use || ::flock(use.get(), LOCK_EX | LOCK_NB) != 0) continue;  // in use
    if (auto s = remove_fabric_objects(f.key); !s) {
      if (result) result = std::move(s);
      continue;
    }
    ::unlink((dir / (f.key + ".json")).c_str());
    ::unlink(fabric_use_file(dir, f.key).c_str());
    removed = true;
  }
  if (removed) {
    // Forwarding goes back once no fabric is left.
    LS_TRY_ASSIGN(auto rest, reap_and_list(dir));
    (void)rest;
  }
  if (!result) return fail(std::move(result.error()).context("remove kept egress networks"));
  return {};
}

Result<std::vector<std::string>> list_network_objects() {
  using namespace detail;
  std::vector<std::string> out;
  LS_TRY_ASSIGN(auto nl, Netlink::open());
  LS_TRY_ASSIGN(auto links, nl.links());
  for (const auto& l : links)
    if (l.name.rfind("lsb-", 0) == 0 || l.name.rfind("lsv", 0) == 0) out.push_back(l.name);
  LS_TRY_ASSIGN(auto tables, nft_tables());
  for (const auto& t : tables)
    if (t.rfind("lockstep", 0) == 0) out.push_back("table " + t);
  return out;
}

}  // namespace lockstep::executor
