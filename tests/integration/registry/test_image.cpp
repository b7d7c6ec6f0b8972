#include "test_image.hpp"

#include <archive.h>
#include <archive_entry.h>

#include <cstring>
#include <random>
#include <stdexcept>

#include "registry-mirror/manifest.hpp"

namespace lockstep::registry::testing {
namespace {

la_ssize_t append_cb(struct archive*, void* user, const void* buf, size_t len) {
  static_cast<std::string*>(user)->append(static_cast<const char*>(buf), len);
  return static_cast<la_ssize_t>(len);
}

void check(struct archive* a, int rc) {
  if (rc < ARCHIVE_WARN) throw std::runtime_error(archive_error_string(a));
}

Blob blob(std::string media_type, std::string bytes) {
  Digest d = sha256_of(bytes);
  return Blob{std::move(media_type), std::move(bytes), d};
}

Json descriptor(const Blob& b) {
  return {{"mediaType", b.media_type}, {"digest", b.digest.str()}, {"size", b.bytes.size()}};
}

}  // namespace

TarEntry file(std::string path, std::string data, int mode) {
  return {TarEntry::Type::kFile, std::move(path), std::move(data), mode};
}
TarEntry dir(std::string path) {
  return {TarEntry::Type::kDir, std::move(path), "", 0755};
}
TarEntry symlink(std::string path, std::string target) {
  return {TarEntry::Type::kSymlink, std::move(path), std::move(target), 0777};
}

std::string make_tar(const std::vector<TarEntry>& entries) {
  std::string out;
  struct archive* a = archive_write_new();
  check(a, archive_write_set_format_pax_restricted(a));
  check(a, archive_write_set_bytes_in_last_block(a, 1));
  check(a, archive_write_open(a, &out, nullptr, append_cb, nullptr));
  for (const auto& e : entries) {
    struct archive_entry* ae = archive_entry_new();
    archive_entry_set_pathname(ae, e.path.c_str());
    archive_entry_set_mtime(ae, 1700000000, 0);
    archive_entry_set_uid(ae, 0);
    archive_entry_set_gid(ae, 0);
    archive_entry_set_perm(ae, static_cast<mode_t>(e.mode));
    switch (e.type) {
      case TarEntry::Type::kFile:
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_size(ae, static_cast<la_int64_t>(e.data.size()));
        break;
      case TarEntry::Type::kDir:
        archive_entry_set_filetype(ae, AE_IFDIR);
        break;
      case TarEntry::Type::kSymlink:
        archive_entry_set_filetype(ae, AE_IFLNK);
        archive_entry_set_symlink(ae, e.data.c_str());
        break;
      case TarEntry::Type::kHardlink:
        archive_entry_set_filetype(ae, AE_IFREG);
        archive_entry_set_hardlink(ae, e.data.c_str());
        break;
    }
    check(a, archive_write_header(a, ae));
    if (e.type == TarEntry::Type::kFile && !e.data.empty())
      if (archive_write_data(a, e.data.data(), e.data.size()) < 0)
        throw std::runtime_error(archive_error_string(a));
    archive_entry_free(ae);
  }
  check(a, archive_write_close(a));
  archive_write_free(a);
  return out;
}

std::string compress(const std::string& bytes, Compression c) {
  if (c == Compression::kNone) return bytes;
  std::string out;
  struct archive* a = archive_write_new();
  check(a, archive_write_set_format_raw(a));
  check(a, c == Compression::kGzip ? archive_write_add_filter_gzip(a)
                                   : archive_write_add_filter_zstd(a));
  if (c == Compression::kGzip)
    check(a, archive_write_set_filter_option(a, "gzip", "timestamp", nullptr));
  check(a, archive_write_set_bytes_in_last_block(a, 1));
  check(a, archive_write_open(a, &out, nullptr, append_cb, nullptr));
  struct archive_entry* ae = archive_entry_new();
  archive_entry_set_pathname(ae, "data");
  archive_entry_set_filetype(ae, AE_IFREG);
  archive_entry_set_size(ae, static_cast<la_int64_t>(bytes.size()));
  check(a, archive_write_header(a, ae));
  if (archive_write_data(a, bytes.data(), bytes.size()) < 0)
    throw std::runtime_error(archive_error_string(a));
  archive_entry_free(ae);
  check(a, archive_write_close(a));
  archive_write_free(a);
  return out;
}

TestImage make_image(const std::vector<std::vector<TarEntry>>& layers, Compression c,
                     const std::string& arch, const std::string& variant, bool docker) {
  TestImage img;
  std::string layer_type = docker                    ? std::string(media::kDockerLayerGzip)
                           : c == Compression::kGzip ? std::string(media::kOciLayerGzip)
                           : c == Compression::kZstd ? std::string(media::kOciLayerZstd)
                                                     : std::string(media::kOciLayerTar);
  Json diff_ids = Json::array();
  for (const auto& entries : layers) {
    std::string tar = make_tar(entries);
    img.diff_ids.push_back(sha256_of(tar));
    diff_ids.push_back(img.diff_ids.back().str());
    img.layers.push_back(blob(layer_type, compress(tar, docker ? Compression::kGzip : c)));
  }
  Json config = {{"architecture", arch},
                 {"os", "linux"},
                 {"config", {{"Env", {"PATH=/usr/bin:/bin"}}, {"Cmd", {"/bin/sh"}}}},
                 {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
  if (!variant.empty()) config["variant"] = variant;
  img.config = blob(std::string(docker ? media::kDockerConfig : media::kOciConfig), config.dump());
  Json manifest = {{"schemaVersion", 2},
                   {"mediaType", docker ? media::kDockerManifest : media::kOciManifest},
                   {"config", descriptor(img.config)},
                   {"layers", Json::array()}};
  for (const auto& l : img.layers) manifest["layers"].push_back(descriptor(l));
  img.manifest =
      blob(std::string(docker ? media::kDockerManifest : media::kOciManifest), manifest.dump());
  return img;
}

Blob make_index(const std::vector<const TestImage*>& images, bool docker) {
  Json idx = {{"schemaVersion", 2},
              {"mediaType", docker ? media::kDockerList : media::kOciIndex},
              {"manifests", Json::array()}};
  for (const TestImage* img : images) {
    Json cfg = Json::parse(img->config.bytes);
    Json d = descriptor(img->manifest);
    d["platform"] = {{"os", cfg["os"]}, {"architecture", cfg["architecture"]}};
    if (cfg.contains("variant")) d["platform"]["variant"] = cfg["variant"];
    idx["manifests"].push_back(d);
  }
  return blob(std::string(docker ? media::kDockerList : media::kOciIndex), idx.dump());
}

Status push_image(RegistryClient& client, const Reference& ref, const TestImage& img) {
  for (const auto& l : img.layers) LS_TRY(client.push_blob(ref, l.bytes));
  LS_TRY(client.push_blob(ref, img.config.bytes));
  LS_TRY_ASSIGN(Digest d, client.push_manifest(ref, img.manifest.media_type, img.manifest.bytes));
  if (d != img.manifest.digest) return fail("pushed manifest digest differs");
  return {};
}

Status push_index(RegistryClient& client, const Reference& ref,
                  const std::vector<const TestImage*>& images, const Blob& index) {
  for (const TestImage* img : images)
    LS_TRY(push_image(client, ref.with_digest(img->manifest.digest), *img));
  LS_TRY(client.push_manifest(ref, index.media_type, index.bytes));
  return {};
}

std::string random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    std::memcpy(&out[i], &v, 8);
  }
  for (; i < n; ++i) out[i] = static_cast<char>(rng());
  return out;
}

}  // namespace lockstep::registry::testing
