#pragma once
// lockstep.lock: what `lockstep lock` resolved a workflow's inputs to, and
// what `lockstep run` pins them to.
//
// The file is JSON written with two-space indentation and a fixed key order
// (schema first), images sorted by reference, sources by URL then ref, every
// list sorted: the same resolution gives the same bytes, and a change shows
// as a small diff. See docs/lockfile.md.
//
// Reading is strict: text that is not UTF-8 and a schema newer than
// kLockSchema ("written by a newer lockstep") are refused, unknown keys,
// missing keys, malformed digests and commits are errors, and every error is
// one line "file:line:col: message".
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace lockstep::pipeline {

inline constexpr std::string_view kLockSchemaPrefix = "lockstep.lock/v";
// v2 added `actions`, `node-runtime` and `fetches`; v1 files are still read.
inline constexpr int kLockSchemaVersion = 2;

struct LockedImage {
  std::string reference;  // as the workflow names it, after expressions ("alpine:3.19")
  // "registry" (resolved through its registry) or "local" (only in the
  // local image store, e.g. made by `lockstep image import`).
  std::string source = "registry";
  std::string index;  // "sha256:..." when the registry serves an index; else empty
  // Platform ("linux/amd64") -> image manifest digest.
  std::map<std::string, std::string> manifests;
  std::vector<std::string> jobs;  // display names of the job instances using it
};

struct LockedSource {
  // As written in `repository:`, or the workflow's repository root for the
  // workflow's own repository.
  std::string url;
  std::string ref;     // as written; "HEAD" for the default branch
  std::string commit;  // 40 hex
  bool workflow_repository = false;
  std::vector<std::string> jobs;
};

// An action or reusable workflow repository at a ref (`uses: owner/repo@v4`,
// also through composite actions and called workflows), resolved to a commit.
struct LockedAction {
  std::string repository;  // "owner/repo"
  std::string ref;         // as written ("v4")
  std::string commit;      // 40 hex
  std::string url;         // where it was resolved (informational)
  std::vector<std::string> jobs;
};

// An input whose value is only known at run time (it reads `needs`, `steps`,
// `env`, ...): it cannot be pinned, and `run --frozen` refuses it.
struct UnlockableInput {
  std::string kind;  // "image" or "checkout"
  std::string text;  // the expression as written
  std::string job;   // job id
  std::string reason;
};

// A download pinned by `lockstep lock --fetches RUN` (docs/network.md): the
// body lockstep's proxy recorded for a URL in that run.
struct LockedFetch {
  std::string url;
  std::string sha256;             // "sha256:<64 hex>"
  std::vector<std::string> jobs;  // display names of the jobs that fetched it
};

struct Lockfile {
  int schema = kLockSchemaVersion;
  std::string lockstep_version;
  std::string workflow_path;    // relative to the lock file's directory
  std::string workflow_digest;  // sha256 of the workflow file's bytes
  std::vector<LockedImage> images;
  std::vector<LockedSource> sources;
  std::vector<UnlockableInput> unlockable;
  std::vector<LockedAction> actions;
  // The digest of lockstep's Node.js runtime (runner/engine/node_runtime.hpp) when
  // any job uses actions; empty otherwise.
  std::string node_runtime;
  std::vector<LockedFetch> fetches;  // sorted by URL; not part of staleness

  const LockedImage* find_image(std::string_view reference) const;
  const LockedSource* find_source(std::string_view url, std::string_view ref) const;
  const LockedSource* workflow_source() const;
  const LockedAction* find_action(std::string_view repository, std::string_view ref) const;
  const LockedFetch* find_fetch(std::string_view url) const;
};

// "linux/amd64": the platform every lock resolves.
inline constexpr std::string_view kLockPlatform = "linux/amd64";

// Deterministic bytes (sorts a copy first); ends with a newline.
std::string serialize_lockfile(const Lockfile& lock);

// `file` names the lock in messages.
Result<Lockfile> parse_lockfile(std::string_view text, const std::string& file);

// What changed from `old` to `now`, one line each, in a stable order
// ("image 'alpine:3.19': linux/amd64 now sha256:... (locked sha256:...)").
// Empty when the lock is current. The commit of the workflow's own
// repository is not compared: committing the lock moves it.
std::vector<std::string> lock_differences(const Lockfile& old, const Lockfile& now);

}  // namespace lockstep::pipeline
