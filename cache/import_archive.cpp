#include "cache/import_archive.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <memory>

#include "cache/gc_lock.hpp"
#include "cache/oci_json.hpp"
#include "common/fs.hpp"

namespace lockstep::cache {
namespace fs = std::filesystem;

namespace {

struct ImportReadFree {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ImportReadPtr = std::unique_ptr<archive, ImportReadFree>;

Result<ImportReadPtr> open_tar(const fs::path& p) {
  ImportReadPtr a(archive_read_new());
  archive_read_support_filter_all(a.get());
  archive_read_support_format_tar(a.get());
  archive_read_support_format_gnutar(a.get());
  if (archive_read_open_filename(a.get(), p.c_str(), 1 << 16) != ARCHIVE_OK)
    return fail(
        Error("open " + p.string() + ": " + archive_error_string(a.get()), archive_errno(a.get())));
  return a;
}

std::string clean(std::string p) {
  while (p.starts_with("./")) p.erase(0, 2);
  while (p.starts_with("/")) p.erase(0, 1);
  return p;
}

// Resolves "a/b/../c" (paths inside an archive, never touching the disk).
std::string lexical(const std::string& dir, const std::string& rel) {
  fs::path p = rel.starts_with("/") ? fs::path(rel.substr(1)) : fs::path(dir) / rel;
  return clean(p.lexically_normal().generic_string());
}

// Fetches one blob into the store, verified against its digest.
using Fetch = std::function<Status(const Digest&)>;

std::optional<std::string> name_from_annotations(const Json& ann) {
  if (!ann.is_object()) return std::nullopt;
  if (auto it = ann.find("io.containerd.image.name"); it != ann.end() && it->is_string())
    return it->get<std::string>();
  if (auto it = ann.find("org.opencontainers.image.ref.name"); it != ann.end() && it->is_string()) {
    std::string v = *it;
    // A bare tag ("latest") names no image; a full reference does.
    if (v.find('/') != std::string::npos || v.find(':') != std::string::npos) return v;
  }
  return std::nullopt;
}

// Copies a manifest (or an index and the manifests of it whose blobs the
// source has) with config and layers into the store.
Status fetch_tree(ImageStore& store, const Digest& d, const Fetch& fetch, bool required) {
  auto got = fetch(d);
  if (!got) {
    if (!required && got.error().kind() == ErrorKind::kNotFound) return {};
    return got;
  }
  LS_TRY_ASSIGN(std::string text, store.blobs().read(d));
  LS_TRY_ASSIGN(Json doc, parse_json(text, "manifest " + d.str()));
  LS_TRY_ASSIGN(oci::DocKind kind, oci::kind_of(doc, "manifest " + d.str()));
  if (kind == oci::DocKind::kIndex) {
    LS_TRY_ASSIGN(auto entries, oci::parse_index(doc, "index " + d.str()));
    for (const auto& e : entries) LS_TRY(fetch_tree(store, e.digest, fetch, false));
    return {};
  }
  LS_TRY_ASSIGN(oci::Manifest m, oci::parse_manifest(doc, "manifest " + d.str()));
  LS_TRY(fetch(m.config.digest));
  for (const auto& l : m.layers) LS_TRY(fetch(l.digest));
  return {};
}

Result<std::vector<ImportedImage>> import_index(ImageStore& store, const Json& index,
                                                const Fetch& fetch,
                                                const std::optional<std::string>& tag,
                                                const std::string& where) {
  LS_TRY_ASSIGN(auto entries, oci::parse_index(index, where + "/index.json"));
  if (entries.empty())
    return fail(Error(where + ": index.json lists no image", 0, ErrorKind::kNotFound));
  if (tag && entries.size() > 1)
    return fail(Error(
        where + ": holds " + std::to_string(entries.size()) + " images; --tag needs exactly one", 0,
        ErrorKind::kUsage));
  std::vector<ImportedImage> out;
  for (const auto& e : entries) {
    LS_TRY(fetch_tree(store, e.digest, fetch, true));
    std::optional<std::string> name = tag ? tag : name_from_annotations(e.annotations);
    LS_TRY_ASSIGN(ImageRecord rec, store.add_manifest(e.digest, std::nullopt, name));
    ImportedImage im{rec.manifest, {}};
    if (name) im.tags.push_back(*name);
    out.push_back(std::move(im));
  }
  return out;
}

}  // namespace

Result<ImportSource> detect_import_source(const fs::path& source) {
  std::error_code ec;
  auto st = fs::status(source, ec);
  if (ec || !fs::exists(st))
    return fail(Error("import source " + source.string() + " does not exist", ENOENT,
                      ErrorKind::kNotFound));
  if (fs::is_directory(st))
    return fs::exists(source / "oci-layout") ? ImportSource::kOciLayoutDir
                                             : ImportSource::kRootfsDir;
  LS_TRY_ASSIGN(ImportReadPtr a, open_tar(source));
  archive_entry* e;
  bool manifest = false, layout = false, index = false;
  int r;
  while ((r = archive_read_next_header(a.get(), &e)) == ARCHIVE_OK) {
    std::string p = clean(archive_entry_pathname(e) ? archive_entry_pathname(e) : "");
    manifest |= p == "manifest.json";
    layout |= p == "oci-layout";
    index |= p == "index.json";
  }
  if (r != ARCHIVE_EOF)
    return fail(Error(source.string() + ": not a tar archive: " + archive_error_string(a.get()), 0,
                      ErrorKind::kUsage));
  return manifest || (layout && index) ? ImportSource::kImageArchive : ImportSource::kRootfsTar;
}

Result<std::vector<ImportedImage>> import_oci_layout(ImageStore& store, const fs::path& dir,
                                                     const std::optional<std::string>& tag) {
  LS_TRY_ASSIGN(StoreLock lock, StoreLock::shared(store.state_dir()));
  LS_TRY_ASSIGN(std::string text, read_file(dir / "index.json"));
  LS_TRY_ASSIGN(Json index, parse_json(text, (dir / "index.json").string()));
  Fetch fetch = [&](const Digest& d) -> Status {
    if (store.blobs().has(d)) return {};
    fs::path p = dir / "blobs" / "sha256" / d.hex();
    if (!fs::exists(p))
      return fail(
          Error(dir.string() + ": blob " + d.str() + " is missing", ENOENT, ErrorKind::kNotFound));
    LS_TRY(store.blobs().put_file(p, d));
    return {};
  };
  return import_index(store, index, fetch, tag, dir.string());
}

Result<std::vector<ImportedImage>> import_image_archive(ImageStore& store, const fs::path& tar,
                                                        const std::optional<std::string>& tag) {
  LS_TRY_ASSIGN(StoreLock lock, StoreLock::shared(store.state_dir()));
  LS_TRY_ASSIGN(ImportReadPtr a, open_tar(tar));
  // One pass: every file goes into the blob store (those named by digest are
  // verified), the few small JSON documents are kept in memory.
  std::map<std::string, Digest> files;
  std::map<std::string, std::string> links;
  std::map<std::string, std::string> docs;
  archive_entry* e;
  int r;
  while ((r = archive_read_next_header(a.get(), &e)) == ARCHIVE_OK) {
    std::string p = clean(archive_entry_pathname(e) ? archive_entry_pathname(e) : "");
    if (archive_entry_filetype(e) == AE_IFLNK) {
      std::string dir = fs::path(p).parent_path().generic_string();
      links[p] = lexical(dir, archive_entry_symlink(e) ? archive_entry_symlink(e) : "");
      continue;
    }
    if (const char* hl = archive_entry_hardlink(e)) {
      links[p] = clean(hl);
      continue;
    }
    if (archive_entry_filetype(e) != AE_IFREG) continue;
    if (p == "manifest.json" || p == "index.json" || p == "oci-layout" || p == "repositories") {
      std::string text;
      char buf[1 << 16];
      la_ssize_t n;
      while ((n = archive_read_data(a.get(), buf, sizeof buf)) > 0)
        text.append(buf, static_cast<size_t>(n));
      if (n < 0)
        return fail(Error(tar.string() + ": read " + p + ": " + archive_error_string(a.get())));
      docs[p] = std::move(text);
      continue;
    }
    std::optional<Digest> expected;
    if (p.starts_with("blobs/sha256/")) {
      auto d = Digest::parse("sha256:" + p.substr(13));
      if (d) expected = *d;
    }
    LS_TRY_ASSIGN(BlobWriter w, store.blobs().writer(expected));
    const void* buf;
    size_t size;
    la_int64_t off;
    while ((r = archive_read_data_block(a.get(), &buf, &size, &off)) == ARCHIVE_OK)
      LS_TRY(w.write(buf, size));
    if (r != ARCHIVE_EOF)
      return fail(Error(tar.string() + ": read " + p + ": " + archive_error_string(a.get())));
    auto d = w.commit();
    if (!d) return fail(std::move(d.error()).context(tar.string() + ": " + p));
    files[p] = *d;
  }
  if (r != ARCHIVE_EOF)
    return fail(
        Error(tar.string() + ": " + archive_error_string(a.get()), 0, ErrorKind::kIntegrity));
  auto file_digest = [&](std::string p) -> Result<Digest> {
    p = clean(p);
    for (int hops = 0; hops < 8 && links.count(p); ++hops) p = links[p];
    auto it = files.find(p);
    if (it == files.end())
      return fail(Error(tar.string() + ": " + p + " is missing", ENOENT, ErrorKind::kNotFound));
    return it->second;
  };

  if (docs.count("index.json") && docs.count("oci-layout")) {
    LS_TRY_ASSIGN(Json index, parse_json(docs["index.json"], tar.string() + ": index.json"));
    Fetch fetch = [&](const Digest& d) -> Status {
      if (store.blobs().has(d)) return {};
      return fail(
          Error(tar.string() + ": blob " + d.str() + " is missing", ENOENT, ErrorKind::kNotFound));
    };
    return import_index(store, index, fetch, tag, tar.string());
  }
  if (!docs.count("manifest.json"))
    return fail(
        Error(tar.string() + ": neither manifest.json nor an OCI layout", 0, ErrorKind::kUsage));
  LS_TRY_ASSIGN(Json list, parse_json(docs["manifest.json"], tar.string() + ": manifest.json"));
  if (!list.is_array() || list.empty())
    return fail(Error(tar.string() + ": manifest.json lists no image", 0, ErrorKind::kIntegrity));
  if (tag && list.size() > 1)
    return fail(Error(tar.string() + ": holds " + std::to_string(list.size()) +
                          " images; --tag needs exactly one",
                      0, ErrorKind::kUsage));
  std::vector<ImportedImage> out;
  for (const auto& item : list) {
    if (!item.is_object() || !item.contains("Config") || !item.contains("Layers"))
      return fail(Error(tar.string() + ": manifest.json entry without Config or Layers", 0,
                        ErrorKind::kIntegrity));
    LS_TRY_ASSIGN(Digest cfg, file_digest(item["Config"].get<std::string>()));
    LS_TRY_ASSIGN(uint64_t cfg_size, store.blobs().size(cfg));
    Json layers = Json::array();
    for (const auto& l : item["Layers"]) {
      LS_TRY_ASSIGN(Digest ld, file_digest(l.get<std::string>()));
      LS_TRY_ASSIGN(uint64_t lsize, store.blobs().size(ld));
      // Layer files of docker save are usually plain tars; newer ones may be
      // compressed: the media type says which, from the magic bytes.
      LS_TRY_ASSIGN(UniqueFd fd, store.blobs().open(ld));
      unsigned char magic[4] = {};
      ssize_t n = ::read(fd.get(), magic, sizeof magic);
      std::string_view mt = oci::kOciLayerTar;
      if (n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b) mt = oci::kOciLayerGzip;
      if (n >= 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd)
        mt = oci::kOciLayerZstd;
      layers.push_back(oci::descriptor_json(mt, ld, lsize));
    }
    Json man = {{"schemaVersion", 2},
                {"mediaType", oci::kOciManifest},
                {"config", oci::descriptor_json(oci::kOciConfig, cfg, cfg_size)},
                {"layers", layers}};
    LS_TRY_ASSIGN(std::string man_text, canonical_json(man));
    LS_TRY_ASSIGN(Digest md, store.blobs().put(man_text));
    std::vector<std::string> names;
    if (tag) {
      names.push_back(*tag);
    } else if (item.contains("RepoTags") && item["RepoTags"].is_array()) {
      for (const auto& t : item["RepoTags"])
        if (t.is_string()) names.push_back(t.get<std::string>());
    }
    if (names.empty()) {
      LS_TRY(store.add_manifest(md, std::nullopt, std::nullopt));
    }
    for (const auto& n : names) LS_TRY(store.add_manifest(md, std::nullopt, n));
    out.push_back(ImportedImage{md, names});
  }
  return out;
}

Result<std::vector<ImportedImage>> import_any(ImageStore& store, const fs::path& source,
                                              const std::optional<std::string>& tag) {
  LS_TRY_ASSIGN(ImportSource kind, detect_import_source(source));
  switch (kind) {
    case ImportSource::kOciLayoutDir:
      return import_oci_layout(store, source, tag);
    case ImportSource::kImageArchive:
      return import_image_archive(store, source, tag);
    case ImportSource::kRootfsDir:
    case ImportSource::kRootfsTar:
      break;
  }
  if (!tag)
    return fail(Error("importing a root filesystem (" + source.string() + ") needs --tag NAME", 0,
                      ErrorKind::kUsage));
  LS_TRY_ASSIGN(Digest d, store.import_rootfs(source, *tag));
  return std::vector<ImportedImage>{ImportedImage{d, {*tag}}};
}

}  // namespace lockstep::cache
