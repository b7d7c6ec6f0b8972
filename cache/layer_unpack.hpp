#pragma once
// Unpacking untrusted layer tarballs (gzip, zstd or uncompressed, detected from
// the bytes) in one streaming pass that also computes the diff id, and the
// per-state-dir cache of unpacked layers: <state>/layers/<diffid-hex>/.
#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>

#include "cache/blob_store.hpp"
#include "common/digest.hpp"
#include "common/error.hpp"

namespace lockstep::cache {

// Pulls up to `len` bytes into `buf`; 0 means end of stream (and stays so on
// further calls).
using StreamReader = std::function<Result<size_t>(void* buf, size_t len)>;

struct UnpackOptions {
  // OCI whiteouts (.wh.NAME, .wh..wh..opq) become overlayfs whiteouts (0/0 char
  // devices) and opaque xattrs. Off: they are ordinary files (a plain rootfs).
  bool whiteouts = true;
  // Off: archive ownership is ignored (a user's rootfs tar, normalised later).
  bool keep_owner = true;
  // Names the input in every error: "layer sha256:...".
  std::string name = "layer";
};

struct UnpackResult {
  Digest diff_id;  // sha256 of the whole uncompressed stream
  uint64_t entries = 0;
  uint64_t skipped_nodes = 0;  // device nodes not permitted here
};

// Unpacks into `dest`, an existing directory the caller owns (its own metadata
// comes from a "./" entry, else 0755 root:root). Never creates or changes
// anything outside `dest`: ".." entries are refused, absolute paths taken
// relative to dest, symlinks resolved as if dest were "/", nothing written
// through a symlink, trusted.overlay.* xattrs from the archive dropped.
Result<UnpackResult> unpack_tar_stream(const StreamReader& in, const std::filesystem::path& dest,
                                       const UnpackOptions& opts);
Result<UnpackResult> unpack_tar_fd(int fd, const std::filesystem::path& dest,
                                   const UnpackOptions& opts);

// Returns <state>/layers/<diff_id hex>, unpacking it first (from `in`) when
// absent: into <state>/tmp, synced, renamed into place only when the stream's
// digest equals `diff_id`; otherwise an error naming the layer and both
// digests, and nothing is kept. Two processes preparing one layer at once
// serialise on <state>/layers/.lock-<hex>; both succeed, it is unpacked once.
Result<std::filesystem::path> ensure_layer(const std::filesystem::path& state_dir,
                                           const Digest& diff_id, const std::string& name,
                                           const std::function<Result<StreamReader>()>& open);

// One pass for a pull: every byte of `in` (the compressed layer as it
// arrives) is written to `blob` and, when the layer is not unpacked yet, also
// unpacked and diff-id verified as by ensure_layer(). The caller commits
// `blob` afterwards (which verifies the blob digest). When the layer exists
// already, `in` is only copied into `blob`.
Result<std::filesystem::path> ensure_layer_tee(const std::filesystem::path& state_dir,
                                               const Digest& diff_id, const std::string& name,
                                               const StreamReader& in, BlobWriter& blob);

// ensure_layer() for a blob that is in the store.
Result<std::filesystem::path> ensure_layer_from_blob(const std::filesystem::path& state_dir,
                                                     const BlobStore& blobs, const Digest& blob,
                                                     const Digest& diff_id);

std::filesystem::path layer_dir(const std::filesystem::path& state_dir, const Digest& diff_id);

}  // namespace lockstep::cache
