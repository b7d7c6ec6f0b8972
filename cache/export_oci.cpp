#include "cache/export_oci.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>

#include "cache/image_store_db.hpp"
#include "cache/oci_json.hpp"
#include "cache/tar_writer.hpp"
#include "common/fs.hpp"

namespace lockstep::cache {
namespace fs = std::filesystem;

namespace {

struct Layout {
  std::string oci_layout;
  std::string index;
  std::string docker_manifest;
  std::set<Digest> blobs;  // sorted: the tar lists them in this order
};

Result<Layout> make_layout(const ImageStore& store, const ImageRecord& image,
                           const std::optional<std::string>& tag) {
  Layout l;
  l.oci_layout = R"({"imageLayoutVersion":"1.0.0"})";
  LS_TRY_ASSIGN(uint64_t man_size, store.blobs().size(image.manifest));
  Json desc = oci::descriptor_json(image.manifest_media_type, image.manifest, man_size);
  Json repo_tags = Json::array();
  if (tag) {
    LS_TRY_ASSIGN(std::string name, normalize_tag(*tag));
    desc["annotations"] = {{"io.containerd.image.name", name},
                           {"org.opencontainers.image.ref.name", name}};
    repo_tags.push_back(name);
  }
  LS_TRY_ASSIGN(l.index, canonical_json(Json{{"schemaVersion", 2},
                                             {"mediaType", oci::kOciIndex},
                                             {"manifests", Json::array({desc})}}));
  Json layers = Json::array();
  l.blobs.insert(image.manifest);
  l.blobs.insert(image.config);
  for (const auto& layer : image.layers) {
    if (!store.blobs().has(layer.blob))
      return fail(Error(
          "image " + image.manifest.str() + ": layer " + layer.blob.str() + " is not in the store",
          ENOENT, ErrorKind::kNotFound));
    l.blobs.insert(layer.blob);
    layers.push_back("blobs/sha256/" + layer.blob.hex());
  }
  LS_TRY_ASSIGN(l.docker_manifest,
                canonical_json(Json::array({Json{{"Config", "blobs/sha256/" + image.config.hex()},
                                                 {"RepoTags", repo_tags},
                                                 {"Layers", layers}}})));
  return l;
}

}  // namespace

Status export_oci_dir(const ImageStore& store, const ImageRecord& image,
                      const std::optional<std::string>& tag, const fs::path& dir) {
  LS_TRY_ASSIGN(Layout l, make_layout(store, image, tag));
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_empty(dir, ec))
    return fail(
        Error("export: " + dir.string() + " exists and is not empty", EEXIST, ErrorKind::kUsage));
  fs::create_directories(dir / "blobs" / "sha256", ec);
  if (ec) return fail(Error("create " + dir.string() + ": " + ec.message(), ec.value()));
  for (const auto& d : l.blobs) {
    fs::copy_file(store.blobs().path(d), dir / "blobs" / "sha256" / d.hex(), ec);
    if (ec) return fail(Error("export blob " + d.str() + ": " + ec.message(), ec.value()));
  }
  LS_TRY(write_file_atomic(dir / "index.json", l.index));
  LS_TRY(write_file_atomic(dir / "manifest.json", l.docker_manifest));
  LS_TRY(write_file_atomic(dir / "oci-layout", l.oci_layout));
  return {};
}

Status export_oci_tar(const ImageStore& store, const ImageRecord& image,
                      const std::optional<std::string>& tag, const fs::path& file) {
  LS_TRY_ASSIGN(Layout l, make_layout(store, image, tag));
  fs::path dir = file.has_parent_path() ? file.parent_path() : fs::path(".");
  std::string tmpl = (dir / ("." + file.filename().string() + ".tmp-XXXXXX")).string();
  UniqueFd fd(::mkostemp(tmpl.data(), O_CLOEXEC));
  if (!fd) return fail_errno("create temp file in " + dir.string());
  struct Unlink {
    std::string p;
    bool armed = true;
    ~Unlink() {
      if (armed) ::unlink(p.c_str());
    }
  } guard{tmpl};
  int raw = fd.get();
  LS_TRY_ASSIGN(TarWriter tar, TarWriter::open(
                                   [&](const void* p, size_t n) -> Status {
                                     const char* c = static_cast<const char*>(p);
                                     while (n > 0) {
                                       ssize_t w = ::write(raw, c, n);
                                       if (w < 0) {
                                         if (errno == EINTR) continue;
                                         return fail_errno("write " + file.string());
                                       }
                                       c += w;
                                       n -= static_cast<size_t>(w);
                                     }
                                     return {};
                                   },
                                   TarCompression::kNone));
  LS_TRY(tar.add_dir("blobs/"));
  LS_TRY(tar.add_dir("blobs/sha256/"));
  for (const auto& d : l.blobs)
    LS_TRY(tar.add_file("blobs/sha256/" + d.hex(), store.blobs().path(d)));
  LS_TRY(tar.add_bytes("index.json", l.index));
  LS_TRY(tar.add_bytes("manifest.json", l.docker_manifest));
  LS_TRY(tar.add_bytes("oci-layout", l.oci_layout));
  LS_TRY(tar.finish());
  if (::fchmod(raw, 0644) != 0 || ::fsync(raw) != 0) return fail_errno("sync " + tmpl);
  if (::rename(tmpl.c_str(), file.c_str()) != 0) return fail_errno("rename to " + file.string());
  guard.armed = false;
  return {};
}

}  // namespace lockstep::cache
