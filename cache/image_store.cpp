#include "cache/image_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <set>

#include "cache/gc_lock.hpp"
#include "cache/image_store_db.hpp"
#include "cache/layer_unpack.hpp"
#include "cache/oci_json.hpp"
#include "cache/tar_writer.hpp"
#include "common/fs.hpp"

namespace lockstep::cache {
namespace fs = std::filesystem;

std::string Platform::str() const {
  std::string s = os + "/" + architecture;
  if (!variant.empty()) s += "/" + variant;
  return s;
}

ImageStore::ImageStore(fs::path state_dir) : state_(state_dir), blobs_(std::move(state_dir)) {}

namespace {

Result<Json> read_json_blob(const BlobStore& blobs, const Digest& d, std::string_view what) {
  LS_TRY_ASSIGN(std::string text, blobs.read(d));
  return parse_json(text, std::string(what) + " " + d.str());
}

}  // namespace

Result<ImageRecord> ImageStore::load_record(const Digest& digest, std::optional<Digest> index,
                                            const Platform& want) const {
  LS_TRY_ASSIGN(Json doc, read_json_blob(blobs_, digest, "manifest"));
  LS_TRY_ASSIGN(oci::DocKind kind, oci::kind_of(doc, "manifest " + digest.str()));
  Digest manifest_digest = digest;
  if (kind == oci::DocKind::kIndex) {
    LS_TRY_ASSIGN(auto entries, oci::parse_index(doc, "index " + digest.str()));
    LS_TRY_ASSIGN(auto chosen, oci::select_platform(entries, want, "index " + digest.str()));
    index = digest;
    manifest_digest = chosen.digest;
    LS_TRY_ASSIGN(doc, read_json_blob(blobs_, manifest_digest, "manifest"));
  }
  std::string what = "manifest " + manifest_digest.str();
  LS_TRY_ASSIGN(oci::Manifest m, oci::parse_manifest(doc, what));
  ImageRecord rec;
  rec.manifest = manifest_digest;
  rec.index = index;
  rec.manifest_media_type = m.media_type;
  rec.config = m.config.digest;
  LS_TRY_ASSIGN(rec.config_json, read_json_blob(blobs_, rec.config, "config"));
  const Json& cfg = rec.config_json;
  if (cfg.contains("os") && cfg["os"].is_string()) rec.platform.os = cfg["os"];
  if (cfg.contains("architecture") && cfg["architecture"].is_string())
    rec.platform.architecture = cfg["architecture"];
  rec.platform.variant = json_string(cfg, "variant");
  std::vector<std::string> diff_ids;
  try {
    diff_ids = cfg.at("rootfs").at("diff_ids").get<std::vector<std::string>>();
  } catch (const Json::exception&) {
    return fail(
        Error("config " + rec.config.str() + ": no rootfs.diff_ids", 0, ErrorKind::kIntegrity));
  }
  if (diff_ids.size() != m.layers.size())
    return fail(Error(what + ": " + std::to_string(m.layers.size()) +
                          " layers but the config has " + std::to_string(diff_ids.size()) +
                          " diff ids",
                      0, ErrorKind::kIntegrity));
  for (size_t i = 0; i < m.layers.size(); ++i) {
    LayerRef l;
    l.blob = m.layers[i].digest;
    auto dd = Digest::parse(diff_ids[i]);
    if (!dd) return fail(std::move(dd.error()).context("config " + rec.config.str()));
    l.diff_id = *dd;
    l.media_type = m.layers[i].media_type;
    l.size = m.layers[i].size;
    rec.layers.push_back(std::move(l));
  }
  std::vector<Digest> diffs;
  for (const auto& l : rec.layers) diffs.push_back(l.diff_id);
  std::vector<Digest> chains = chain_ids(diffs);
  for (size_t i = 0; i < rec.layers.size(); ++i) rec.layers[i].chain_id = chains[i];
  return rec;
}

Status ImageStore::record(const ImageRecord& rec, const std::optional<std::string>& tag) {
  std::optional<std::string> norm;
  if (tag) {
    LS_TRY_ASSIGN(norm, normalize_tag(*tag));
  }
  LS_TRY_ASSIGN(UniqueFd lock, lock_image_db(state_));
  LS_TRY_ASSIGN(ImageDb db, load_image_db(state_));
  db.images[rec.manifest] = rec.index;
  if (norm) db.tags[*norm] = rec.manifest;
  LS_TRY(save_image_db(state_, db));
  return record_use(state_, rec.manifest);
}

Result<Digest> ImageStore::import_rootfs(const fs::path& source, const std::string& tag) {
  LS_TRY(normalize_tag(tag));
  LS_TRY_ASSIGN(StoreLock store_lock, StoreLock::shared(state_));
  std::error_code ec;
  auto st = fs::status(source, ec);
  if (ec)
    return fail(
        Error("import " + source.string() + ": " + ec.message(), ec.value(), ErrorKind::kNotFound));
  LayerBlob layer;
  if (fs::is_directory(st)) {
    LS_TRY_ASSIGN(layer, write_tree_layer(blobs_, source));
  } else {
    // A rootfs tar is unpacked (safely, ownership ignored) and re-archived so
    // that both kinds of input go through one normalisation.
    LS_TRY_ASSIGN(TempDir tmp, TempDir::create(state_ / "tmp", "import-"));
    UniqueFd fd(::open(source.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return fail_errno("open " + source.string());
    UnpackOptions opts;
    opts.whiteouts = false;
    opts.keep_owner = false;
    opts.name = source.string();
    LS_TRY(unpack_tar_fd(fd.get(), tmp.path(), opts));
    LS_TRY_ASSIGN(layer, write_tree_layer(blobs_, tmp.path()));
  }
  LS_TRY_ASSIGN(std::string cfg_text,
                canonical_json(oci::import_config(layer.diff_id, Platform{})));
  LS_TRY_ASSIGN(Digest cfg, blobs_.put(cfg_text));
  LS_TRY_ASSIGN(std::string man_text,
                canonical_json(oci::import_manifest(cfg, cfg_text.size(), layer.blob, layer.size,
                                                    oci::kOciLayerGzip)));
  LS_TRY_ASSIGN(Digest man, blobs_.put(man_text));
  LS_TRY_ASSIGN(ImageRecord rec, load_record(man, std::nullopt, Platform{}));
  LS_TRY(record(rec, tag));
  return man;
}

Result<ImageRecord> ImageStore::add_manifest(const Digest& manifest, std::optional<Digest> index,
                                             const std::optional<std::string>& tag) {
  LS_TRY_ASSIGN(ImageRecord rec, load_record(manifest, index, Platform{}));
  for (const auto& l : rec.layers)
    if (!blobs_.has(l.blob))
      return fail(
          Error("image " + rec.manifest.str() + ": layer " + l.blob.str() + " is not in the store",
                0, ErrorKind::kNotFound));
  LS_TRY(record(rec, tag));
  return rec;
}

Result<ImageRecord> ImageStore::resolve(const std::string& ref) const {
  std::string digest_part;
  if (auto at = ref.find('@'); at != std::string::npos)
    digest_part = ref.substr(at + 1);
  else if (ref.starts_with("sha256:"))
    digest_part = ref;
  LS_TRY_ASSIGN(ImageDb db, load_image_db(state_));
  if (!digest_part.empty()) {
    auto d = Digest::parse(digest_part);
    if (!d)
      return fail(std::move(d.error())
                      .context("image reference '" + ref + "'")
                      .set_kind(ErrorKind::kUsage));
    if (!blobs_.has(*d))
      return fail(Error("image " + ref + " is not in the local store", 0, ErrorKind::kNotFound));
    std::optional<Digest> idx;
    if (auto it = db.images.find(*d); it != db.images.end()) idx = it->second;
    return load_record(*d, idx, Platform{});
  }
  LS_TRY_ASSIGN(std::string tag, normalize_tag(ref));
  auto it = db.tags.find(tag);
  if (it == db.tags.end()) {
    if (auto alt = docker_hub_form(tag)) it = db.tags.find(*alt);
  }
  if (it == db.tags.end())
    return fail(Error("image '" + ref + "' is not in the local store (see 'lockstep image ls')", 0,
                      ErrorKind::kNotFound));
  std::optional<Digest> idx;
  if (auto im = db.images.find(it->second); im != db.images.end()) idx = im->second;
  return load_record(it->second, idx, Platform{});
}

Result<std::vector<fs::path>> ImageStore::layer_dirs(const ImageRecord& image) {
  std::vector<fs::path> out;
  out.reserve(image.layers.size());
  for (const auto& l : image.layers) {
    LayerParents parents{out, l.chain_id};
    LS_TRY_ASSIGN(fs::path p, ensure_layer_from_blob(state_, blobs_, l.blob, l.diff_id, &parents));
    out.push_back(std::move(p));
  }
  LS_TRY(record_use(state_, image.manifest));
  return out;
}

Result<std::vector<ImageStore::Entry>> ImageStore::list() const {
  LS_TRY_ASSIGN(ImageDb db, load_image_db(state_));
  std::vector<Entry> out;
  std::set<Digest> tagged;
  auto size_of = [&](const Digest& m) -> uint64_t {
    auto rec = load_record(m, std::nullopt, Platform{});
    if (!rec) return 0;
    uint64_t n = blobs_.size(rec->manifest).value_or(0) + blobs_.size(rec->config).value_or(0);
    for (const auto& l : rec->layers) n += l.size;
    return n;
  };
  for (const auto& [t, m] : db.tags) {
    out.push_back(Entry{t, m, size_of(m)});
    tagged.insert(m);
  }
  for (const auto& [m, idx] : db.images)
    if (!tagged.count(m)) out.push_back(Entry{"<none>", m, size_of(m)});
  return out;
}

Status ImageStore::remove(const std::string& ref) {
  LS_TRY_ASSIGN(UniqueFd lock, lock_image_db(state_));
  LS_TRY_ASSIGN(ImageDb db, load_image_db(state_));
  std::string digest_part;
  if (auto at = ref.find('@'); at != std::string::npos)
    digest_part = ref.substr(at + 1);
  else if (ref.starts_with("sha256:"))
    digest_part = ref;
  Digest target;
  if (!digest_part.empty()) {
    LS_TRY_ASSIGN(target, Digest::parse(digest_part));
    if (!db.images.count(target)) {
      // An index digest names the image that was selected from it.
      for (const auto& [m, idx] : db.images)
        if (idx == target) target = m;
    }
    if (!db.images.count(target))
      return fail(Error("image '" + ref + "' is not in the local store", 0, ErrorKind::kNotFound));
    std::erase_if(db.tags, [&](const auto& kv) { return kv.second == target; });
  } else {
    LS_TRY_ASSIGN(std::string tag, normalize_tag(ref));
    auto it = db.tags.find(tag);
    if (it == db.tags.end()) {
      if (auto alt = docker_hub_form(tag)) it = db.tags.find(*alt);
    }
    if (it == db.tags.end())
      return fail(Error("image '" + ref + "' is not in the local store", 0, ErrorKind::kNotFound));
    target = it->second;
    db.tags.erase(it);
  }
  bool still_tagged = false;
  for (const auto& [t, m] : db.tags) still_tagged |= m == target;
  if (!still_tagged) db.images.erase(target);
  // Blobs and layers stay until `cache gc`, which knows what jobs still use.
  return save_image_db(state_, db);
}

}  // namespace lockstep::cache
