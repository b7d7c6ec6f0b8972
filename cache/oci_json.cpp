#include "cache/oci_json.hpp"

namespace lockstep::cache::oci {

namespace {

std::string str_or(const Json& j, const char* key, std::string def = "") {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : def;
}

}  // namespace

Result<DocKind> kind_of(const Json& doc, std::string_view what) {
  if (!doc.is_object())
    return fail(Error(std::string(what) + ": not a JSON object", 0, ErrorKind::kIntegrity));
  std::string mt = str_or(doc, "mediaType");
  if (mt == kOciManifest || mt == kDockerManifest) return DocKind::kManifest;
  if (mt == kOciIndex || mt == kDockerList) return DocKind::kIndex;
  if (mt.empty()) {
    if (doc.contains("manifests")) return DocKind::kIndex;
    if (doc.contains("layers") && doc.contains("config")) return DocKind::kManifest;
  }
  return fail(Error(std::string(what) + ": unsupported media type '" + mt +
                        "' (supported: OCI image manifest/index, Docker schema2 manifest/list)",
                    0, ErrorKind::kUnsupported));
}

Result<Descriptor> parse_descriptor(const Json& j, std::string_view what) {
  if (!j.is_object())
    return fail(
        Error(std::string(what) + ": descriptor is not an object", 0, ErrorKind::kIntegrity));
  Descriptor d;
  d.media_type = str_or(j, "mediaType");
  auto dg = Digest::parse(str_or(j, "digest"));
  if (!dg) return fail(std::move(dg.error()).context(what).set_kind(ErrorKind::kIntegrity));
  d.digest = *dg;
  if (auto it = j.find("size"); it != j.end() && it->is_number_unsigned())
    d.size = it->get<uint64_t>();
  if (auto it = j.find("platform"); it != j.end() && it->is_object()) {
    Platform p;
    p.os = str_or(*it, "os");
    p.architecture = str_or(*it, "architecture");
    p.variant = str_or(*it, "variant");
    d.platform = p;
  }
  if (auto it = j.find("annotations"); it != j.end() && it->is_object()) d.annotations = *it;
  return d;
}

Result<Manifest> parse_manifest(const Json& doc, std::string_view what) {
  LS_TRY_ASSIGN(DocKind k, kind_of(doc, what));
  if (k != DocKind::kManifest)
    return fail(
        Error(std::string(what) + ": is an index, not a manifest", 0, ErrorKind::kIntegrity));
  Manifest m;
  m.media_type = str_or(doc, "mediaType", std::string(kOciManifest));
  auto cfg = doc.find("config");
  if (cfg == doc.end())
    return fail(Error(std::string(what) + ": no config", 0, ErrorKind::kIntegrity));
  LS_TRY_ASSIGN(m.config, parse_descriptor(*cfg, std::string(what) + ": config"));
  auto layers = doc.find("layers");
  if (layers == doc.end() || !layers->is_array())
    return fail(Error(std::string(what) + ": no layers array", 0, ErrorKind::kIntegrity));
  for (const auto& l : *layers) {
    LS_TRY_ASSIGN(Descriptor d, parse_descriptor(l, std::string(what) + ": layer"));
    m.layers.push_back(std::move(d));
  }
  return m;
}

Result<std::vector<Descriptor>> parse_index(const Json& doc, std::string_view what) {
  auto it = doc.find("manifests");
  if (it == doc.end() || !it->is_array())
    return fail(Error(std::string(what) + ": no manifests array", 0, ErrorKind::kIntegrity));
  std::vector<Descriptor> out;
  for (const auto& m : *it) {
    LS_TRY_ASSIGN(Descriptor d, parse_descriptor(m, std::string(what) + ": manifest"));
    if (!d.media_type.empty() && d.media_type != kOciManifest && d.media_type != kDockerManifest &&
        d.media_type != kOciIndex && d.media_type != kDockerList)
      continue;
    if (d.platform && (d.platform->os == "unknown" || d.platform->architecture == "unknown"))
      continue;  // buildkit attestation manifests
    out.push_back(std::move(d));
  }
  return out;
}

Result<Descriptor> select_platform(const std::vector<Descriptor>& entries, const Platform& want,
                                   std::string_view what) {
  const Descriptor* loose = nullptr;
  std::string have;
  for (const auto& d : entries) {
    if (!d.platform) {
      if (!loose) loose = &d;
      continue;
    }
    const Platform& p = *d.platform;
    if (!have.empty()) have += ", ";
    have += p.str();
    if (p.os != want.os || p.architecture != want.architecture) continue;
    if (want.variant.empty() || p.variant == want.variant) return d;
  }
  if (loose && entries.size() == 1) return *loose;
  return fail(Error(std::string(what) + ": no manifest for platform " + want.str() +
                        " (the index has: " + (have.empty() ? "nothing" : have) + ")",
                    0, ErrorKind::kNotFound));
}

Json descriptor_json(std::string_view media_type, const Digest& d, uint64_t size) {
  return Json{{"mediaType", media_type}, {"digest", d.str()}, {"size", size}};
}

Json import_config(const Digest& diff_id, const Platform& platform) {
  Json cfg = {{"architecture", platform.architecture},
              {"os", platform.os},
              {"config", {{"Env", Json::array({kDefaultPath})}}},
              {"rootfs", {{"type", "layers"}, {"diff_ids", Json::array({diff_id.str()})}}}};
  if (!platform.variant.empty()) cfg["variant"] = platform.variant;
  return cfg;
}

Json import_manifest(const Digest& config, uint64_t config_size, const Digest& layer,
                     uint64_t layer_size, std::string_view layer_media_type) {
  return Json{{"schemaVersion", 2},
              {"mediaType", kOciManifest},
              {"config", descriptor_json(kOciConfig, config, config_size)},
              {"layers", Json::array({descriptor_json(layer_media_type, layer, layer_size)})}};
}

}  // namespace lockstep::cache::oci
