#include "tests/integration/server/server_fixture.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "executor/network.hpp"
#include "registry-mirror/http.hpp"
#include "server/pg.hpp"
#include "tests/support/lockstep_process.hpp"

namespace lockstep::testing {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

namespace {

uint16_t free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  uint16_t port = 0;
  if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(s);
  return port;
}

std::string hmac_sha256_hex(const std::string& key, const std::string& body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &len);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[mac[i] >> 4];
    out += hex[mac[i] & 15];
  }
  return out;
}

const char* kPgBin = "/usr/lib/postgresql/15/bin";

// PostgreSQL refuses to run as root: as root its programs run as `postgres`.
std::vector<std::string> as_pg(std::vector<std::string> argv) {
  if (::geteuid() == 0)
    argv.insert(argv.begin(), {"/usr/sbin/runuser", "-u", "postgres", "--", "env", "-C", "/"});
  return argv;
}

// Every process whose command line names `dir` (jobs of agents under it,
// PostgreSQL's processes).
std::vector<pid_t> processes_under(const fs::path& dir) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t pid = std::stoi(name);
    if (pid == ::getpid()) continue;
    std::string cmd = slurp(e.path() / "cmdline");
    if (cmd.find(dir.string()) != std::string::npos) out.push_back(pid);
  }
  return out;
}

}  // namespace

FakeForge::FakeForge(int failures) : failures_(failures) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::listen(listen_fd_, 16) == 0 &&
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port_ = ntohs(a.sin_port);
  thread_ = std::thread([this] { serve(); });
}

FakeForge::~FakeForge() {
  stop_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  if (int c = client_.load(); c >= 0) ::shutdown(c, SHUT_RDWR);
  thread_.join();
  ::close(listen_fd_);
}

std::vector<FakeForge::Call> FakeForge::calls() {
  std::lock_guard<std::mutex> l(mu_);
  return calls_;
}

// One request per connection (the sender closes or reuses; a reused
// connection gets its next request read the same way).
void FakeForge::serve() {
  while (!stop_) {
    int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
      if (stop_) return;
      continue;
    }
    client_ = c;
    std::string in;
    char buf[8192];
    for (;;) {
      size_t head_end = in.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        std::string head = in.substr(0, head_end);
        std::string lower = head;
        for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        size_t length = 0;
        if (auto at = lower.find("content-length:"); at != std::string::npos)
          length = std::stoul(head.substr(at + 15));
        if (in.size() >= head_end + 4 + length) {
          Call call;
          std::istringstream line(head.substr(0, head.find("\r\n")));
          line >> call.method >> call.path;
          if (auto at = lower.find("authorization:"); at != std::string::npos)
            call.authorization = head.substr(at + 15, head.find("\r\n", at) - at - 15);
          call.body = in.substr(head_end + 4, length);
          in.erase(0, head_end + 4 + length);
          {
            std::lock_guard<std::mutex> l(mu_);
            call.answered = static_cast<long>(calls_.size()) < failures_ ? 500 : 201;
            calls_.push_back(call);
          }
          std::string reply =
              call.answered == 500
                  ? "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"
                  : "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}";
          (void)!::write(c, reply.data(), reply.size());
          continue;
        }
      }
      ssize_t n = ::read(c, buf, sizeof buf);
      if (n <= 0) break;
      in.append(buf, static_cast<size_t>(n));
    }
    client_ = -1;
    ::close(c);
  }
}

json HttpReply::json() const {
  return json::parse(body, nullptr, false);
}

void ServerFixture::run_ok(const std::vector<std::string>& argv, const fs::path& cwd) {
  auto r = run_process(argv, {}, cwd);
  ASSERT_EQ(r.exit_code, 0) << argv[0] << " " << (argv.size() > 1 ? argv[1] : "") << ": " << r.err
                            << r.out;
}

