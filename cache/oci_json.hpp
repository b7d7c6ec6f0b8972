#pragma once
// OCI image-spec and Docker schema2 documents: media types, parsing of
// manifests and indexes, platform selection, and the config/manifest of a
// deterministic local import.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cache/image_store.hpp"
#include "common/digest.hpp"
#include "common/error.hpp"
#include "common/json.hpp"

namespace lockstep::cache::oci {

inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kOciLayerTar = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kOciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kDockerLayerGzip =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr std::string_view kDefaultPath =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

struct Descriptor {
  std::string media_type;
  Digest digest;
  uint64_t size = 0;
  std::optional<Platform> platform;
  Json annotations;  // object or null
};

enum class DocKind { kManifest, kIndex };

// Classifies a manifest-or-index document by its mediaType (or, when absent,
// by its shape: "manifests" means an index). Unknown media types are errors.
Result<DocKind> kind_of(const Json& doc, std::string_view what);

Result<Descriptor> parse_descriptor(const Json& j, std::string_view what);

struct Manifest {
  std::string media_type;
  Descriptor config;
  std::vector<Descriptor> layers;
};
Result<Manifest> parse_manifest(const Json& doc, std::string_view what);

// Index entries that are image manifests (attestations and the like skipped).
Result<std::vector<Descriptor>> parse_index(const Json& doc, std::string_view what);

// The entry for `want` (a variant, when given, must match; when the entry has a
// variant and `want` has none, it still matches, as with Docker). Error lists
// what the index holds.
Result<Descriptor> select_platform(const std::vector<Descriptor>& entries, const Platform& want,
                                   std::string_view what);

// Config of a single-layer image imported from a rootfs, and its manifest.
Json import_config(const Digest& diff_id, const Platform& platform);
Json import_manifest(const Digest& config, uint64_t config_size, const Digest& layer,
                     uint64_t layer_size, std::string_view layer_media_type);
Json descriptor_json(std::string_view media_type, const Digest& d, uint64_t size);

}  // namespace lockstep::cache::oci
