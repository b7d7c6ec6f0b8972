// Start-to-exit of /bin/true in a lockstep container, as whoever runs it:
// as root the default container (overlay with its upper dir on tmpfs, cgroup
// limits, default seccomp, network none), as an ordinary user the rootless
// one (the user's user namespace, overlay mounted in it, no cgroup on a host
// without delegation). bench/rootless/run.sh runs it both ways, interleaved
// with rootless `podman run`, and prints the medians and ratios.
//
// Usage: bench_rootless --rootfs DIR --state DIR [--runs N]
// Prints one line per run: milliseconds from start() to the end of stop().
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>

#include "executor/container.hpp"
#include "executor/rootless.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using namespace lockstep::executor;

}  // namespace

int main(int argc, char** argv) {
  std::string rootfs, state;
  int runs = 20;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--rootfs" && i + 1 < argc) {
      rootfs = argv[++i];
    } else if (a == "--state" && i + 1 < argc) {
      state = argv[++i];
    } else if (a == "--runs" && i + 1 < argc) {
      runs = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "bench_rootless: error: unknown argument '%s'\n", a.c_str());
      return 2;
    }
  }
  if (rootfs.empty() || state.empty()) {
    std::fprintf(stderr, "usage: bench_rootless --rootfs DIR --state DIR [--runs N]\n");
    return 2;
  }
  std::optional<UserNamespace> userns;
  if (::geteuid() != 0) {
    auto u = rootless_user_namespace();
    if (!u) {
      std::fprintf(stderr, "bench_rootless: error: %s\n", u.error().message().c_str());
      return 1;
    }
    userns = *u;
  }
  for (int i = -2; i < runs; ++i) {  // 2 warm-up rounds (the first makes the user namespace)
    ContainerSpec spec;
    spec.id = "bench-rl-" + std::to_string(::getpid()) + "-" + std::to_string(i + 2);
    spec.layers = {rootfs};
    spec.env = {"PATH=/bin"};
    spec.limits.memory_bytes = 256ull << 20;
    spec.limits.pids = 512;
    spec.limits.cpus = 1.0;
    spec.user_namespace = userns;
    auto t0 = Clock::now();
    auto c = detail::LinuxContainer::start(state, spec);
    if (!c) {
      std::fprintf(stderr, "bench_rootless: error: %s\n", c.error().message().c_str());
      return 1;
    }
    ProcessSpec p;
    p.argv = {"/bin/true"};
    auto r = (*c)->exec(p, nullptr);
    if (!r || !r->ok()) {
      std::fprintf(stderr, "bench_rootless: error: /bin/true failed: %s\n",
                   r ? r->reason.c_str() : r.error().message().c_str());
      return 1;
    }
    auto s = (*c)->stop(std::chrono::milliseconds(0));
    auto t1 = Clock::now();
    if (!s) {
      std::fprintf(stderr, "bench_rootless: error: %s\n", s.error().message().c_str());
      return 1;
    }
    c->reset();
    if (i >= 0) std::printf("%.3f\n", std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  return 0;
}
