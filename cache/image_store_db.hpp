#pragma once
// The durable record of local images: <state>/images/images.json, replaced
// atomically, read-modify-written under an flock on <state>/images/.lock.
//   {"images": {"sha256:<manifest>": {"index": "sha256:..."}, ...},
//    "tags": {"name:tag": "sha256:<manifest>", ...}}
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/digest.hpp"
#include "common/error.hpp"
#include "common/fd.hpp"

namespace lockstep::cache {

struct ImageDb {
  std::map<Digest, std::optional<Digest>> images;  // manifest -> index it came from
  std::map<std::string, Digest> tags;
};

Result<ImageDb> load_image_db(const std::filesystem::path& state_dir);
Status save_image_db(const std::filesystem::path& state_dir, const ImageDb& db);
// Held across load_image_db + save_image_db by every writer.
Result<UniqueFd> lock_image_db(const std::filesystem::path& state_dir);

// "name[:tag]" -> "name:tag" (tag "latest" by default). The name is lowercase
// path components of [a-z0-9._-] separated by "/", optionally starting with a
// registry host[:port]; the tag is [A-Za-z0-9_.-], at most 128 characters.
Result<std::string> normalize_tag(std::string_view ref);

// Other spellings a tag of a pulled image may have been stored under:
// "busybox:latest" -> "docker.io/library/busybox:latest".
std::optional<std::string> docker_hub_form(const std::string& normalized);

}  // namespace lockstep::cache
