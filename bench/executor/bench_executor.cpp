// Start-to-exit of /bin/true in a container, lockstep's executor against
// `crun run` and `runc run` on the same rootfs, interleaved in one run.
// Ours: start (overlay root with the upper dir on tmpfs (the default) and on
// disk, and on tmpfs in a user namespace; cgroup limits, default seccomp,
// network none),
// exec /bin/true, stop. Peers: one `<runtime> run` process per container.
//
// Usage: bench_executor --rootfs DIR --state DIR [--runs N]
//                       [--peer NAME=BUNDLE ...]   (e.g. crun=/tmp/b/crun)
//        bench_executor --print-seccomp            (the default profile JSON)
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "executor/container.hpp"
#include "executor/seccomp.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using namespace lockstep::executor;

double ms(std::chrono::nanoseconds d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// Runs argv to completion with stdout on /dev/null (stderr kept, so that a
// failing peer says why); returns ms or -1.
double time_process(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  auto t0 = Clock::now();
  pid_t pid = ::fork();
  if (pid == 0) {
    FILE* null = std::fopen("/dev/null", "w");
    if (null) {
      ::dup2(fileno(null), 1);
    }
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  double t = ms(Clock::now() - t0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? t : -1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string rootfs, state;
  int runs = 50;
  std::vector<std::pair<std::string, std::string>> peers;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--print-seccomp") {
      std::printf("%s\n", default_seccomp_profile_json().c_str());
      return 0;
    } else if (a == "--rootfs" && i + 1 < argc) {
      rootfs = argv[++i];
    } else if (a == "--state" && i + 1 < argc) {
      state = argv[++i];
    } else if (a == "--runs" && i + 1 < argc) {
      runs = std::atoi(argv[++i]);
    } else if (a == "--peer" && i + 1 < argc) {
      std::string p = argv[++i];
      auto eq = p.find('=');
      if (eq == std::string::npos) return 2;
      peers.emplace_back(p.substr(0, eq), p.substr(eq + 1));
    } else {
      std::fprintf(stderr, "bench_executor: error: unknown argument '%s'\n", a.c_str());
      return 2;
    }
  }
  if (rootfs.empty() || state.empty()) {
    std::fprintf(
        stderr, "usage: bench_executor --rootfs DIR --state DIR [--runs N] [--peer NAME=BUNDLE]\n");
    return 2;
  }

  struct Series {
    std::vector<double> total, state, conf, cgroup, ns, mounts, ready, exec, stop;
  };
  // [0]: upper dir on disk, [1]: on tmpfs (the default), [2]: on tmpfs in a
  // user namespace (0 -> 100000, 65536 ids).
  constexpr int kModes = 3;
  Series modes[kModes];
  std::map<std::string, std::vector<double>> peer_times;
  for (int i = -3; i < runs; ++i) {  // 3 warm-up rounds
    for (int m = 0; m < kModes; ++m) {
      ContainerSpec spec;
      spec.id = "bench-" + std::to_string(::getpid()) + "-" + std::to_string(i + 3) + "-" +
                std::to_string(m);
      spec.layers = {rootfs};
      spec.env = {"PATH=/bin"};
      spec.limits.memory_bytes = 256ull << 20;
      spec.limits.pids = 512;
      spec.limits.cpus = 1.0;
      spec.scratch_in_memory = m != 0;
      if (m == 2) spec.user_namespace = UserNamespace{{{0, 100000, 65536}}, {{0, 100000, 65536}}};
      auto t0 = Clock::now();
      auto c = detail::LinuxContainer::start(state, spec);
      if (!c) {
        std::fprintf(stderr, "bench_executor: error: %s\n", c.error().message().c_str());
        return 1;
      }
      auto t1 = Clock::now();
      ProcessSpec p;
      p.argv = {"/bin/true"};
      auto r = (*c)->exec(p, nullptr);
      auto t2 = Clock::now();
      if (!r || !r->ok()) {
        std::fprintf(stderr, "bench_executor: error: /bin/true failed: %s\n",
                     r ? r->reason.c_str() : r.error().message().c_str());
        return 1;
      }
      auto s = (*c)->stop(std::chrono::milliseconds(0));
      auto t3 = Clock::now();
      if (!s) {
        std::fprintf(stderr, "bench_executor: error: %s\n", s.error().message().c_str());
        return 1;
      }
      const auto tm = (*c)->start_timings();
      c->reset();
      if (i < 0) continue;
      Series& se = modes[m];
      se.total.push_back(ms(t3 - t0));
      se.state.push_back(ms(tm.state));
      se.conf.push_back(ms(tm.confinement));
      se.cgroup.push_back(ms(tm.cgroup));
      se.ns.push_back(ms(tm.namespaces));
      se.mounts.push_back(ms(tm.mounts));
      se.ready.push_back(ms(tm.ready));
      se.exec.push_back(ms(t2 - t1));
      se.stop.push_back(ms(t3 - t2));
    }
    for (const auto& [name, bundle] : peers) {
      std::string id =
          "bench-" + std::to_string(::getpid()) + "-" + std::to_string(i + 3) + "-" + name;
      double t = time_process({name, "run", "--bundle", bundle, id});
      if (t < 0) {
        std::fprintf(stderr, "bench_executor: error: %s run failed\n", name.c_str());
        return 1;
      }
      if (i >= 0) peer_times[name].push_back(t);
    }
  }
  std::printf("start-to-exit of /bin/true, median of %d runs (ms)\n", runs);
  double disk = median(modes[0].total), mem = median(modes[1].total),
         userns = median(modes[2].total);
  std::printf("  lockstep, upper on disk            %7.2f\n", disk);
  std::printf("  lockstep, upper on tmpfs (default) %7.2f\n", mem);
  std::printf("  lockstep, tmpfs, user namespace    %7.2f\n", userns);
  for (const auto& [name, times] : peer_times)
    std::printf("  %-8s run                       %7.2f\n", name.c_str(), median(times));
  for (const char* peer : {"crun", "runc"}) {
    if (!peer_times.count(peer)) continue;
    double pm = median(peer_times[peer]);
    std::printf("  ratio to %s: disk %.2fx, tmpfs %.2fx, userns %.2fx\n", peer, disk / pm, mem / pm,
                userns / pm);
  }
  std::printf("lockstep cost split (medians, ms)        disk    tmpfs   userns\n");
  auto row = [&](const char* what, std::vector<double> Series::*f) {
    std::printf("  %-38s %7.2f  %7.2f  %7.2f\n", what, median(modes[0].*f), median(modes[1].*f),
                median(modes[2].*f));
  };
  row("state dir + file", &Series::state);
  row("seccomp + capabilities (prepare)", &Series::conf);
  row("cgroup create + limits", &Series::cgroup);
  row("namespaces (clone3, cgroup attach)", &Series::ns);
  row("mounts (overlay, /dev, /proc, /sys...)", &Series::mounts);
  row("init ready -> start() returns", &Series::ready);
  row("exec /bin/true (setns, seccomp, wait)", &Series::exec);
  row("teardown (init, cgroup, dirs)", &Series::stop);
  return 0;
}
