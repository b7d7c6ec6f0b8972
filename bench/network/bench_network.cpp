// The egress network against its peers, in network namespaces run.sh made
// (this program runs in the "host" one; the origin server is in "world"):
//   start:      container start with network egress (namespace, veth, rules,
//               and the job's DNS stub/proxy) against network none, medians
//   throughput: one large download with curl in a container: host network
//               vs egress through lockstep's recording proxy (body hashed and
//               kept in the content store) vs egress direct (NAT only),
//               and the CPU the proxy spent on it
//   pinned:     the same file served by the proxy from the content store (a
//               pinned fetch) vs from the origin
//   https:      the same download over HTTPS (with --https-url and the
//               origin's CA): host network vs a CONNECT tunnel through the
//               proxy vs the proxy inspecting it (egress.inspect: TLS ended
//               and opened again, body hashed and kept)
// As an ordinary user it measures the egress network without root
// (docs/rootless.md): the fabric in the helper's namespace, out through
// slirp4netns, and prints what setting that up once per run cost.
//
// Usage: bench_network --rootfs DIR --state DIR --url URL [--runs N] [--downloads N]
//                      [--https-url URL --ca PEM]
#include <linux/netlink.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "cache/blob_store.hpp"
#include "common/digest.hpp"
#include "common/userns.hpp"
#include "egress/job_egress.hpp"
#include "egress/service.hpp"
#include "executor/executor.hpp"
#include "executor/network.hpp"
#include "executor/rootless.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using namespace lockstep;
using namespace lockstep::executor;

double ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

struct Args {
  std::string rootfs, state, url, https_url, ca;
  int runs = 50;
  int downloads = 3;
};

ContainerSpec spec_for(const Args& a, const std::string& id) {
  ContainerSpec s;
  s.id = id;
  s.layers = {a.rootfs};
  return s;
}

// Seconds curl took for the body, from its own timing (connect included).
double download(Container& c, const std::string& url, bool proxy,
                std::vector<std::string> extra = {}) {
  ProcessSpec p;
  p.argv = {"curl", "-sS", "-o", "/dev/null", "-w", "%{time_total} %{size_download}\n", url};
  if (!proxy) p.argv.insert(p.argv.begin() + 1, {"--noproxy", "*"});
  p.argv.insert(p.argv.begin() + 1, extra.begin(), extra.end());
  std::string out;
  auto r = c.exec(p, [&](Stream s, std::string_view line, auto) {
    if (s == Stream::kStdout)
      out = line;
    else
      std::fprintf(stderr, "  curl: %.*s\n", static_cast<int>(line.size()), line.data());
  });
  if (!r || !r->ok()) return -1;
  return std::strtod(out.c_str(), nullptr);
}

