// Unpacking an image layer (tar, gzip or zstd, detected from the bytes) as a
// pull does. Each input is unpacked into a fresh directory inside a box that
// also holds a sentinel: after the unpack the box must hold exactly those two,
// the sentinel untouched, whatever the archive tried.
#include <sys/stat.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string_view>

#include "cache/layer_unpack.hpp"
#include "common/fs.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace lockstep;
namespace fs = std::filesystem;

namespace {

const TempDir& box() {
  static TempDir dir = [] {
    auto t = TempDir::create(fs::temp_directory_path(), "lockstep-fuzz-layer-");
    fuzz::require(t.has_value(), "a temp dir");
    fuzz::require(static_cast<bool>(write_file_atomic(t->path() / "sentinel", "sentinel")),
                  "the sentinel");
    return std::move(*t);
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fs::path root = box().path() / "root";
  std::error_code ec;
  fs::create_directory(root, ec);
  fuzz::require(!ec, "create the unpack root");
  size_t offset = 0;
  cache::StreamReader in = [&](void* buf, size_t len) -> Result<size_t> {
    size_t n = std::min(len, size - offset);
    if (n) std::memcpy(buf, data + offset, n);
    offset += n;
    return n;
  };
  cache::UnpackOptions opts;
  opts.name = "layer";
  if (auto r = cache::unpack_tar_stream(in, root, opts); !r) fuzz::require_clean_error(r.error());

  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(box().path(), ec)) {
    std::string name = e.path().filename().string();
    fuzz::require(name == "root" || name == "sentinel", "nothing is written beside the root");
    ++entries;
  }
  fuzz::require(entries == 2, "the root and the sentinel are still there");
  auto sentinel = read_file(box().path() / "sentinel");
  fuzz::require(sentinel && *sentinel == "sentinel", "the sentinel is untouched");
  fuzz::require(static_cast<bool>(remove_tree(root)), "the root can be removed");
  return 0;
}
