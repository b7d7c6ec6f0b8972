#pragma once
// Exports one image (its platform manifest, config and layers, bytes as
// stored, so the manifest digest is unchanged) as an OCI image layout: a
// directory, or a deterministic tar of one. Both also carry a docker-save
// style manifest.json so `docker load` accepts them.
#include <filesystem>
#include <optional>
#include <string>

#include "cache/image_store.hpp"
#include "common/error.hpp"

namespace lockstep::cache {

// `dir` must not exist or be empty.
Status export_oci_dir(const ImageStore& store, const ImageRecord& image,
                      const std::optional<std::string>& tag, const std::filesystem::path& dir);
// Written to a temp file beside `file` and renamed over it when complete.
Status export_oci_tar(const ImageStore& store, const ImageRecord& image,
                      const std::optional<std::string>& tag, const std::filesystem::path& file);

}  // namespace lockstep::cache
