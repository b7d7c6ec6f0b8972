#pragma once
// OCI / Docker schema2 manifest documents: media types, descriptors, index
// and image manifest parsing, and platform selection from an index.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cache/image_store.hpp"
#include "common/digest.hpp"
#include "common/error.hpp"
#include "common/json.hpp"

namespace lockstep::registry {

namespace media {
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kDockerList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerSchema1 =
    "application/vnd.docker.distribution.manifest.v1+json";
inline constexpr std::string_view kDockerSchema1Signed =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kOciLayerTar = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kOciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view kDockerLayerGzip =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
}  // namespace media

// The Accept header sent for manifests: OCI index and manifest, Docker
// schema2 list and manifest.
std::string manifest_accept_header();

bool is_index_media_type(std::string_view mt);
bool is_image_manifest_media_type(std::string_view mt);
bool is_layer_media_type(std::string_view mt);
bool is_config_media_type(std::string_view mt);

struct Descriptor {
  std::string media_type;
  Digest digest;
  uint64_t size = 0;
  std::optional<cache::Platform> platform;  // index entries only
};

struct ImageIndex {
  std::vector<Descriptor> manifests;
};

struct ImageManifest {
  Descriptor config;
  std::vector<Descriptor> layers;  // lowest first
};

// The media type of a fetched manifest: the Content-Type when it names a
// manifest type, else the document's own "mediaType", else guessed from its
// shape (OCI allows omitting it). Schema1 and anything else are errors of
// kind kUnsupported naming the type and `where`.
Result<std::string> manifest_media_type(std::string_view content_type, const Json& doc,
                                        std::string_view where);

Result<ImageIndex> parse_index(const Json& doc, std::string_view where);
// Also checks every layer and the config have a media type lockstep can use.
Result<ImageManifest> parse_image_manifest(const Json& doc, std::string_view where);

// "linux/amd64", "linux/arm64/v8", "arm64" (os defaults to linux).
Result<cache::Platform> parse_platform(std::string_view text);
// Normalised as containerd does: x86_64 -> amd64, aarch64 -> arm64, arm64/v8
// -> arm64, arm -> arm/v7.
cache::Platform normalize_platform(cache::Platform p);
std::string platform_string(const cache::Platform& p);
bool platform_matches(const cache::Platform& want, const cache::Platform& have);

// Picks the manifest for `want` from an index. Entries for "unknown/unknown"
// (attestations) are ignored. Error (kNotFound):
//   no manifest for linux/amd64 in <ref> (available: linux/arm64, linux/s390x)
Result<Descriptor> select_platform(const ImageIndex& index, const cache::Platform& want,
                                   std::string_view ref);

}  // namespace lockstep::registry
