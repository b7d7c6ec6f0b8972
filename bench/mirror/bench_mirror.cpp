// lockstep's pull-through mirror against Debian's docker-registry (distribution
// 2.8) in proxy mode, both in front of the same loopback docker-registry
// holding the same image, in the same run; nginx serving the stored blob
// file with sendfile is the ceiling for warm throughput. Prints:
//   - upstream blob GETs and wall time for C concurrent cold pulls
//   - warm single-client blob throughput (MB/s, median of the turns)
//   - warm C-client throughput (MB/s, median of the turns) and the servers'
//     CPU seconds per GiB sent over those turns (steadier than MB/s on a
//     shared machine)
// and the ratios. Every server runs in its own process (the mirror in a
// child forked before any thread exists), so none shares the clients'
// process or its CPU share; every server gets the same clients. Cold pulls
// use libcurl and verify each blob. Warm runs use a minimal keep-alive
// HTTP/1.1 client that discards the body in the kernel (recv with
// MSG_TRUNC): a client that copies every byte spends about as much CPU per
// byte as a sendfile server on the same 2 cores, so this one leaves the
// numbers to the servers. `--client curl` warms with libcurl instead (a body
// copy per byte, as a real puller pays).
//
//   bench_mirror [--layers N] [--layer-mib M] [--clients C] [--rounds R]
//                [--threads T] [--turns K] [--client raw|curl]
// (--threads: the mirror's HTTP threads, default one per CPU as served;
// --turns: interleaved turns per server, the median is printed, default 5.)
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "common/fs.hpp"
#include "common/log.hpp"
#include "local_registry.hpp"
#include "nginx_front.hpp"
#include "registry-mirror/client.hpp"
#include "registry-mirror/http.hpp"
#include "registry-mirror/manifest.hpp"
#include "registry-mirror/mirror_server.hpp"
#include "test_image.hpp"

extern char** environ;

using namespace lockstep;
using namespace lockstep::registry;
using namespace lockstep::registry::testing;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "bench_mirror: error: %s\n", what.c_str());
  std::exit(1);
}

