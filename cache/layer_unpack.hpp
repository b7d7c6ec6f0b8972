#pragma once
// Unpacking untrusted layer tarballs (gzip, zstd or uncompressed, detected from
// the bytes) in one streaming pass that also computes the diff id, and the
// per-state-dir cache of unpacked layers:
//   <state>/layers/<diffid-hex>/        a layer that stands alone, shared by
//                                        every image that has it;
//   <state>/layers/chain-<chainid-hex>/  a layer that hard-links files of the
//                                        layers below (layer_lower.hpp): its
//                                        directory holds copies of them, so it
//                                        is keyed by its ChainID, which names
//                                        the whole stack of layers up to it.
// Whether a layer stands alone depends on its bytes only, so a diff id is
// always stored one way; the same layer on other parents is another chain.
#include <cstddef>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cache/blob_store.hpp"
#include "common/digest.hpp"
#include "common/error.hpp"
#include "common/userns.hpp"

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
  // The unpacked layers below this one, lowest first: a hard link whose
  // target this layer does not hold is resolved in them and its target copied
  // up (layer_lower.hpp). Empty: such a link is an error.
  std::vector<std::filesystem::path> lower_layers;
  // Without root (common/userns.hpp): opaque directories get
  // user.overlay.opaque (what overlayfs reads in a user namespace), and
  // owners are set as root of the user namespace, so that they are the
  // user's subordinate ids on disk. Device nodes are skipped.
  bool rootless = running_rootless();
};

struct UnpackResult {
  Digest diff_id;  // sha256 of the whole uncompressed stream
  uint64_t entries = 0;
  uint64_t skipped_nodes = 0;  // device nodes not permitted here
  // Hard-link targets copied up from lower_layers: when not 0, the directory
  // depends on them.
  uint64_t copied_up = 0;
  // Rootless: files whose owner is outside the user namespace's ids (they
  // stay the user's, root inside).
  uint64_t unmapped_owners = 0;
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

// Where a layer sits in its image.
struct LayerParents {
  std::vector<std::filesystem::path> dirs;  // the layers below, unpacked, lowest first
  Digest chain_id;                          // this layer's ChainID
};

// Returns the layer's directory (layer_dir() or, for a layer unpacked against
// `parents`, chain_layer_dir()), unpacking it first (from `in`) when absent:
// into <state>/tmp, synced, renamed into place only when the stream's digest
// equals `diff_id`; otherwise an error naming the layer and both digests, and
// nothing is kept. Two processes preparing one layer at once serialise on
// <state>/layers/.lock-<diffid-hex>; both succeed, it is unpacked once.
// Without `parents` (or with none below) a hard link to a file the layer does
// not hold is an error.
Result<std::filesystem::path> ensure_layer(const std::filesystem::path& state_dir,
                                           const Digest& diff_id, const std::string& name,
                                           const std::function<Result<StreamReader>()>& open,
                                           const LayerParents* parents = nullptr);

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
                                                     const Digest& diff_id,
                                                     const LayerParents* parents = nullptr);

// <state>/layers/<diff_id hex>: a layer that stands alone.
std::filesystem::path layer_dir(const std::filesystem::path& state_dir, const Digest& diff_id);
// <state>/layers/chain-<chain_id hex>: a layer unpacked against the layers below.
std::filesystem::path chain_layer_dir(const std::filesystem::path& state_dir,
                                      const Digest& chain_id);
// The layer's directory when it is unpacked (either kind), else nullopt.
std::optional<std::filesystem::path> unpacked_layer_dir(const std::filesystem::path& state_dir,
                                                        const Digest& diff_id,
                                                        const Digest& chain_id);
// The names under <state>/layers that a layer may have: "<diff hex>" and
// "chain-<chain hex>" (what gc keeps alive for it).
std::vector<std::string> layer_dir_names(const Digest& diff_id, const Digest& chain_id);

// ChainIDs as the OCI image spec defines them (config.md, "Layer ChainID"):
// the lowest layer's is its diff id, every next one is the sha256 of
// "<ChainID below> <diff id>" (both as "sha256:<hex>").
std::vector<Digest> chain_ids(const std::vector<Digest>& diff_ids);

}  // namespace lockstep::cache