// CPU seconds this process used so far (every thread): the egress
// service's proxy; curl and nginx are other processes.
double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return s(u.ru_utime) + s(u.ru_stime);
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--rootfs")
      a.rootfs = v;
    else if (k == "--state")
      a.state = v;
    else if (k == "--url")
      a.url = v;
    else if (k == "--runs")
      a.runs = std::stoi(v);
    else if (k == "--downloads")
      a.downloads = std::stoi(v);
    else if (k == "--https-url")
      a.https_url = v;
    else if (k == "--ca")
      a.ca = v;
  }
  if (a.rootfs.empty() || a.state.empty() || a.url.empty()) {
    std::fprintf(stderr, "usage: bench_network --rootfs DIR --state DIR --url URL [--runs N]\n");
    return 2;
  }
  auto exec = make_linux_executor(a.state);
  const bool rootless = running_rootless();
  auto t_fabric = Clock::now();
  auto fabric = rootless ? rootless_egress_fabric({}) : EgressFabric::create({});
  if (!fabric) {
    std::fprintf(stderr, "bench_network: %s\n", fabric.error().message().c_str());
    return 1;
  }
  double fabric_ms = ms(Clock::now() - t_fabric);
  // Without root the connection log's final dump is asked for by the helper.
  auto job_options = [&](const std::shared_ptr<NetworkNamespace>& ns) {
    egress::JobEgressOptions o;
    o.name = "bench";
    o.ns = ns;
    if (rootless)
      o.netlink_request = [ns](const std::string& request) {
        return rootless_netlink_request(*ns, NETLINK_NETFILTER, request);
      };
    return o;
  };
  auto service = egress::make_service();
  if (!service) {
    std::fprintf(stderr, "bench_network: %s\n", service.error().message().c_str());
    return 1;
  }

  // ---- start: none vs egress, interleaved ----
  std::vector<double> none, egress_ns, egress_full;
  for (int i = 0; i < a.runs; ++i) {
    {
      auto t0 = Clock::now();
      auto c = exec->start(spec_for(a, "bn-none-" + std::to_string(i)));
      if (!c) return std::fprintf(stderr, "%s\n", c.error().message().c_str()), 1;
      none.push_back(ms(Clock::now() - t0));
      (void)(*c)->stop(std::chrono::milliseconds(0));
    }
    {
      auto t0 = Clock::now();
      auto ns = (*fabric)->create_namespace("bench");
      if (!ns) return std::fprintf(stderr, "%s\n", ns.error().message().c_str()), 1;
      ContainerSpec s = spec_for(a, "bn-egress-" + std::to_string(i));
      s.network = {NetworkMode::kEgress, "", *ns};
      auto c = exec->start(s);
      if (!c) return std::fprintf(stderr, "%s\n", c.error().message().c_str()), 1;
      egress_ns.push_back(ms(Clock::now() - t0));
      auto j = egress::start_job_egress(**service, job_options(*ns));
      if (!j) return std::fprintf(stderr, "%s\n", j.error().message().c_str()), 1;
      egress_full.push_back(ms(Clock::now() - t0));
      (void)(*c)->stop(std::chrono::milliseconds(0));
      (void)(*j)->finish();
    }
  }
  double mn = median(none), me = median(egress_ns), mf = median(egress_full);
  std::printf(
      "egress fabric, once per run (%s): %.2f ms\n",
      rootless ? "rootless: helper, slirp4netns, bridge, rules" : "bridge, rules, forwarding",
      fabric_ms);
  std::printf("container start%s, median of %d (ms):\n", rootless ? " without root" : "", a.runs);
  std::printf("  network none                         %7.2f\n", mn);
  std::printf("  network egress (namespace, veth)     %7.2f  (+%.2f ms)\n", me, me - mn);
  std::printf("  egress + DNS stub, proxy, conn. log  %7.2f  (+%.2f ms)\n", mf, mf - mn);

  // ---- throughput ----
  cache::BlobStore store(a.state);
  auto host = exec->start([&] {
    auto s = spec_for(a, "bn-host");
    s.network.mode = NetworkMode::kHost;
    return s;
  }());
  auto ns = (*fabric)->create_namespace("bench");
  if (!host || !ns)
    return std::fprintf(stderr, "bench_network: %s\n",
                        (!host ? host.error() : ns.error()).message().c_str()),
           1;
  ContainerSpec es = spec_for(a, "bn-egress");
  es.network = {NetworkMode::kEgress, "", *ns};
  egress::JobEgressOptions o = job_options(*ns);
  o.store = &store;
  auto job = egress::start_job_egress(**service, o);
  if (!job) return std::fprintf(stderr, "%s\n", job.error().message().c_str()), 1;
  for (const auto& [k, v] : (*job)->env()) es.env.push_back(k + "=" + v);
  auto eg = exec->start(es);
  if (!eg) return std::fprintf(stderr, "%s\n", eg.error().message().c_str()), 1;

  // The same proxy without the content store: hashing only.
  auto ns3 = (*fabric)->create_namespace("bench-nokeep");
  if (!ns3) return std::fprintf(stderr, "%s\n", ns3.error().message().c_str()), 1;
  egress::JobEgressOptions no = job_options(*ns3);
  auto nj = egress::start_job_egress(**service, no);
  if (!nj) return std::fprintf(stderr, "%s\n", nj.error().message().c_str()), 1;
  ContainerSpec ns_spec = spec_for(a, "bn-nokeep");
  ns_spec.network = {NetworkMode::kEgress, "", *ns3};
  for (const auto& [k, v] : (*nj)->env()) ns_spec.env.push_back(k + "=" + v);
  auto nk = exec->start(ns_spec);
  if (!nk) return std::fprintf(stderr, "%s\n", nk.error().message().c_str()), 1;

  std::map<std::string, std::vector<double>> secs, cpu;
  // The proxy's CPU for one download, until the service is idle again (the
  // store's commit may trail the client).
  auto timed = [&](const std::string& k, Container& c, bool proxy) {
    double c0 = cpu_seconds();
    secs[k].push_back(download(c, a.url, proxy));
    for (int i = 0; i < 100; ++i) {
      double before = cpu_seconds();
      ::usleep(100000);
      if (cpu_seconds() - before < 0.005) break;
    }
    cpu[k].push_back(cpu_seconds() - c0);
  };
  for (int i = 0; i < a.downloads; ++i) {
    timed("host", **host, false);
    timed("proxy", **eg, true);
    timed("nokeep", **nk, true);
    timed("raw", **eg, false);
  }
  (void)(*nj)->finish();
  (void)(*nk)->stop(std::chrono::milliseconds(0));
  Json rec = (*job)->finish();
  (void)(*eg)->stop(std::chrono::milliseconds(0));
  std::string digest;
  uint64_t size = 0;
  for (const auto& f : rec["fetches"])
    if (f.value("url", "") == a.url && f.contains("sha256")) {
      digest = f["sha256"].get<std::string>();
      size = f.value("body_bytes", uint64_t{0});
    }
  double mb = static_cast<double>(size) / (1 << 20);
  auto rate = [&](const std::string& k) { return mb / median(secs[k]); };
  std::printf("\none download of %.0f MiB, median of %d (MiB/s):\n", mb, a.downloads);
  std::printf("  host network                         %8.1f\n", rate("host"));
  std::printf("  egress, recording proxy (kept)       %8.1f  (%.0f%% of host)\n", rate("proxy"),
              100 * rate("proxy") / rate("host"));
  std::printf("  egress, recording proxy (hash only)  %8.1f  (%.0f%% of host)\n", rate("nokeep"),
              100 * rate("nokeep") / rate("host"));
  std::printf(
      "  %s %8.1f  (%.0f%% of host)\n",
      rootless ? "egress, direct (slirp4netns)        " : "egress, direct (NAT)                ",
      rate("raw"), 100 * rate("raw") / rate("host"));
  std::printf("  the proxy's CPU per GiB, median (s): kept %.2f, hash only %.2f\n",
              median(cpu["proxy"]) * 1024 / mb, median(cpu["nokeep"]) * 1024 / mb);

  // ---- pinned: served from the store vs the origin ----
  auto ns2 = (*fabric)->create_namespace("bench-pinned");
  if (!ns2 || digest.empty()) return std::fprintf(stderr, "bench_network: no stored body\n"), 1;
  egress::JobEgressOptions po = job_options(*ns2);
  po.store = &store;
  po.pins[a.url] = digest;
  auto pj = egress::start_job_egress(**service, po);
  if (!pj) return std::fprintf(stderr, "%s\n", pj.error().message().c_str()), 1;
  ContainerSpec ps = spec_for(a, "bn-pinned");
  ps.network = {NetworkMode::kEgress, "", *ns2};
  for (const auto& [k, v] : (*pj)->env()) ps.env.push_back(k + "=" + v);
  auto pc = exec->start(ps);
  if (!pc) return std::fprintf(stderr, "%s\n", pc.error().message().c_str()), 1;
  for (int i = 0; i < a.downloads; ++i) {
    secs["pinned"].push_back(download(**pc, a.url, true));
    secs["origin"].push_back(download(**pc, a.url, false));
  }
  Json prec = (*pj)->finish();
  int from_store = 0;
  for (const auto& f : prec["fetches"]) from_store += f.value("served", "") == "store";
  (void)(*pc)->stop(std::chrono::milliseconds(0));
  (void)(*host)->stop(std::chrono::milliseconds(0));
  std::printf("\npinned fetch, median of %d (MiB/s):\n", a.downloads);
  std::printf("  origin (nginx, direct)               %8.1f\n", rate("origin"));
  std::printf(
      "  content store through the proxy      %8.1f  (%.2fx origin; %d of %d from the store)\n",
      rate("pinned"), rate("pinned") / rate("origin"), from_store, a.downloads);
  if (a.https_url.empty()) return 0;

  // ---- HTTPS: direct, an opaque tunnel, an inspected one ----
  auto inspection = egress::Inspection::create("lockstep bench CA", {a.ca});
  if (!inspection) return std::fprintf(stderr, "%s\n", inspection.error().message().c_str()), 1;
  auto with_ca = [&](ContainerSpec s) {
    s.mounts.push_back({a.ca, "/bench-ca.pem", true});
    return s;
  };
  auto hh = exec->start([&] {
    auto s = with_ca(spec_for(a, "bn-https-host"));
    s.network.mode = NetworkMode::kHost;
    return s;
  }());
  auto nt = (*fabric)->create_namespace("bench-tunnel");
  auto ni = (*fabric)->create_namespace("bench-inspect");
  if (!hh || !nt || !ni) return std::fprintf(stderr, "bench_network: https setup failed\n"), 1;
  egress::JobEgressOptions to = o, io = o;
  to.ns = *nt;
  io.ns = *ni;
  io.inspection = *inspection;
  auto tj = egress::start_job_egress(**service, to);
  auto ij = egress::start_job_egress(**service, io);
  if (!tj || !ij) return std::fprintf(stderr, "bench_network: https proxies failed\n"), 1;
  ContainerSpec ts = with_ca(spec_for(a, "bn-https-tunnel"));
  ts.network = {NetworkMode::kEgress, "", *nt};
  for (const auto& [k, v] : (*tj)->env()) ts.env.push_back(k + "=" + v);
  ContainerSpec is = spec_for(a, "bn-https-inspect");
  is.network = {NetworkMode::kEgress, "", *ni};
  for (const auto& [k, v] : (*ij)->env()) is.env.push_back(k + "=" + v);
  is.appends.push_back({"/etc/ssl/certs/ca-certificates.crt", (*inspection)->ca_pem()});
  is.env.push_back("CURL_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt");
  auto tc = exec->start(ts);
  auto ic = exec->start(is);
  if (!tc || !ic) return std::fprintf(stderr, "bench_network: https containers failed\n"), 1;
  // As `timed` above: the proxy's CPU for one download, until it is idle.
  auto timed_https = [&](const std::string& k, Container& c, bool proxy,
                         std::vector<std::string> extra) {
    double c0 = cpu_seconds();
    secs[k].push_back(download(c, a.https_url, proxy, std::move(extra)));
    for (int i = 0; i < 100; ++i) {
      double before = cpu_seconds();
      ::usleep(100000);
      if (cpu_seconds() - before < 0.005) break;
    }
    cpu[k].push_back(cpu_seconds() - c0);
  };
  for (int i = 0; i < a.downloads; ++i) {
    secs["https-host"].push_back(download(**hh, a.https_url, false, {"--cacert", "/bench-ca.pem"}));
    timed_https("https-tunnel", **tc, true, {"--cacert", "/bench-ca.pem"});
    timed_https("https-inspect", **ic, true, {});
  }
  Json irec = (*ij)->finish();
  (void)(*tj)->finish();
  int recorded = 0;
  for (const auto& f : irec["fetches"]) recorded += f.contains("sha256") && f["sha256"] == digest;
  (void)(*hh)->stop(std::chrono::milliseconds(0));
  (void)(*tc)->stop(std::chrono::milliseconds(0));
  (void)(*ic)->stop(std::chrono::milliseconds(0));
  std::printf("\none HTTPS download of %.0f MiB, median of %d (MiB/s):\n", mb, a.downloads);
  std::printf("  host network                         %8.1f\n", rate("https-host"));
  std::printf("  egress, CONNECT tunnel (bytes only)  %8.1f  (%.0f%% of host)\n",
              rate("https-tunnel"), 100 * rate("https-tunnel") / rate("https-host"));
  std::printf("  egress, inspected (hashed, kept)     %8.1f  (%.0f%% of host; %d of %d recorded)\n",
              rate("https-inspect"), 100 * rate("https-inspect") / rate("https-host"), recorded,
              a.downloads);
  std::printf("  the proxy's CPU per GiB, median (s): tunnel %.2f, inspected %.2f\n",
              median(cpu["https-tunnel"]) * 1024 / mb, median(cpu["https-inspect"]) * 1024 / mb);
  return 0;
}