// docker-registry in proxy mode (remoteurl = the upstream), stopped on exit.
class DistributionProxy {
 public:
  explicit DistributionProxy(int upstream_port) {
    auto d = TempDir::create(std::filesystem::temp_directory_path(), "ls-bench-proxy-");
    if (!d) die(d.error().message());
    dir_ = std::move(*d);
    port_ = free_port();
    auto cfg = dir_.path() / "config.yml";
    std::string yml =
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
        "    rootdirectory: " +
        (dir_.path() / "data").string() + "\nhttp:\n  addr: 127.0.0.1:" + std::to_string(port_) +
        "\nproxy:\n  remoteurl: http://127.0.0.1:" + std::to_string(upstream_port) + "\n";
    if (!write_file_atomic(cfg, yml)) die("write proxy config");
    std::string cfg_s = cfg.string();
    char* argv[] = {const_cast<char*>(LocalRegistry::kBinary), const_cast<char*>("serve"),
                    cfg_s.data(), nullptr};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    std::string log = (dir_.path() / "proxy.log").string();
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    if (::posix_spawn(&pid_, LocalRegistry::kBinary, &fa, nullptr, argv, environ) != 0)
      die("spawn docker-registry proxy");
    posix_spawn_file_actions_destroy(&fa);
    if (!wait_for_port(port_)) die("docker-registry proxy did not start");
  }
  ~DistributionProxy() {
    ::kill(pid_, SIGTERM);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  pid_t pid() const { return pid_; }

 private:
  TempDir dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

struct Image {
  TestImage img;
  std::vector<Digest> blobs;  // config + layers
};

// GET, body discarded; returns bytes received (0 on failure).
uint64_t fetch(HttpSession& s, const std::string& url, std::vector<std::string> headers = {}) {
  HttpRequest req;
  req.url = url;
  req.headers = std::move(headers);
  uint64_t n = 0;
  req.on_data = [&](const char*, size_t len) -> Status {
    n += len;
    return {};
  };
  auto r = s.perform(req);
  if (!r || r->status != 200) return 0;
  return n;
}

struct ColdResult {
  double seconds = 0;
  int failures = 0;
};

// C clients pull the whole image at once: manifest by tag, then every blob,
// each verified by digest.
ColdResult cold_pulls(const std::string& base, const Image& im, int clients) {
  std::atomic<int> failures{0};
  auto t0 = Clock::now();
  std::vector<std::thread> ts;
  for (int i = 0; i < clients; ++i) {
    ts.emplace_back([&] {
      HttpSession s;
      HttpRequest m;
      m.url = base + "/v2/app/manifests/v1";
      m.headers.push_back("Accept: " + manifest_accept_header());
      auto r = s.perform(m);
      if (!r || r->status != 200) {
        ++failures;
        return;
      }
      for (const auto& d : im.blobs) {
        HttpRequest b;
        b.url = base + "/v2/app/blobs/" + d.str();
        Sha256 h;
        b.on_data = [&](const char* p, size_t n) -> Status {
          h.update(p, n);
          return {};
        };
        auto br = s.perform(b);
        if (!br || br->status != 200 || h.finish() != d) ++failures;
      }
    });
  }
  for (auto& t : ts) t.join();
  return {seconds_since(t0), failures.load()};
}

// One kept-alive HTTP/1.1 connection to 127.0.0.1 that GETs a path and
// discards the body without copying it (see the file comment).
class RawClient {
 public:
  explicit RawClient(const std::string& url) {
    // "http://127.0.0.1:PORT/path"
    auto colon = url.find(':', 7);
    auto slash = url.find('/', colon);
    port_ = std::atoi(url.substr(colon + 1, slash - colon - 1).c_str());
    request_ = "GET " + url.substr(slash) +
               " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port_) +
               "\r\nUser-Agent: bench_mirror\r\n\r\n";
  }
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  // Body bytes of one 200 response; 0 on any failure.
  uint64_t get() {
    if (fd_ < 0 && !connect()) return 0;
    if (::send(fd_, request_.data(), request_.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(request_.size()))
      return fail();
    std::string head;
    char buf[4096];
    size_t end = std::string::npos;
    while (end == std::string::npos) {
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return fail();
      head.append(buf, static_cast<size_t>(n));
      end = head.find("\r\n\r\n");
    }
    if (head.compare(0, 12, "HTTP/1.1 200") != 0) return fail();
    uint64_t length = 0;
    for (const char* name : {"\r\nContent-Length: ", "\r\ncontent-length: "})
      if (auto p = head.find(name); p != std::string::npos && p < end)
        length = std::strtoull(head.c_str() + p + std::strlen(name), nullptr, 10);
    uint64_t have = head.size() - (end + 4);
    while (have < length) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(length - have, 64u << 20));
      ssize_t n = ::recv(fd_, buf, want, MSG_TRUNC | MSG_WAITALL);
      if (n <= 0) return fail();
      have += static_cast<uint64_t>(n);
    }
    return length;
  }

 private:
  bool connect() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port_));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  uint64_t fail() {
    ::close(fd_);
    fd_ = -1;
    return 0;
  }
  int port_ = 0;
  int fd_ = -1;
  std::string request_;
};

bool g_curl_client = false;  // --client curl

// CPU seconds (user + system) used so far by `pid` and its direct children
// (nginx's workers): how much of the machine a server spends, which on a
// shared machine is steadier than wall-clock throughput.
double cpu_seconds(pid_t pid) {
  auto fields = [](const std::string& stat) {
    std::vector<std::string> f;
    auto close = stat.rfind(')');  // the command name may hold spaces
    std::string rest = close == std::string::npos ? "" : stat.substr(close + 2);
    size_t p = 0;
    while (p < rest.size()) {
      size_t q = rest.find(' ', p);
      if (q == std::string::npos) q = rest.size();
      f.push_back(rest.substr(p, q - p));
      p = q + 1;
    }
    return f;  // f[0] is field 3 (state): ppid f[1], utime f[11], stime f[12]
  };
  double ticks = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "stat");
    std::string stat;
    std::getline(in, stat);
    auto f = fields(stat);
    if (f.size() < 13) continue;
    if (std::atoi(name.c_str()) != pid && std::atoi(f[1].c_str()) != pid) continue;
    ticks += std::atof(f[11].c_str()) + std::atof(f[12].c_str());
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// MB/s of `clients` clients each GETting `url` `rounds` times.
double throughput(const std::string& url, int clients, int rounds) {
  std::atomic<uint64_t> total{0};
  std::atomic<int> failures{0};
  auto t0 = Clock::now();
  std::vector<std::thread> ts;
  for (int i = 0; i < clients; ++i) {
    ts.emplace_back([&] {
      if (!g_curl_client) {
        RawClient c(url);
        for (int r = 0; r < rounds; ++r) {
          uint64_t n = c.get();
          if (n == 0) ++failures;
          total += n;
        }
        return;
      }
      HttpSession s;  // one kept-alive connection per client
      for (int r = 0; r < rounds; ++r) {
        uint64_t n = fetch(s, url);
        if (n == 0) ++failures;
        total += n;
      }
    });
  }
  for (auto& t : ts) t.join();
  double secs = seconds_since(t0);
  if (failures) die(std::to_string(failures.load()) + " failed GETs of " + url);
  return static_cast<double>(total.load()) / (1 << 20) / secs;
}

}  // namespace

