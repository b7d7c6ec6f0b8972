// Cold import + unpack of an image from an OCI layout on disk.
//   lockstep: import_oci_layout (every blob copied and verified) and
//             layer_dirs (one streaming pass per layer: decompress, hash the
//             diff id, write; synced and renamed into place).
//   umoci:    `umoci unpack --image LAYOUT:TAG BUNDLE` (verifies, unpacks,
//             writes its mtree manifest).
// Layers hold incompressible content so that the work is I/O and hashing,
// not compression ratios. Prints medians of --runs runs and the ratio.
#include <archive.h>
#include <archive_entry.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cache/gc.hpp"
#include "cache/image_store.hpp"
#include "cache/import_archive.hpp"
#include "cache/oci_json.hpp"
#include "common/fs.hpp"

namespace fs = std::filesystem;
using namespace lockstep;
using Clock = std::chrono::steady_clock;

namespace {

struct Rng {
  uint64_t s;
  uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  void fill(std::string& buf) {
    for (size_t i = 0; i + 8 <= buf.size(); i += 8) {
      uint64_t v = next();
      std::memcpy(buf.data() + i, &v, 8);
    }
  }
};

// A gzip layer of `files` random files of `file_size` bytes plus a few small
// ones; returns {blob bytes, diff id}.
std::pair<std::string, Digest> make_layer(int index, int files, size_t file_size, Rng& rng) {
  std::string blob, tar;
  Sha256 diff;
  archive* a = archive_write_new();
  archive_write_add_filter_gzip(a);
  archive_write_set_filter_option(a, "gzip", "compression-level", "1");
  archive_write_set_format_pax_restricted(a);
  archive_write_set_bytes_in_last_block(a, 1);
  archive_write_open2(
      a, &blob, nullptr,
      [](archive*, void* s, const void* b, size_t n) -> la_ssize_t {
        static_cast<std::string*>(s)->append(static_cast<const char*>(b), n);
        return static_cast<la_ssize_t>(n);
      },
      nullptr, nullptr);
  // A second writer without compression gives the diff id.
  archive* u = archive_write_new();
  archive_write_set_format_pax_restricted(u);
  archive_write_set_bytes_in_last_block(u, 1);
  archive_write_open2(
      u, &diff, nullptr,
      [](archive*, void* s, const void* b, size_t n) -> la_ssize_t {
        static_cast<Sha256*>(s)->update(b, n);
        return static_cast<la_ssize_t>(n);
      },
      nullptr, nullptr);
  auto add = [&](const std::string& path, const std::string& data, bool dir) {
    for (archive* w : {a, u}) {
      archive_entry* e = archive_entry_new();
      archive_entry_copy_pathname(e, path.c_str());
      archive_entry_set_filetype(e, dir ? AE_IFDIR : AE_IFREG);
      archive_entry_set_perm(e, dir ? 0755 : 0644);
      archive_entry_set_size(e, dir ? 0 : static_cast<la_int64_t>(data.size()));
      archive_entry_set_mtime(e, 1700000000, 0);
      archive_write_header(w, e);
      if (!dir) archive_write_data(w, data.data(), data.size());
      archive_entry_free(e);
    }
  };
  std::string d = "layer" + std::to_string(index) + "/";
  add(d, "", true);
  std::string buf(file_size, '\0');
  for (int i = 0; i < files; ++i) {
    rng.fill(buf);
    add(d + "blob" + std::to_string(i), buf, false);
  }
  for (int i = 0; i < 200; ++i)
    add(d + "small" + std::to_string(i), "config " + std::to_string(i), false);
  archive_write_close(a);
  archive_write_free(a);
  archive_write_close(u);
  archive_write_free(u);
  return {blob, diff.finish()};
}

double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int total_mb = 200, layers = 4, runs = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    int v = std::atoi(argv[i + 1]);
    if (k == "--mb")
      total_mb = v;
    else if (k == "--layers")
      layers = v;
    else if (k == "--runs")
      runs = v;
    else {
      std::fprintf(stderr, "usage: bench_unpack [--mb 200] [--layers 4] [--runs 3]\n");
      return 2;
    }
  }
  if (std::system("command -v umoci >/dev/null 2>&1") != 0) {
    std::fprintf(stderr, "bench_unpack: error: umoci is not installed (scripts/setup.sh)\n");
    return 1;
  }
  auto tmp = TempDir::create(fs::temp_directory_path(), "lockstep-bench-unpack-");
  if (!tmp) return 1;
  fs::path layout = tmp->path() / "layout";
  fs::create_directories(layout / "blobs/sha256");

  std::printf("building a %d MB image of %d layers (incompressible content)...\n", total_mb,
              layers);
  Rng rng{0x9e3779b97f4a7c15ull};
  size_t per_layer = static_cast<size_t>(total_mb) * 1024 * 1024 / static_cast<size_t>(layers);
  const size_t file_size = 1 << 20;
  Json layer_descs = Json::array(), diff_ids = Json::array();
  for (int l = 0; l < layers; ++l) {
    auto [blob, diff] = make_layer(l, static_cast<int>(per_layer / file_size), file_size, rng);
    Digest d = sha256_of(blob);
    (void)write_file_atomic(layout / "blobs/sha256" / d.hex(), blob);
    layer_descs.push_back(cache::oci::descriptor_json(cache::oci::kOciLayerGzip, d, blob.size()));
    diff_ids.push_back(diff.str());
  }
  std::string cfg = *canonical_json(Json{{"architecture", "amd64"},
                                         {"os", "linux"},
                                         {"config", {{"Env", Json::array({"PATH=/bin"})}}},
                                         {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}});
  Digest cfg_d = sha256_of(cfg);
  (void)write_file_atomic(layout / "blobs/sha256" / cfg_d.hex(), cfg);
  std::string man = *canonical_json(
      Json{{"schemaVersion", 2},
           {"mediaType", cache::oci::kOciManifest},
           {"config", cache::oci::descriptor_json(cache::oci::kOciConfig, cfg_d, cfg.size())},
           {"layers", layer_descs}});
  Digest man_d = sha256_of(man);
  (void)write_file_atomic(layout / "blobs/sha256" / man_d.hex(), man);
  Json desc = cache::oci::descriptor_json(cache::oci::kOciManifest, man_d, man.size());
  desc["annotations"] = {{"org.opencontainers.image.ref.name", "bench"}};
  (void)write_file_atomic(
      layout / "index.json",
      *canonical_json(Json{{"schemaVersion", 2}, {"manifests", Json::array({desc})}}));
  (void)write_file_atomic(layout / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})");

  std::vector<double> ours, theirs, warm;
  for (int r = 0; r < runs; ++r) {
    fs::path state = tmp->path() / ("state" + std::to_string(r));
    ::sync();
    auto t0 = Clock::now();
    cache::ImageStore store(state);
    auto imported = cache::import_oci_layout(store, layout, std::string("bench"));
    if (!imported) {
      std::fprintf(stderr, "bench_unpack: error: %s\n", imported.error().message().c_str());
      return 1;
    }
    auto rec = store.resolve("bench");
    auto dirs = rec ? store.layer_dirs(*rec) : tl::unexpected(rec.error());
    if (!dirs) {
      std::fprintf(stderr, "bench_unpack: error: %s\n", dirs.error().message().c_str());
      return 1;
    }
    ours.push_back(seconds(Clock::now() - t0));
    auto w0 = Clock::now();
    cache::ImageStore again(state);
    auto rec2 = again.resolve("bench");
    auto dirs2 = again.layer_dirs(*rec2);
    warm.push_back(seconds(Clock::now() - w0));
    (void)remove_tree(state);

    fs::path bundle = tmp->path() / ("bundle" + std::to_string(r));
    ::sync();
    auto u0 = Clock::now();
    std::string cmd = "umoci unpack --image " + layout.string() + ":bench " + bundle.string() +
                      " >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) {
      std::fprintf(stderr, "bench_unpack: error: umoci unpack failed: %s\n", cmd.c_str());
      return 1;
    }
    theirs.push_back(seconds(Clock::now() - u0));
    (void)remove_tree(bundle);
    std::printf("run %d: lockstep %.3f s, umoci %.3f s, warm prepare %.2f ms\n", r + 1, ours.back(),
                theirs.back(), warm.back() * 1000);
  }
  double a = median(ours), b = median(theirs);
  std::printf("\ncold import+unpack of %d MB in %d layers (median of %d):\n", total_mb, layers,
              runs);
  std::printf("  lockstep       %.3f s\n  umoci unpack   %.3f s\n  ratio          %.2fx faster\n",
              a, b, b / a);
  std::printf("warm prepare (layers already unpacked): %.2f ms\n", median(warm) * 1000);
  return 0;
}
