#pragma once
// Images from air-gapped sources: OCI image layouts (a directory with
// oci-layout, index.json, blobs/sha256) and tarballs of them, `docker save`
// tarballs (manifest.json with config and layer.tar paths, legacy layout too),
// and plain rootfs directories or tars (deterministic import).
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "cache/image_store.hpp"
#include "common/digest.hpp"
#include "common/error.hpp"

namespace lockstep::cache {

enum class ImportSource { kRootfsDir, kRootfsTar, kOciLayoutDir, kImageArchive };

// kOciLayoutDir: a directory holding "oci-layout"; kImageArchive: a tar whose
// top level holds manifest.json or oci-layout + index.json.
Result<ImportSource> detect_import_source(const std::filesystem::path& source);

struct ImportedImage {
  Digest manifest;  // what `image inspect` resolves (an index resolves to its platform)
  std::vector<std::string> tags;
};

// `tag` overrides the names found in the source; it needs exactly one image.
// Without one, images are tagged as the source names them (RepoTags, the
// org.opencontainers.image.ref.name / io.containerd.image.name annotations)
// and left untagged otherwise. Every blob is verified against its digest.
Result<std::vector<ImportedImage>> import_oci_layout(ImageStore& store,
                                                     const std::filesystem::path& dir,
                                                     const std::optional<std::string>& tag);
Result<std::vector<ImportedImage>> import_image_archive(ImageStore& store,
                                                        const std::filesystem::path& tar,
                                                        const std::optional<std::string>& tag);

// Detects the kind of source and imports it; a rootfs needs `tag`.
Result<std::vector<ImportedImage>> import_any(ImageStore& store,
                                              const std::filesystem::path& source,
                                              const std::optional<std::string>& tag);

}  // namespace lockstep::cache