int main(int argc, char** argv) {
  setup_logging(Verbosity::kNormal);  // warnings only, on stderr
  int layers = 5, layer_mib = 16, clients = 16, rounds = 4, threads = 0, turns = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    int v = std::atoi(argv[i + 1]);
    if (k == "--client" &&
        (std::string(argv[i + 1]) == "raw" || std::string(argv[i + 1]) == "curl"))
      g_curl_client = std::string(argv[i + 1]) == "curl";
    else if (k == "--turns" && v > 0)
      turns = v;
    else if (k == "--layers")
      layers = v;
    else if (k == "--layer-mib")
      layer_mib = v;
    else if (k == "--clients")
      clients = v;
    else if (k == "--rounds")
      rounds = v;
    else if (k == "--threads")
      threads = v;
    else
      die("unknown option " + k);
  }
  if (!LocalRegistry::available() || !Nginx::available())
    die("needs /usr/bin/docker-registry and /usr/sbin/nginx (scripts/setup.sh)");

  auto upstream = LocalRegistry::start();
  if (!upstream) die(upstream.error().message());
  ClientOptions o;
  o.credentials = CredentialStore{};
  auto client = RegistryClient::create(o);
  if (!client) die(client.error().message());
  Image im;
  {
    std::vector<std::vector<TarEntry>> ls;
    for (int i = 0; i < layers; ++i)
      ls.push_back({file("data", random_bytes(static_cast<size_t>(layer_mib) << 20, 100 + i))});
    im.img = make_image(ls, Compression::kNone);
    im.blobs.push_back(im.img.config.digest);
    for (const auto& l : im.img.layers) im.blobs.push_back(l.digest);
    auto ref = Reference::parse(upstream->domain() + "/app:v1");
    if (!push_image(*client, *ref, im.img)) die("push test image");
  }
  std::printf(
      "image: %d layers x %d MiB (+config) = %zu blobs; %d clients; warm: %s client, "
      "median of %d turns\n",
      layers, layer_mib, im.blobs.size(), clients, g_curl_client ? "libcurl" : "raw", turns);

  // --- lockstep mirror ---------------------------------------------------
  auto state = TempDir::create(std::filesystem::temp_directory_path(), "ls-bench-mirror-");
  if (!state) die(state.error().message());
  MirrorConfig cfg;
  cfg.listen_port = 0;
  cfg.state_dir = state->path();
  cfg.access_log = state->path() / "access.log";
  cfg.threads = static_cast<unsigned>(threads);
  UpstreamConfig up;
  up.name = "local";
  up.url = "http://" + upstream->domain();
  cfg.upstreams.push_back(up);
  cfg.listen_port = static_cast<uint16_t>(free_port());
  const std::string mirror = "http://127.0.0.1:" + std::to_string(cfg.listen_port);
  // The server makes its threads in create(): fork first.
  pid_t mirror_pid = ::fork();
  if (mirror_pid < 0) die("fork the mirror");
  if (mirror_pid == 0) {  // serves until SIGTERM; leaves the parent's temp dirs alone
    auto server = MirrorServer::create(cfg);
    if (!server) {
      std::fprintf(stderr, "bench_mirror: error: %s\n", server.error().message().c_str());
      std::_Exit(1);
    }
    auto st = (*server)->run(true);
    std::_Exit(st ? 0 : 1);
  }
  if (!wait_for_port(cfg.listen_port)) die("the mirror did not start");

  const std::string blob_get = "GET /v2/app/blobs/";
  int before = upstream->count_requests(blob_get);
  ColdResult ours = cold_pulls(mirror, im, clients);
  int ours_gets = upstream->count_requests(blob_get) - before;

  // --- distribution proxy -------------------------------------------------
  DistributionProxy dist(upstream->port());
  before = upstream->count_requests(blob_get);
  ColdResult theirs = cold_pulls(dist.url(), im, clients);
  // distribution finishes filling its cache after answering: let it settle
  // before counting and before the warm runs.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  int theirs_gets = upstream->count_requests(blob_get) - before;

  // --- warm throughput -----------------------------------------------------
  const Digest& big = im.img.layers.back().digest;
  NginxOptions no;
  no.static_root = state->path() / "blobs" / "sha256";
  no.workers = 2;
  auto nginx = Nginx::start(no);
  if (!nginx) die(nginx.error().message());
  const std::string ours_url = mirror + "/v2/app/blobs/" + big.str();
  const std::string theirs_url = dist.url() + "/v2/app/blobs/" + big.str();
  const std::string nginx_url = nginx->url() + "/" + big.hex();
  // One warm-up GET each, so that every server reads from the page cache.
  for (const auto& u : {ours_url, theirs_url, nginx_url}) (void)throughput(u, 1, 1);
  // The three servers take turns, `turns` times; the median of each is
  // printed (the machine is shared: turns spread the noise evenly).
  std::vector<double> o1, t1, n1, on, tn, nn;
  double cpu[3] = {0, 0, 0};  // server CPU seconds over the C-client turns
  const pid_t pids[3] = {mirror_pid, dist.pid(), nginx->pid()};
  auto timed = [&](int server, const std::string& url) {
    double c0 = cpu_seconds(pids[server]);
    double mbs = throughput(url, clients, rounds);
    cpu[server] += cpu_seconds(pids[server]) - c0;
    return mbs;
  };
  for (int rep = 0; rep < turns; ++rep) {
    o1.push_back(throughput(ours_url, 1, rounds * 2));
    t1.push_back(throughput(theirs_url, 1, rounds * 2));
    n1.push_back(throughput(nginx_url, 1, rounds * 2));
    on.push_back(timed(0, ours_url));
    tn.push_back(timed(1, theirs_url));
    nn.push_back(timed(2, nginx_url));
  }
  // Every server sent the same bytes in those turns.
  const double gib = static_cast<double>(turns) * clients * rounds * layer_mib / 1024.0;
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  double ours_1 = median(o1), theirs_1 = median(t1), nginx_1 = median(n1);
  double ours_n = median(on), theirs_n = median(tn), nginx_n = median(nn);

  ::kill(mirror_pid, SIGTERM);
  int wst = 0;
  ::waitpid(mirror_pid, &wst, 0);

  std::printf("\n%-44s %12s %14s %10s %8s\n", "", "lockstep", "distribution", "ratio", "");
  std::printf("%-44s %12d %14d %9.1fx  (ideal: %zu)\n",
              ("upstream blob GETs, " + std::to_string(clients) + " cold pulls").c_str(), ours_gets,
              theirs_gets, theirs_gets / static_cast<double>(std::max(1, ours_gets)),
              im.blobs.size());
  std::printf("%-44s %11.2fs %13.2fs %9.2fx\n",
              ("wall time, " + std::to_string(clients) + " cold pulls").c_str(), ours.seconds,
              theirs.seconds, theirs.seconds / ours.seconds);
  std::printf("%-44s %12d %14d\n", "failed or corrupt blobs in cold pulls", ours.failures,
              theirs.failures);
  std::printf("%-44s %10.0f MB/s %9.0f MB/s %8.2fx\n", "warm throughput, 1 client", ours_1,
              theirs_1, ours_1 / theirs_1);
  std::printf("%-44s %10.0f MB/s %9.0f MB/s %8.2fx\n",
              ("warm throughput, " + std::to_string(clients) + " clients").c_str(), ours_n,
              theirs_n, ours_n / theirs_n);
  std::printf("%-44s %9.2f s/GiB %8.2f s/GiB %8.2fx\n",
              ("server CPU per GiB, " + std::to_string(clients) + " clients").c_str(), cpu[0] / gib,
              cpu[1] / gib, cpu[1] / std::max(cpu[0], 1e-9));
  std::printf("\nceiling: nginx sendfile of the same blob file\n");
  std::printf("%-44s %10.0f MB/s   lockstep at %.0f%% of nginx\n", "warm throughput, 1 client",
              nginx_1, 100.0 * ours_1 / nginx_1);
  std::printf("%-44s %10.0f MB/s   lockstep at %.0f%% of nginx\n",
              ("warm throughput, " + std::to_string(clients) + " clients").c_str(), nginx_n,
              100.0 * ours_n / nginx_n);
  std::printf("%-44s %9.2f s/GiB   lockstep uses %.2fx nginx's CPU\n",
              ("server CPU per GiB, " + std::to_string(clients) + " clients").c_str(), cpu[2] / gib,
              cpu[0] / std::max(cpu[2], 1e-9));
  return 0;
}
