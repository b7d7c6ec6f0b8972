#pragma once
// Artifacts of a run (upload-artifact / download-artifact), stored under
// <state>/artifacts/:
//   files/<sha256 hex>          each file's bytes, content-addressed, read-only
//   runs/<run id>/<name>.json   the artifact's manifest, published with
//                               link() so that a name is taken exactly once
//
// An artifact's digest is the sha256 of its manifest lines
// "<relpath>\0<mode, octal>\0<file sha256 hex>\n" sorted by path: the same
// files with the same modes give the same digest on any host. Modes are
// normalised to 0644/0755 (umask must not matter).
//
// Paths follow upload-artifact: several patterns, globs and "!" exclusions,
// relative to the workspace, `~` for home; the stored relative paths start
// at the least common ancestor of the patterns' literal parts (a single
// file is stored by its name). Symlinks are followed (the target's bytes are
// stored); empty directories are not kept.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "cache/depcache_paths.hpp"
#include "common/digest.hpp"
#include "common/error.hpp"

namespace lockstep::cache {

enum class IfNoFilesFound { kWarn, kError, kIgnore };

struct ArtifactFile {
  std::string path;  // relative, '/'-separated
  uint32_t mode = 0644;
  uint64_t size = 0;
  Digest digest;
};

struct ArtifactInfo {
  std::string run_id;
  std::string name;
  std::string job;  // display name of the job that uploaded it
  Digest digest;    // over the sorted manifest (see above)
  uint64_t size = 0;
  std::vector<ArtifactFile> files;  // sorted by path
  int64_t created_ms = 0;
  int retention_days = 0;
  int64_t expires_ms = 0;  // 0: never
};

struct UploadRequest {
  std::string run_id;
  std::string job;
  std::string name = "artifact";
  std::vector<std::string> paths;
  JobDirs dirs;  // workspace: base of relative paths; home: `~`
  IfNoFilesFound if_no_files_found = IfNoFilesFound::kWarn;
  int retention_days = 90;  // 0: kept until removed
};

struct UploadResult {
  std::optional<ArtifactInfo> artifact;  // empty when no file matched (warn/ignore)
  std::string warning;                   // set for kWarn with no files
};

class ArtifactStore {
 public:
  explicit ArtifactStore(std::filesystem::path state_dir);

  // Errors: an invalid name; "artifact 'dist' was already uploaded by job
  // 'build (gcc)'" (kUsage); with kError and no files: "no files were found
  // for artifact 'dist' with the provided path: dist/**" (kNotFound).
  Result<UploadResult> upload(const UploadRequest& req) const;

  Result<ArtifactInfo> get(const std::string& run_id, const std::string& name) const;
  // Sorted by name; empty when the run uploaded nothing.
  Result<std::vector<ArtifactInfo>> list(const std::string& run_id) const;

  // Writes the artifact's files under `dest`, verifying every digest.
  // A missing artifact: "artifact 'x' not found in run 'r' (available:
  // a, b)" (kNotFound).
  Result<ArtifactInfo> download(const std::string& run_id, const std::string& name,
                                const std::filesystem::path& dest) const;
  // Every artifact of the run, each into dest/<name>/.
  Result<std::vector<ArtifactInfo>> download_all(const std::string& run_id,
                                                 const std::filesystem::path& dest) const;

  // Removes manifests whose retention ended before `now_ms`, then files no
  // manifest refers to. Returns the removed artifacts.
  Result<std::vector<ArtifactInfo>> prune(int64_t now_ms) const;

  // Sharing artifacts between hosts (the agents of `lockstep server`): an
  // artifact's manifest as JSON text; a file's bytes stored by digest (read
  // from `fd`, refused unless they hash to `d`); and a manifest made
  // elsewhere published under `run_id` once every file it names is here
  // with its digest and size and its artifact digest matches its files.
  // adopt() takes a name once, as upload() does.
  Result<std::string> manifest_json(const std::string& run_id, const std::string& name) const;
  Status put_file(const Digest& d, int fd) const;
  Result<ArtifactInfo> adopt(const std::string& run_id, std::string_view manifest) const;

  std::filesystem::path file_path(const Digest& d) const;
  const std::filesystem::path& root() const { return root_; }

 private:
  std::filesystem::path root_;  // <state>/artifacts
};

// The artifact-level digest of a list of files (any order).
Digest artifact_digest(std::vector<ArtifactFile> files);

}  // namespace lockstep::cache
