#pragma once
// Images built by the tests themselves: layer tarballs written with
// libarchive (plain, gzip or zstd), an OCI or Docker schema2 config and
// manifest, optionally wrapped in a multi-platform index, pushed with the
// client's push side.
#include <string>
#include <vector>

#include "common/digest.hpp"
#include "common/error.hpp"
#include "common/json.hpp"
#include "registry-mirror/client.hpp"

namespace lockstep::registry::testing {

struct TarEntry {
  enum class Type { kFile, kDir, kSymlink, kHardlink };
  Type type = Type::kFile;
  std::string path;
  std::string data;  // file content, or link target
  int mode = 0644;
};
TarEntry file(std::string path, std::string data, int mode = 0644);
TarEntry dir(std::string path);
TarEntry symlink(std::string path, std::string target);

enum class Compression { kNone, kGzip, kZstd };

struct Blob {
  std::string media_type;
  std::string bytes;
  Digest digest;
};

struct TestImage {
  std::vector<Blob> layers;
  std::vector<Digest> diff_ids;
  Blob config;
  Blob manifest;
};

std::string make_tar(const std::vector<TarEntry>& entries);
std::string compress(const std::string& bytes, Compression c);

// OCI by default; docker=true gives Docker schema2 media types throughout.
TestImage make_image(const std::vector<std::vector<TarEntry>>& layers, Compression c,
                     const std::string& arch = "amd64", const std::string& variant = "",
                     bool docker = false);
// An index over images (platform taken from each config).
Blob make_index(const std::vector<const TestImage*>& images, bool docker = false);

// Pushes layers, config and manifest (tagged as ref's tag, or by digest).
Status push_image(RegistryClient& client, const Reference& ref, const TestImage& img);
// Pushes every image by digest and the index under ref's tag.
Status push_index(RegistryClient& client, const Reference& ref,
                  const std::vector<const TestImage*>& images, const Blob& index);

// Random bytes that do not compress (deterministic for a seed).
std::string random_bytes(size_t n, uint64_t seed);

}  // namespace lockstep::registry::testing
