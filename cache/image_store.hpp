#pragma once
// Local OCI images: manifests, configs and layers live in the BlobStore; tags
// map names to manifest digests; layers are unpacked once into
// <state>/layers/<diffid-hex>/ (or, when a layer hard-links files of the
// layers below it, <state>/layers/chain-<chainid-hex>/, see layer_unpack.hpp)
// and shared read-only by every container.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "cache/blob_store.hpp"
#include "common/digest.hpp"
#include "common/error.hpp"
#include "common/json.hpp"

namespace lockstep::cache {

struct Platform {
  std::string os = "linux";
  std::string architecture = "amd64";
  std::string variant;      // "", "v8", ...
  std::string str() const;  // "linux/amd64", "linux/arm64/v8"
};

struct LayerRef {
  Digest blob;      // compressed (or not) blob digest, as in the manifest
  Digest diff_id;   // uncompressed digest, from the config's rootfs.diff_ids
  Digest chain_id;  // ChainID of this layer and the ones below it
  std::string media_type;
  uint64_t size = 0;
};

struct ImageRecord {
  Digest manifest;              // digest of the image manifest (not an index)
  std::optional<Digest> index;  // the index it was selected from, if any
  std::string manifest_media_type;
  Digest config;
  Json config_json;  // the parsed image config
  Platform platform;
  std::vector<LayerRef> layers;  // lowest first
};

class ImageStore {
 public:
  explicit ImageStore(std::filesystem::path state_dir);
  BlobStore& blobs() { return blobs_; }
  const BlobStore& blobs() const { return blobs_; }

  // Deterministic single-layer image from a rootfs directory or a tar file:
  // sorted entries, mtime 0, uid/gid 0, uncompressed-then-gzip without a
  // timestamp. The same input bytes give the same manifest digest on any host.
  // Tags it as `tag` and returns the manifest digest.
  Result<Digest> import_rootfs(const std::filesystem::path& source, const std::string& tag);

  // Records an image whose manifest and config (and layer blobs) are already
  // in the blob store, e.g. after a registry pull; verifies they are present.
  Result<ImageRecord> add_manifest(const Digest& manifest, std::optional<Digest> index,
                                   const std::optional<std::string>& tag);

  // By tag ("name", "name:tag", or a full reference string that was tagged)
  // or by manifest digest ("sha256:...", "name@sha256:...").
  Result<ImageRecord> resolve(const std::string& ref) const;

  // Unpacked layer directories, lowest first; unpacks each layer at most once
  // (verified against its diff id, keyed by it, or by its chain id when it
  // is unpacked against the layers below) and reuses it afterwards.
  Result<std::vector<std::filesystem::path>> layer_dirs(const ImageRecord& image);

  struct Entry {
    std::string tag;
    Digest manifest;
    uint64_t size = 0;
  };
  Result<std::vector<Entry>> list() const;
  Status remove(const std::string& ref);

  const std::filesystem::path& state_dir() const { return state_; }
  // The image whose manifest (or index, then the platform's manifest) is
  // `digest`, read from the blob store.
  Result<ImageRecord> load_record(const Digest& digest, std::optional<Digest> index,
                                  const Platform& want) const;
  // Adds the image to images.json (and the tag, normalised) and marks it used.
  Status record(const ImageRecord& rec, const std::optional<std::string>& tag);

 private:
  std::filesystem::path state_;
  BlobStore blobs_;
};

}  // namespace lockstep::cache
