#pragma once
// lockstep's Node.js runtime for JavaScript actions. As GitHub's runner
// mounts its own node into container jobs, lockstep mounts one into every
// job that uses actions, so a JavaScript action runs in any image - one
// without node, or with another libc (busybox, musl).
//
// The runtime is the host's node (Debian's `nodejs` package, /usr/bin/node)
// made independent of the image: the binary and every shared library it
// loads (as ldd lists them, the dynamic loader included) are copied into
// <state>/runtimes/node-<digest>/{bin,lib}, and the copied binary's ELF
// interpreter and rpath are pointed at the bundle's own lib/ as the job sees
// it (patchelf, Debian's `patchelf` package). Processes node starts
// (process.execPath, child_process) find the same bundle; the image's own
// programs keep the image's libraries.
//
// The bundle is built once per host binary (keyed by its path, inode, size
// and mtime) and named by its digest: sha256 over the sorted list of its
// files (path, mode, sha256 of the content). That digest is the runtime's
// identity in environment hashes and in lockstep.lock.
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>

#include "common/error.hpp"

namespace lockstep::runner {

// Where a job sees the bundle (read-only).
inline constexpr const char* kNodeMount = "/__e/node";

struct NodeRuntime {
  std::filesystem::path dir;  // host path of the bundle
  std::string digest;         // "sha256:<hex>" (see above)
  std::string version;        // "v20.20.2", from `node --version`
  int major = 0;              // 20
};

// The bundle for `node` (default /usr/bin/node), built when missing. Errors
// say what to install ("JavaScript actions need Node.js on the host:
// apt-get install nodejs").
Result<NodeRuntime> prepare_node_runtime(const std::filesystem::path& state_dir,
                                         const std::filesystem::path& node = "/usr/bin/node");

// The bundle with digest `digest` if the state dir holds it (a replay of a
// run exported from another host brings its runtime along); nullopt if not.
std::optional<NodeRuntime> find_node_runtime(const std::filesystem::path& state_dir,
                                             const std::string& digest);

// Where the bundle with `digest` lives under the state dir.
std::filesystem::path node_runtime_dir(const std::filesystem::path& state_dir,
                                       const std::string& digest);

// prepare_node_runtime() once per run, on first use, from any thread.
// A replay prefers the runtime its record names (`pinned`) when the state
// dir holds it.
class NodeRuntimeOnce {
 public:
  explicit NodeRuntimeOnce(std::filesystem::path state_dir, std::string pinned = "")
      : state_dir_(std::move(state_dir)), pinned_(std::move(pinned)) {}
  Result<NodeRuntime> get() {
    std::lock_guard lk(mu_);
    if (!result_) {
      if (auto r = pinned_.empty() ? std::nullopt : find_node_runtime(state_dir_, pinned_))
        result_ = *r;
      else
        result_ = prepare_node_runtime(state_dir_);
    }
    return *result_;
  }

 private:
  std::filesystem::path state_dir_;
  std::string pinned_;
  std::mutex mu_;
  std::optional<Result<NodeRuntime>> result_;
};

}  // namespace lockstep::runner
