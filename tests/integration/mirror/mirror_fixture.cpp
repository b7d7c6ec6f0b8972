#include "mirror_fixture.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include "common/fd.hpp"

extern char** environ;

namespace lockstep::registry::testing {

Result<std::unique_ptr<InProcessMirror>> InProcessMirror::start(MirrorConfig cfg) {
  cfg.listen_host = "127.0.0.1";
  cfg.listen_port = 0;
  LS_TRY_ASSIGN(auto server, MirrorServer::create(std::move(cfg)));
  auto m = std::make_unique<InProcessMirror>();
  m->port_ = server->port();
  m->server_ = std::move(server);
  m->thread_ = std::thread([s = m->server_.get()] { (void)s->run(false); });
  return m;
}

InProcessMirror::~InProcessMirror() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

Result<MirrorProcess> MirrorProcess::start(const std::vector<std::string>& args) {
  MirrorProcess p;
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return fail_errno("pipe");
  UniqueFd rd(out[0]), wr(out[1]);
  std::vector<std::string> store = {MIRROR_TESTD};
  store.insert(store.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : store) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, wr.get(), 1);
  int rc = ::posix_spawn(&p.pid_, MIRROR_TESTD, &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return fail(Error::from_errno("spawn mirror", rc));
  wr.reset();
  // The child prints "listening on port N" once bound.
  std::string line;
  char c;
  while (::read(rd.get(), &c, 1) == 1 && c != '\n') line += c;
  auto pos = line.rfind(' ');
  if (line.rfind("listening on port ", 0) != 0 || pos == std::string::npos)
    return fail("mirror child did not start: '" + line + "'");
  p.port_ = std::stoi(line.substr(pos + 1));
  return p;
}

MirrorProcess::MirrorProcess(MirrorProcess&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)), port_(o.port_) {}

MirrorProcess::~MirrorProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    wait();
  }
}

void MirrorProcess::kill(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

int MirrorProcess::wait() {
  int st = 0;
  if (pid_ > 0) ::waitpid(pid_, &st, 0);
  pid_ = -1;
  return st;
}

Fetched http_get(const std::string& url, const std::string& method,
                 const std::vector<std::string>& headers) {
  HttpSession s;
  HttpRequest req;
  req.method = method;
  req.url = url;
  req.headers = headers;
  req.max_body = 512u << 20;
  Fetched f;
  auto r = s.perform(req);
  if (!r) {
    f.error = r.error().message();
    return f;
  }
  f.status = r->status;
  f.body = r->body;
  f.resp = *r;
  return f;
}

Streamed get_hashed(HttpSession& s, const std::string& url) {
  Sha256 h;
  Streamed out;
  HttpRequest req;
  req.url = url;
  req.on_data = [&](const char* p, size_t n) -> Status {
    h.update(p, n);
    out.size += n;
    return {};
  };
  auto r = s.perform(req);
  if (!r) {
    out.error = r.error().message();
    return out;
  }
  out.status = r->status;
  out.digest = h.finish();
  return out;
}

TestImage big_image(int layers, size_t layer_size, uint64_t seed) {
  std::vector<std::vector<TarEntry>> ls;
  for (int i = 0; i < layers; ++i)
    ls.push_back({file("data" + std::to_string(i), random_bytes(layer_size, seed + i))});
  return make_image(ls, Compression::kNone);
}

std::vector<Digest> blobs_of(const TestImage& img) {
  std::vector<Digest> v{img.config.digest};
  for (const auto& l : img.layers) v.push_back(l.digest);
  return v;
}

void MirrorTest::SetUp() {
  if (!LocalRegistry::available()) GTEST_SKIP() << "needs " << LocalRegistry::kBinary;
  auto r = LocalRegistry::start();
  ASSERT_TRUE(r) << r.error().message();
  registry_.emplace(std::move(*r));
  auto s = TempDir::create(std::filesystem::temp_directory_path(), "ls-mirror-state-");
  ASSERT_TRUE(s) << s.error().message();
  state_ = std::move(*s);
  ClientOptions o;
  o.credentials = CredentialStore{};
  o.max_attempts = 2;
  o.backoff_initial = std::chrono::milliseconds(10);
  auto c = RegistryClient::create(o);
  ASSERT_TRUE(c) << c.error().message();
  client_.emplace(std::move(*c));
}

void MirrorTest::start_mirror(std::string upstream_url, std::chrono::seconds ttl, unsigned budget,
                              uint64_t max_size) {
  MirrorConfig cfg;
  UpstreamConfig u;
  u.name = "local";
  u.url = upstream_url.empty() ? "http://" + registry_->domain() : upstream_url;
  u.manifest_budget = budget;
  cfg.upstreams.push_back(u);
  cfg.state_dir = state_.path();
  cfg.tag_ttl = ttl;
  cfg.max_size = max_size;
  cfg.access_log = state_.path() / "access.log";
  auto m = InProcessMirror::start(cfg);
  ASSERT_TRUE(m) << m.error().message();
  mirror_ = std::move(*m);
}

void MirrorTest::push(const std::string& name_tag, const TestImage& img) {
  auto ref = Reference::parse(registry_->domain() + "/" + name_tag);
  ASSERT_TRUE(ref) << ref.error().message();
  auto st = push_image(*client_, *ref, img);
  ASSERT_TRUE(st) << st.error().message();
}

}  // namespace lockstep::registry::testing
