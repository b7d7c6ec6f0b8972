#include "registry-mirror/manifest.hpp"

#include <algorithm>

namespace lockstep::registry {
namespace {

Result<Descriptor> parse_descriptor(const Json& j, std::string_view where) {
  if (!j.is_object()) return fail(std::string(where) + ": descriptor is not an object");
  Descriptor d;
  auto mt = j.find("mediaType");
  if (mt != j.end() && mt->is_string()) d.media_type = mt->get<std::string>();
  auto dig = j.find("digest");
  if (dig == j.end() || !dig->is_string())
    return fail(std::string(where) + ": descriptor without a digest", ErrorKind::kIntegrity);
  auto parsed = Digest::parse(dig->get<std::string>());
  if (!parsed) return fail(Error(parsed.error()).context(where).set_kind(ErrorKind::kUnsupported));
  d.digest = *parsed;
  auto size = j.find("size");
  if (size == j.end() || !size->is_number_integer() || size->get<int64_t>() < 0)
    return fail(std::string(where) + ": descriptor " + d.digest.str() + " without a size",
                ErrorKind::kIntegrity);
  d.size = size->get<uint64_t>();
  if (auto p = j.find("platform"); p != j.end() && p->is_object()) {
    cache::Platform pl;
    pl.os = json_string(*p, "os");
    pl.architecture = json_string(*p, "architecture");
    pl.variant = json_string(*p, "variant");
    d.platform = pl;
  }
  return d;
}

}  // namespace

std::string manifest_accept_header() {
  return std::string(media::kOciIndex) + ", " + std::string(media::kOciManifest) + ", " +
         std::string(media::kDockerList) + ", " + std::string(media::kDockerManifest);
}

bool is_index_media_type(std::string_view mt) {
  return mt == media::kOciIndex || mt == media::kDockerList;
}
bool is_image_manifest_media_type(std::string_view mt) {
  return mt == media::kOciManifest || mt == media::kDockerManifest;
}
bool is_layer_media_type(std::string_view mt) {
  static constexpr std::string_view kKnown[] = {
      media::kOciLayerTar,
      media::kOciLayerGzip,
      media::kOciLayerZstd,
      media::kDockerLayerGzip,
      "application/vnd.oci.image.layer.nondistributable.v1.tar",
      "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
      "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
      "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  };
  return std::find(std::begin(kKnown), std::end(kKnown), mt) != std::end(kKnown);
}
bool is_config_media_type(std::string_view mt) {
  return mt == media::kOciConfig || mt == media::kDockerConfig;
}

Result<std::string> manifest_media_type(std::string_view content_type, const Json& doc,
                                        std::string_view where) {
  // "application/vnd.oci.image.manifest.v1+json; charset=utf-8" -> bare type.
  std::string ct(content_type.substr(0, content_type.find(';')));
  while (!ct.empty() && ct.back() == ' ') ct.pop_back();
  std::string declared;
  if (doc.is_object())
    if (auto mt = doc.find("mediaType"); mt != doc.end() && mt->is_string())
      declared = mt->get<std::string>();
  std::string mt;
  if (is_index_media_type(ct) || is_image_manifest_media_type(ct))
    mt = ct;
  else if (!declared.empty())
    mt = declared;
  else if (doc.is_object() && doc.contains("manifests"))
    mt = media::kOciIndex;
  else if (doc.is_object() && doc.contains("config") && doc.contains("layers"))
    mt = media::kOciManifest;
  else
    mt = ct.empty() ? "(none)" : ct;
  if (is_index_media_type(mt) || is_image_manifest_media_type(mt)) return mt;
  if (mt == media::kDockerSchema1 || mt == media::kDockerSchema1Signed)
    return fail(std::string(where) +
                    ": Docker schema 1 manifests are not supported (push the image again with a "
                    "current client)",
                ErrorKind::kUnsupported);
  return fail(std::string(where) + ": unsupported manifest media type '" + mt + "'",
              ErrorKind::kUnsupported);
}

Result<ImageIndex> parse_index(const Json& doc, std::string_view where) {
  auto m = doc.find("manifests");
  if (!doc.is_object() || m == doc.end() || !m->is_array())
    return fail(std::string(where) + ": index has no 'manifests' list", ErrorKind::kIntegrity);
  ImageIndex idx;
  for (const auto& e : *m) {
    LS_TRY_ASSIGN(Descriptor d, parse_descriptor(e, where));
    idx.manifests.push_back(std::move(d));
  }
  return idx;
}

Result<ImageManifest> parse_image_manifest(const Json& doc, std::string_view where) {
  if (!doc.is_object() || !doc.contains("config") || !doc.contains("layers") ||
      !doc["layers"].is_array())
    return fail(std::string(where) + ": manifest has no 'config' and 'layers'",
                ErrorKind::kIntegrity);
  ImageManifest im;
  LS_TRY_ASSIGN(im.config, parse_descriptor(doc["config"], where));
  if (!is_config_media_type(im.config.media_type))
    return fail(std::string(where) + ": unsupported config media type '" + im.config.media_type +
                    "' (not a container image)",
                ErrorKind::kUnsupported);
  for (const auto& l : doc["layers"]) {
    LS_TRY_ASSIGN(Descriptor d, parse_descriptor(l, where));
    if (!is_layer_media_type(d.media_type))
      return fail(std::string(where) + ": unsupported layer media type '" + d.media_type +
                      "' for " + d.digest.str(),
                  ErrorKind::kUnsupported);
    im.layers.push_back(std::move(d));
  }
  return im;
}

cache::Platform normalize_platform(cache::Platform p) {
  auto lower = [](std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  p.os = lower(p.os);
  p.architecture = lower(p.architecture);
  p.variant = lower(p.variant);
  if (p.architecture == "x86_64" || p.architecture == "x86-64") p.architecture = "amd64";
  if (p.architecture == "i386") p.architecture = "386";
  if (p.architecture == "aarch64") p.architecture = "arm64";
  if (p.architecture == "armhf") p.architecture = "arm", p.variant = "v7";
  if (p.architecture == "armel") p.architecture = "arm", p.variant = "v6";
  if (p.architecture == "arm64" && (p.variant == "v8" || p.variant == "8")) p.variant.clear();
  if (p.architecture == "arm") {
    if (p.variant.empty() || p.variant == "7") p.variant = "v7";
    if (p.variant == "5" || p.variant == "6" || p.variant == "8") p.variant = "v" + p.variant;
  }
  if (p.architecture == "amd64" && p.variant == "v1") p.variant.clear();
  return p;
}

std::string platform_string(const cache::Platform& p) {
  std::string s = p.os + "/" + p.architecture;
  if (!p.variant.empty()) s += "/" + p.variant;
  return s;
}

bool platform_matches(const cache::Platform& want, const cache::Platform& have) {
  cache::Platform a = normalize_platform(want), b = normalize_platform(have);
  return a.os == b.os && a.architecture == b.architecture && a.variant == b.variant;
}

Result<cache::Platform> parse_platform(std::string_view text) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t slash = text.find('/', start);
    parts.emplace_back(text.substr(start, slash == text.npos ? text.npos : slash - start));
    if (slash == text.npos) break;
    start = slash + 1;
  }
  bool bad =
      parts.empty() || parts.size() > 3 ||
      std::any_of(parts.begin(), parts.end(), [](const std::string& s) {
        return s.empty() || s.find_first_not_of(
                                "abcdefghijklmnopqrstuvwxyz"
                                "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") != std::string::npos;
      });
  if (bad)
    return fail("invalid platform '" + std::string(text) + "' (expected os/arch[/variant])",
                ErrorKind::kUsage);
  cache::Platform p;
  if (parts.size() == 1) {
    p.architecture = parts[0];
  } else {
    p.os = parts[0];
    p.architecture = parts[1];
    if (parts.size() == 3) p.variant = parts[2];
  }
  return p;
}

Result<Descriptor> select_platform(const ImageIndex& index, const cache::Platform& want,
                                   std::string_view ref) {
  std::vector<std::string> available;
  for (const auto& d : index.manifests) {
    if (!d.platform) continue;
    if (d.platform->os == "unknown" || d.platform->architecture == "unknown") continue;
    if (platform_matches(want, *d.platform)) return d;
    std::string s = platform_string(*d.platform);
    if (std::find(available.begin(), available.end(), s) == available.end()) available.push_back(s);
  }
  std::string msg =
      "no manifest for " + platform_string(want) + " in " + std::string(ref) + " (available: ";
  for (size_t i = 0; i < available.size(); ++i) msg += (i ? ", " : "") + available[i];
  if (available.empty()) msg += "none";
  msg += ")";
  return fail(msg, ErrorKind::kNotFound);
}

}  // namespace lockstep::registry
