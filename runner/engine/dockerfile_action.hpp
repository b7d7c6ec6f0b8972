#pragma once
// Docker actions whose image is built from their own Dockerfile (`runs.image:
// Dockerfile`), built with Debian's buildah into lockstep's image store.
//
// Every `FROM` image resolves as job images do (local store, registry,
// pull-through mirror, lockstep.lock, a replay's pins) and reaches buildah as
// an OCI archive, so the build never pulls by itself; RUN instructions get
// the job's network: none, host, or the job's own egress namespace with its
// DNS stub and recording proxy. The build is rootless-friendly
// (chroot isolation, vfs storage in a scratch dir that is removed) and its
// timestamps are fixed (--timestamp, from SOURCE_DATE_EPOCH). The image is
// tagged localhost/lockstep-actions/<name>:<key>, the key a digest of the
// build context (the action's commit, or the files of a local action), the
// Dockerfile, the base images' manifest digests, the network mode and
// buildah's version: a second job or run with the same inputs uses it
// without building.
#include <filesystem>
#include <functional>
#include <map>
#include <string>

#include "common/error.hpp"
#include "runner/engine/images.hpp"

namespace lockstep::runner {

struct DockerfileBuild {
  std::filesystem::path context;  // the action's directory
  std::string dockerfile;         // relative to `context` ("Dockerfile")
  std::string name;               // for the tag and messages ("octo/lint")
  std::string context_id;         // "commit:<40 hex>/<path>", or empty: hash the context's files
  std::string network = "none";   // "none", "host" or "egress"
  // egress: the job's network namespace (an open fd) and its proxy variables,
  // which RUN instructions get as build arguments (Docker predefines them).
  int netns_fd = -1;
  std::map<std::string, std::string> proxy_env;
  int64_t timestamp = 0;          // SOURCE_DATE_EPOCH of the run
  std::filesystem::path scratch;  // where buildah's storage and archives go
  // Resolves a FROM reference to an image in the store (the job's pins apply).
  std::function<Result<PreparedImage>(const std::string& reference)> resolve_base;
  std::function<void(const std::string&)> note;  // a line in the job's log
};

struct BuiltImage {
  std::string tag;                           // localhost/lockstep-actions/...
  std::string digest;                        // manifest digest
  std::map<std::string, std::string> bases;  // FROM reference -> manifest digest
  bool cached = false;
};

// Rewrites the FROM lines of a Dockerfile through `map` (reference ->
// replacement, e.g. "oci-archive:/x.tar"); stage names, `scratch` and
// `--platform=` are kept. Lists the external references in `bases`. Errors:
// a FROM with a build argument, or no FROM at all.
Result<std::string> rewrite_from_lines(const std::string& dockerfile,
                                       const std::map<std::string, std::string>& map,
                                       std::vector<std::string>* bases);

Result<BuiltImage> build_dockerfile_action(ImageResolver& images, const DockerfileBuild& req);

}  // namespace lockstep::runner
