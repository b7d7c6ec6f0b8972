// Resolving an action reference in a new run when lockstep already has the
// repository: "warm" (the mirror is fetched once, finds nothing new, and the
// tree of the commit is already written) and "pinned" (lockstep.lock or a
// replay names the commit: no fetch at all), against `git fetch` of the same
// unchanged repository into a bare clone as the peer. Prints medians in ms.
//
// Usage: bench_action_fetch REPO_URL [--runs N] [--state DIR]
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "common/fs.hpp"
#include "runner/engine/action_source.hpp"

namespace fs = std::filesystem;
using lockstep::runner::ActionsConfig;
using lockstep::runner::ActionSources;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

template <class F>
double time_ms(F&& f) {
  auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_action_fetch FORGE_DIR [--runs N] [--state DIR]\n");
    return 2;
  }
  std::string forge = argv[1];
  int runs = 50;
  fs::path state = fs::temp_directory_path() / "lockstep-bench-action-fetch";
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--runs") runs = std::atoi(argv[i + 1]);
    if (a == "--state") state = argv[i + 1];
  }
  fs::remove_all(state);
  ActionsConfig cfg;
  cfg.base_url = forge;
  auto ref = lockstep::pipeline::parse_action_ref("bench/out@v1");
  std::string commit;
  {
    ActionSources cold(state, cfg, nullptr, {}, false);
    auto r = cold.resolve(*ref);
    if (!r) {
      std::fprintf(stderr, "resolve: %s\n", r.error().message().c_str());
      return 1;
    }
    commit = r->commit;
  }
  std::vector<double> warm, pinned, git;
  for (int i = 0; i < runs; ++i) {
    warm.push_back(time_ms([&] {
      ActionSources s(state, cfg, nullptr, {}, false);  // a new run: fetches once
      if (!s.resolve(*ref)) std::abort();
    }));
    pinned.push_back(time_ms([&] {
      ActionSources s(state, cfg, nullptr, {{"bench/out@v1", commit}}, false);
      if (!s.resolve(*ref)) std::abort();
    }));
  }
  fs::path bare = state / "peer.git";
  std::string clone = "git clone -q --bare " + forge + "/bench/out " + bare.string();
  if (std::system(clone.c_str()) != 0) return 1;
  std::string fetch = "git -C " + bare.string() + " fetch -q --prune origin '+refs/*:refs/*'";
  for (int i = 0; i < runs; ++i)
    git.push_back(time_ms([&] {
      if (std::system(fetch.c_str()) != 0) std::abort();
    }));
  std::printf("warm action resolve (mirror current): %.2f ms median of %d (target <= 5 ms)\n",
              median(warm), runs);
  std::printf("pinned action resolve (no fetch):     %.2f ms\n", median(pinned));
  std::printf("git fetch of the same unchanged repo: %.2f ms (ratio warm/git %.2f)\n", median(git),
              median(warm) / median(git));
  fs::remove_all(state);
  return 0;
}
