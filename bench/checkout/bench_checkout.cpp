// Warm checkout of a 10,000-file repository at a given commit: lockstep
// (libgit2, from its bare mirror, mirror already current) against
// `git clone --local` + `git checkout` of the same commit, in the same run.
// Prints both medians and the ratio lockstep/git (target: <= 1.0).
//
// Usage: bench_checkout [--files N] [--runs N] [--dir DIR]
//   --dir: where the repositories and checkouts go (default: the temp dir;
//   /dev/shm measures the software rather than the disk).
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "cache/git_checkout.hpp"
#include "common/fs.hpp"

namespace fs = std::filesystem;
using lockstep::cache::CheckoutRequest;
using lockstep::cache::GitMirrors;

namespace {

int run(const std::string& cmd) {
  int st = std::system(cmd.c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

std::string capture(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[256];
  while (fgets(buf, sizeof buf, p)) out += buf;
  ::pclose(p);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double time_ms(const std::function<bool()>& f) {
  auto t0 = std::chrono::steady_clock::now();
  if (!f()) {
    std::fprintf(stderr, "bench_checkout: error: a timed run failed\n");
    std::exit(1);
  }
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  int files = 10000, runs = 7;
  fs::path parent = fs::temp_directory_path();
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--files")
      files = std::atoi(argv[i + 1]);
    else if (a == "--runs")
      runs = std::atoi(argv[i + 1]);
    else if (a == "--dir")
      parent = argv[i + 1];
  }
  auto tmp = lockstep::TempDir::create(parent, "lockstep-bench-checkout-");
  if (!tmp) {
    std::fprintf(stderr, "bench_checkout: error: %s\n", tmp.error().message().c_str());
    return 1;
  }
  const fs::path src = tmp->path() / "src";
  fs::create_directories(src);
  // 100 directories of files ~1 KiB each, distinct contents.
  for (int i = 0; i < files; ++i) {
    fs::path d = src / ("dir" + std::to_string(i % 100));
    fs::create_directories(d);
    std::ofstream out(d / ("file" + std::to_string(i) + ".txt"));
    for (int l = 0; l < 16; ++l) out << "file " << i << " line " << l << " of the benchmark tree\n";
  }
  const std::string q = "'" + src.string() + "'";
  const std::string env =
      "GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@example.org GIT_COMMITTER_NAME=b "
      "GIT_COMMITTER_EMAIL=b@example.org ";
  // Packed, so that git's clone --local links one pack as our mirror does.
  if (run("cd " + q + " && git init -q -b main && git add -A && " + env +
          "git commit -q -m tree && git repack -adq") != 0) {
    std::fprintf(stderr, "bench_checkout: error: could not create the source repository\n");
    return 1;
  }
  const std::string commit = capture("git -C " + q + " rev-parse HEAD");

  GitMirrors mirrors(tmp->path() / "state");
  if (auto m = mirrors.update(src.string()); !m) {
    std::fprintf(stderr, "bench_checkout: error: %s\n", m.error().message().c_str());
    return 1;
  }

  std::vector<double> ours_commit, ours_branch, git_times;
  int n = 0;
  auto fresh = [&] { return tmp->path() / ("ws" + std::to_string(n++)); };
  // Interleaved, in a rotating order, so that machine noise hits all three
  // alike. Nothing is deleted until the end: on ext4, creating files right
  // after deleting many makes inode allocation the thing being measured.
  std::vector<std::function<void()>> variants = {
      [&] {
        fs::path d = fresh();
        ours_commit.push_back(time_ms([&] {
          return static_cast<bool>(
              lockstep::cache::checkout(mirrors, CheckoutRequest{src.string(), commit, d}));
        }));
      },
      [&] {
        fs::path d = fresh();
        ours_branch.push_back(time_ms([&] {
          return static_cast<bool>(
              lockstep::cache::checkout(mirrors, CheckoutRequest{src.string(), "main", d}));
        }));
      },
      [&] {
        fs::path d = fresh();
        git_times.push_back(time_ms([&] {
          return run("git clone -q --local --no-checkout " + q + " '" + d.string() +
                     "' && git -C '" + d.string() + "' checkout -q " + commit) == 0;
        }));
      },
  };
  for (int r = 0; r < runs; ++r)
    for (size_t v = 0; v < variants.size(); ++v)
      variants[(v + static_cast<size_t>(r)) % variants.size()]();

  const double oc = median(ours_commit), ob = median(ours_branch), g = median(git_times);
  std::printf("checkout of %d files at %s, %d runs each (medians)\n", files,
              commit.substr(0, 12).c_str(), runs);
  std::printf("  lockstep checkout (commit, mirror current, no fetch): %8.1f ms\n", oc);
  std::printf("  lockstep checkout (branch, no-op fetch from source):  %8.1f ms\n", ob);
  std::printf("  git clone --local + git checkout:                     %8.1f ms\n", g);
  std::printf("  ratio lockstep/git: commit %.2f, branch %.2f (target <= 1.00)\n", oc / g, ob / g);
  std::fflush(stdout);
  return 0;
}
