// Cold pull + unpack of a ~200 MB image (several layers of incompressible
// random content) from a loopback docker-registry, lockstep against
// `skopeo copy docker://... oci:DIR` + `umoci unpack` of the same image, in
// the same run. Prints the median of each and the ratio.
//
//   bench_pull [--layers N] [--layer-mib M] [--runs R]
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cache/image_store.hpp"
#include "common/fs.hpp"
#include "local_registry.hpp"
#include "registry-mirror/client.hpp"
#include "test_image.hpp"

using namespace lockstep;
using namespace lockstep::registry;
using namespace lockstep::registry::testing;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int run(const std::string& cmd) {
  int rc = std::system((cmd + " >/dev/null 2>&1").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

void drop_caches() {
  // Cold means: nothing of the image in the page cache of the consumer side
  // either. The registry's own files stay as cached as they are for both.
  ::sync();
}

}  // namespace

int main(int argc, char** argv) {
  int layers = 4, layer_mib = 50, runs = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--layers") layers = std::atoi(argv[i + 1]);
    if (a == "--layer-mib") layer_mib = std::atoi(argv[i + 1]);
    if (a == "--runs") runs = std::atoi(argv[i + 1]);
  }
  if (!LocalRegistry::available() || run("command -v skopeo") != 0 ||
      run("command -v umoci") != 0) {
    std::fprintf(stderr, "bench_pull: needs docker-registry, skopeo and umoci\n");
    return 2;
  }
  auto reg = LocalRegistry::start();
  if (!reg) {
    std::fprintf(stderr, "bench_pull: %s\n", reg.error().message().c_str());
    return 1;
  }
  auto work = TempDir::create("/var/tmp", "ls-bench-pull-");
  if (!work) return 1;

  // Each layer: a few files of random bytes (gzip cannot shrink them).
  std::vector<std::vector<TarEntry>> content;
  for (int l = 0; l < layers; ++l) {
    std::vector<TarEntry> entries{dir("layer" + std::to_string(l))};
    const int files = 4;
    for (int f = 0; f < files; ++f)
      entries.push_back(file("layer" + std::to_string(l) + "/f" + std::to_string(f),
                             random_bytes(static_cast<size_t>(layer_mib) * 1024 * 1024 / files,
                                          static_cast<uint64_t>(l * 100 + f))));
    content.push_back(std::move(entries));
  }
  std::fprintf(stderr, "building %d x %d MiB gzip layers...\n", layers, layer_mib);
  TestImage img = make_image(content, Compression::kGzip);
  content.clear();
  uint64_t total = 0;
  for (const auto& l : img.layers) total += l.bytes.size();
  ClientOptions opts;
  opts.credentials = CredentialStore{};
  auto client = RegistryClient::create(opts);
  auto ref = Reference::parse(reg->domain() + "/bench:v1");
  if (!client || !ref) return 1;
  if (auto st = push_image(*client, *ref, img); !st) {
    std::fprintf(stderr, "push: %s\n", st.error().message().c_str());
    return 1;
  }
  std::fprintf(stderr, "pushed %s (%.1f MiB)\n", img.manifest.digest.str().c_str(),
               static_cast<double>(total) / (1 << 20));

  std::vector<double> ours, peer, ours_pull_only;
  double warm = 0;
  for (int r = 0; r < runs; ++r) {
    // lockstep: pull (download + verify into the blob store) + unpack every layer.
    {
      auto state = work->path() / ("lockstep-" + std::to_string(r));
      std::filesystem::create_directories(state);
      cache::ImageStore store(state);
      drop_caches();
      auto t0 = Clock::now();
      auto rec = client->pull(*ref, cache::Platform{}, store);
      if (!rec) {
        std::fprintf(stderr, "lockstep pull: %s\n", rec.error().message().c_str());
        return 1;
      }
      double pulled = seconds_since(t0);
      auto dirs = store.layer_dirs(*rec);
      if (!dirs) {
        std::fprintf(stderr, "lockstep unpack: %s\n", dirs.error().message().c_str());
        return 1;
      }
      ours.push_back(seconds_since(t0));
      ours_pull_only.push_back(pulled);
      auto t1 = Clock::now();
      auto again = store.layer_dirs(*rec);
      warm = std::max(warm, seconds_since(t1));
      if (!again) return 1;
      (void)remove_tree(state);
    }
    // skopeo copy + umoci unpack.
    {
      auto oci = work->path() / ("oci-" + std::to_string(r));
      auto bundle = work->path() / ("bundle-" + std::to_string(r));
      drop_caches();
      auto t0 = Clock::now();
      if (run("skopeo copy --src-tls-verify=false docker://" + ref->str() + " oci:" + oci.string() +
              ":v1") != 0 ||
          run("umoci unpack --image " + oci.string() + ":v1 " + bundle.string()) != 0) {
        std::fprintf(stderr, "skopeo/umoci failed\n");
        return 1;
      }
      peer.push_back(seconds_since(t0));
      (void)remove_tree(oci);
      (void)remove_tree(bundle);
    }
    std::fprintf(stderr, "run %d: lockstep %.2f s (pull %.2f s), skopeo+umoci %.2f s\n", r + 1,
                 ours.back(), ours_pull_only.back(), peer.back());
  }
  double a = median(ours), b = median(peer);
  std::printf("image: %d layers, %.1f MiB compressed (random content), loopback docker-registry\n",
              layers, static_cast<double>(total) / (1 << 20));
  std::printf("lockstep pull+unpack:      %.2f s (median of %d; pull alone %.2f s)\n", a, runs,
              median(ours_pull_only));
  std::printf("skopeo copy + umoci unpack: %.2f s (median of %d)\n", b, runs);
  std::printf("ratio: %.2fx faster\n", b / a);
  std::printf("warm layer_dirs (all layers unpacked): %.2f ms (max)\n", warm * 1000);
  return 0;
}