void ServerFixture::SetUp() {
  if (::access((std::string(kPgBin) + "/initdb").c_str(), X_OK) != 0)
    GTEST_SKIP() << "needs Debian's postgresql-15 (initdb, pg_ctl)";
  if (::geteuid() == 0 && !::getpwnam("postgres"))
    GTEST_SKIP() << "needs the postgres user to run PostgreSQL as root";
  std::string tmpl = (fs::temp_directory_path() / "lockstep-server-it-XXXXXX").string();
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  root_ = tmpl;
  ::chmod(root_.c_str(), 0755);  // the postgres user passes through

  // PostgreSQL: its own cluster on a free loopback port, no Unix socket.
  fs::path pg = root_ / "pg";
  fs::create_directories(pg);
  ::chmod(pg.c_str(), 0700);
  if (::geteuid() == 0) {
    passwd* pw = ::getpwnam("postgres");
    ASSERT_EQ(::chown(pg.c_str(), pw->pw_uid, pw->pw_gid), 0);
  }
  run_ok(as_pg({std::string(kPgBin) + "/initdb", "-D", (pg / "data").string(), "-U", "lockstep",
                "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-instructions"}));
  pg_port_ = free_port();
  {
    std::ofstream conf(pg / "data" / "postgresql.conf", std::ios::app);
    conf << "\nlisten_addresses = '127.0.0.1'\nport = " << pg_port_
         << "\nunix_socket_directories = ''\nfsync = off\nsynchronous_commit = off\n";
  }
  run_ok(as_pg({std::string(kPgBin) + "/pg_ctl", "-D", (pg / "data").string(), "-l",
                (pg / "log").string(), "-w", "-t", "60", "-s", "start"}));
  pg_started_ = true;
  {
    auto c = server::pg::Conn::connect("host=127.0.0.1 port=" + std::to_string(pg_port_) +
                                       " user=lockstep dbname=postgres");
    ASSERT_TRUE(c) << c.error().message();
    ASSERT_TRUE(c->exec("CREATE DATABASE lockstep"));
  }
  db_url_ = "postgresql://lockstep@127.0.0.1:" + std::to_string(pg_port_) + "/lockstep";

  // The repository: a bare one the server fetches from, and a work tree.
  run_ok({"/usr/bin/git", "init", "-q", "--bare", "-b", "main", (root_ / "repo.git").string()});
  run_ok({"/usr/bin/git", "init", "-q", "-b", "main", (root_ / "work").string()});
  std::ofstream(root_ / "secret") << secret_;
  fs::create_directories(root_ / "server-home");
  auto r = run_process({LOCKSTEP_BINARY, "server", "repo", "add", "o/r", "--forge", "github",
                        "--clone-url", (root_ / "repo.git").string(), "--webhook-secret-file",
                        (root_ / "secret").string(), "--db", db_url_},
                       {"LOCKSTEP_HOME=" + (root_ / "server-home").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

void ServerFixture::TearDown() {
  for (auto& [name, a] : agents_) stop_child(a);
  // An agent keeps its jobs' egress network between them and removes it when
  // it stops; what a SIGKILLed agent kept goes at the next reaper, as after a
  // killed `lockstep run`.
  EXPECT_TRUE(executor::reap_stale_networks());
  stop_child(server_);
  if (pg_started_) {
    auto r =
        run_process(as_pg({std::string(kPgBin) + "/pg_ctl", "-D", (root_ / "pg" / "data").string(),
                           "-m", "immediate", "-w", "-s", "stop"}));
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  if (root_.empty()) return;
  // Nothing of the test may outlive it: a process left here is a failure.
  // (Processes end asynchronously: PostgreSQL's postmaster may still be
  // exiting when pg_ctl has seen its pid file go.)
  std::vector<pid_t> left;
  eventually([&] { return (left = processes_under(root_)).empty(); }, std::chrono::seconds(10));
  std::string names;
  for (pid_t p : left) names += " " + slurp("/proc/" + std::to_string(p) + "/comm");
  EXPECT_TRUE(left.empty()) << left.size() << " process(es) outlived the test:" << names;
  for (pid_t p : left) ::kill(p, SIGKILL);
  std::error_code ec;
  fs::remove_all(root_, ec);
}

Child ServerFixture::spawn(const std::vector<std::string>& argv, const fs::path& home,
                           const std::string& log_name) {
  Child c;
  c.log = root_ / log_name;
  std::vector<std::string> env_store;
  for (char** e = environ; *e; ++e)
    if (std::string(*e).rfind("LOCKSTEP_HOME=", 0) != 0) env_store.emplace_back(*e);
  env_store.push_back("LOCKSTEP_HOME=" + home.string());
  std::vector<char*> envp, args;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_store = argv;
  for (auto& a : argv_store) args.push_back(a.data());
  args.push_back(nullptr);
  int out = ::open(c.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  c.pid = ::fork();
  if (c.pid == 0) {
    ::setpgid(0, 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  ::close(out);
  return c;
}

void ServerFixture::stop_child(Child& c) {
  if (!c.running()) return;
  ::kill(c.pid, SIGTERM);
  int st = 0;
  for (int i = 0; i < 300; ++i) {  // up to 15 s for a clean stop
    if (::waitpid(c.pid, &st, WNOHANG) == c.pid) {
      c.pid = -1;
      return;
    }
    std::this_thread::sleep_for(50ms);
  }
  ADD_FAILURE() << "pid " << c.pid << " did not stop on SIGTERM; killed";
  ::kill(c.pid, SIGKILL);
  ::waitpid(c.pid, &st, 0);
  c.pid = -1;
}

void ServerFixture::restart_postgres() {
  run_ok(as_pg({std::string(kPgBin) + "/pg_ctl", "-D", (root_ / "pg" / "data").string(), "-l",
                (root_ / "pg" / "log").string(), "-m", "fast", "-w", "-t", "60", "-s", "restart"}));
}

void ServerFixture::start_server(double lease_seconds) {
  if (port_ == 0) port_ = free_port();
  server_ = spawn({LOCKSTEP_BINARY, "server", "--listen", "127.0.0.1:" + std::to_string(port_),
                   "--db", db_url_, "--lease-seconds", std::to_string(lease_seconds)},
                  root_ / "server-home", "server.log");
  ASSERT_TRUE(eventually([&] { return get("/api/repos").status == 200; }))
      << "the server did not come up; its log is in " << server_.log;
}

void ServerFixture::start_server_without_db(const fs::path& home) {
  if (port_ == 0) port_ = free_port();
  server_ = spawn({LOCKSTEP_BINARY, "server", "--listen", "127.0.0.1:" + std::to_string(port_)},
                  home, "server-solo.log");
  ASSERT_TRUE(eventually([&] { return get("/api/repos").status == 200; }))
      << "the server did not come up; its log is in " << server_.log;
}

std::string ServerFixture::agent_token(const std::string& name) {
  if (auto it = tokens_.find(name); it != tokens_.end()) return it->second;
  auto r = run_process({LOCKSTEP_BINARY, "server", "agent-token", "add", name, "--db", db_url_},
                       {"LOCKSTEP_HOME=" + (root_ / "server-home").string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::string t = r.out;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  return tokens_[name] = t;
}

std::string ServerFixture::push_pull_head(const std::string& text, const std::string& ref) {
  git({"checkout", "-q", "-b", "feature"});
  std::ofstream(root_ / "work" / "feature.txt") << text;
  git({"add", "feature.txt"});
  git({"commit", "-q", "-m", "feature"});
  std::string head = git({"rev-parse", "HEAD"}).substr(0, 40);
  git({"push", "-q", (root_ / "repo.git").string(), "HEAD:" + ref});
  git({"checkout", "-q", "main"});
  return head;
}

HttpReply ServerFixture::pull_request_hook(const std::string& delivery, int number,
                                           const std::string& base, const std::string& head) {
  json body = {
      {"action", "opened"},
      {"number", number},
      {"pull_request",
       {{"number", number},
        {"base", {{"ref", "main"}, {"sha", base}}},
        {"head", {{"ref", "feature"}, {"sha", head}, {"repo", {{"full_name", "o/r"}}}}}}},
      {"repository", {{"full_name", "o/r"}, {"clone_url", (root_ / "repo.git").string()}}}};
  return github_hook("pull_request", delivery, body.dump());
}

void ServerFixture::import_busybox(const std::string& name) {
  fs::path home = root_ / ("agent-" + name);
  fs::create_directories(home);
  fs::path rootfs = root_ / "busybox-rootfs";
  if (!fs::exists(rootfs))
    run_ok({"/bin/bash", std::string(LOCKSTEP_SOURCE_DIR) + "/scripts/busybox-rootfs.sh",
            rootfs.string()});
  auto r = run_process(
      {LOCKSTEP_BINARY, "image", "import", rootfs.string(), "--tag", "localhost/busybox:test"},
      {"LOCKSTEP_HOME=" + home.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

Child& ServerFixture::start_agent(const std::string& name, int slots, const std::string& executor) {
  fs::path home = root_ / ("agent-" + name);
  fs::create_directories(home);
  Child c =
      spawn({LOCKSTEP_BINARY, "agent", "--server", "http://127.0.0.1:" + std::to_string(port_),
             "--token", agent_token(name), "--name", name, "--slots", std::to_string(slots),
             "--executor", executor, "--trace", (root_ / "trace").string()},
            home, "agent-" + name + ".log");
  return agents_[name] = c;
}

std::string ServerFixture::commit(const std::map<std::string, std::string>& files) {
  fs::path work = root_ / "work";
  for (const auto& [path, content] : files) {
    fs::create_directories((work / path).parent_path());
    std::ofstream(work / path) << content;
  }
  run_ok({"/usr/bin/git", "add", "-A"}, work);
  run_ok({"/usr/bin/git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q",
          "-m", "change"},
         work);
  run_ok({"/usr/bin/git", "push", "-q", (root_ / "repo.git").string(), "main"}, work);
  auto r = run_process({"/usr/bin/git", "rev-parse", "HEAD"}, {}, work);
  std::string sha = r.out.substr(0, 40);
  return sha;
}

HttpReply ServerFixture::push_hook(const std::string& delivery, const std::string& sha,
                                   const std::string& secret, const std::string& repo,
                                   const std::string& body_override) {
  std::string body = body_override;
  if (body.empty())
    body = json{{"ref", "refs/heads/main"},
                {"before", parent_sha_},
                {"after", sha},
                {"repository", {{"full_name", repo}, {"clone_url", (root_ / "repo.git").string()}}}}
               .dump();
  registry::HttpRequest req;
  req.method = "POST";
  req.url = "http://127.0.0.1:" + std::to_string(port_) + "/hooks/github";
  req.headers = {"Content-Type: application/json", "X-GitHub-Event: push",
                 "X-GitHub-Delivery: " + delivery};
  if (!secret.empty())
    req.headers.push_back("X-Hub-Signature-256: sha256=" + hmac_sha256_hex(secret, body));
  req.body = body;
  registry::HttpSession http;
  auto r = http.perform(req);
  if (!r) return {};
  return {r->status, r->body};
}

HttpReply ServerFixture::github_hook(const std::string& event, const std::string& delivery,
                                     const std::string& body) {
  registry::HttpRequest req;
  req.method = "POST";
  req.url = "http://127.0.0.1:" + std::to_string(port_) + "/hooks/github";
  req.headers = {"Content-Type: application/json", "X-GitHub-Event: " + event,
                 "X-GitHub-Delivery: " + delivery,
                 "X-Hub-Signature-256: sha256=" + hmac_sha256_hex(secret_, body)};
  req.body = body;
  registry::HttpSession http;
  auto r = http.perform(req);
  if (!r) return {};
  return {r->status, r->body};
}

std::string ServerFixture::git(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/git", "-c", "user.name=t", "-c",
                                   "user.email=t@example.com"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = run_process(argv, {}, root_ / "work");
  EXPECT_EQ(r.exit_code, 0) << "git " << args[0] << ": " << r.err;
  return r.out;
}

HttpReply ServerFixture::post(const std::string& path, const std::optional<std::string>& token) {
  std::string t = token ? *token : slurp(root_ / "server-home" / "server" / "admin-token");
  while (!t.empty() && t.back() == '\n') t.pop_back();
  registry::HttpRequest req;
  req.method = "POST";
  req.url = "http://127.0.0.1:" + std::to_string(port_) + path;
  req.headers = {"Authorization: Bearer " + t};
  req.timeout_ms = 10'000;
  registry::HttpSession http;
  auto r = http.perform(req);
  if (!r) return {};
  return {r->status, r->body};
}

json ServerFixture::runs() {
  auto r = get("/api/runs");
  json j = r.json();
  return r.status == 200 && j.is_array() ? j : json::array();
}

HttpReply ServerFixture::get(const std::string& path) {
  registry::HttpRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(port_) + path;
  req.timeout_ms = 10'000;
  registry::HttpSession http;
  auto r = http.perform(req);
  if (!r) return {};
  return {r->status, r->body};
}

int64_t ServerFixture::count(const std::string& table) {
  auto c = server::pg::Conn::connect(db_url_);
  if (!c) return -1;
  auto r = c->exec("SELECT count(*) FROM " + table);
  return r ? r->i64(0, 0) : -1;
}

bool ServerFixture::eventually(const std::function<bool()>& what, std::chrono::seconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (what()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return what();
}

json ServerFixture::finished_run(int64_t id) {
  json run;
  bool ended = eventually([&] {
    auto r = get("/api/runs/" + std::to_string(id));
    if (r.status != 200) return false;
    run = r.json();
    std::string st = run["run"].value("status", "");
    return st == "success" || st == "failure" || st == "cancelled";
  });
  EXPECT_TRUE(ended) << "run " << id << " did not end: " << run.dump();
  return run;
}

std::vector<TraceEvent> ServerFixture::trace() const {
  std::vector<TraceEvent> out;
  std::ifstream f(root_ / "trace");
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream s(line);
    TraceEvent e;
    if (s >> e.event >> e.job >> e.attempt >> e.ns) out.push_back(e);
  }
  return out;
}

}  // namespace lockstep::testing
