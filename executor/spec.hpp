#pragma once
// The executor's input and output as data. The executor knows nothing of
// workflows: a ContainerSpec in, a live container out; processes run in it
// return a ProcessResult.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lockstep::executor {

// Bumped whenever a change to the executor could change what a job observes
// (mount layout, default capabilities, seccomp defaults, injected env).
// 2: the egress network (own namespace with NAT, /etc/resolv.conf and proxy
// variables written by lockstep).
inline constexpr int kProtocolVersion = 2;

struct BindMount {
  std::filesystem::path source;  // host path
  std::string target;            // absolute path inside the container
  bool read_only = true;
};

// Text appended to a file of the container's rootfs when it is made (the
// write lands in the container's own overlay upper dir, never in the image).
// Symlinks of the image are followed inside the rootfs; a missing file is
// created (0644, with its directories), holding first the content of the
// first of `seed` that exists (another distribution's name for the same
// file).
struct FileAppend {
  std::string path;  // absolute path inside the container
  std::string text;
  std::vector<std::string> seed;  // absolute paths inside the container
};

class NetworkNamespace;  // executor/network.hpp

// kNone: a namespace of its own with only loopback. kHost: the host's.
// kContainer: another live container's (services and sibling containers of
// a job). kEgress: a namespace made by an EgressFabric (executor/network.hpp),
// joined like kContainer; the spec holds it alive.
enum class NetworkMode { kNone, kHost, kContainer, kEgress };
struct Network {
  NetworkMode mode = NetworkMode::kNone;
  std::string container;                       // for kContainer: id of a live container to join
  std::shared_ptr<const NetworkNamespace> ns;  // for kEgress
};
std::string to_string(const Network& n);

// One line of /proc/<pid>/uid_map or gid_map: ids [container_id,
// container_id + size) inside are [host_id, host_id + size) on the host.
struct IdMapping {
  uint32_t container_id = 0;
  uint32_t host_id = 0;
  uint32_t size = 0;
};

// Running the container in its own user namespace (docs/containers.md). Root
// inside is an unprivileged id on the host: the image layers are mounted
// idmapped so that their files keep their owners as seen inside, the overlay
// is mounted from inside the namespace, and bind mounts show host ownership
// through the mapping (a host file owned by an unmapped id is "nobody" inside
// and cannot be written by the container's root).
struct UserNamespace {
  std::vector<IdMapping> uid_map;  // must map container id 0
  std::vector<IdMapping> gid_map;  // must map container id 0
  // false: "deny" in /proc/<pid>/setgroups; processes in the container run
  // without supplementary groups and cannot set any. true: "allow"; the
  // user's groups from the image are set as without a user namespace.
  bool allow_setgroups = false;
};

struct Limits {
  std::optional<uint64_t> memory_bytes;  // swap is off: memsw = memory
  std::optional<int64_t> pids;
  std::optional<double> cpus;  // quota = cpus * period
  uint64_t cpu_period_us = 100000;
  std::optional<std::string> cpuset;  // "0-1"
};

struct Rlimit {
  int resource;  // RLIMIT_*
  uint64_t soft;
  uint64_t hard;
};

struct ContainerSpec {
  std::string id;  // unique on the host: names the cgroup and the state dir
  // Read-only layer directories, lowest first; the rootfs is an overlay of
  // these with a fresh upper dir.
  std::vector<std::filesystem::path> layers;
  std::vector<BindMount> mounts;
  std::vector<FileAppend> appends;  // done before the bind mounts
  std::string hostname = "lockstep";
  std::string domainname;  // UTS domain name (`domainname`); empty: none
  Network network;
  Limits limits;
  std::string user;  // "", "uid", "uid:gid", "name", "name:group"
  std::vector<gid_t> supplementary_groups;
  std::vector<std::string> env;  // "K=V", the container's base environment
  std::string workdir = "/";
  mode_t umask = 022;
  std::vector<std::string> cap_add;  // "NET_RAW" or "CAP_NET_RAW"; "ALL"
  std::vector<std::string> cap_drop;
  // Docker seccomp JSON profile; empty = the built-in default; "unconfined".
  std::string seccomp_profile;
  std::vector<Rlimit> rlimits;
  std::optional<UserNamespace> user_namespace;  // empty: the host's
  // Where the overlay's upper dir lives. true: on a tmpfs that exists only
  // inside the container's mount namespace: nothing touches the disk and
  // nothing is left after a crash, but what the job writes outside its bind
  // mounts is memory and counts against its memory limit. false: on disk
  // under the state dir (overlay `volatile`, no syncs; ~5 ms per directory
  // removed on a busy disk).
  bool scratch_in_memory = true;
};

enum class Stream { kStdout, kStderr };

// Called once per complete line (without its newline; a final unterminated
// line is delivered at exit), in order per stream, from an executor thread.
using LineSink =
    std::function<void(Stream, std::string_view line, std::chrono::system_clock::time_point when)>;

struct ProcessSpec {
  std::vector<std::string> argv;
  std::vector<std::string> env;  // "K=V" added to / overriding the container env
  std::string workdir;           // empty: the container's
  std::string user;              // empty: the container's
  std::optional<std::chrono::milliseconds> timeout;
  // After a timeout: SIGTERM to the container's processes, SIGKILL to all of
  // them after this grace period.
  std::chrono::milliseconds timeout_grace{2000};
  bool tty = false;  // attach to the caller's terminal through a pty
};

enum class ExitKind { kExited, kSignaled, kOutOfMemory, kTimedOut, kCancelled };

struct ResourceUsage {
  uint64_t peak_memory_bytes = 0;
  std::chrono::nanoseconds cpu_time{0};
  bool oom_killed = false;
};

struct ProcessResult {
  ExitKind kind = ExitKind::kExited;
  int exit_code = 0;  // for kExited
  int signal = 0;     // for kSignaled
  std::chrono::nanoseconds duration{0};
  // Human text: "exit code 3", "killed: out of memory (limit 256 MiB)",
  // "timed out after 10s", "killed by signal 15 (Terminated)".
  std::string reason;
  // The network the process ran with: the container's mode as applied
  // ("none", "host", "container:<id>"; to_string(Network)).
  Network network;
  bool ok() const { return kind == ExitKind::kExited && exit_code == 0; }
};

}  // namespace lockstep::executor
