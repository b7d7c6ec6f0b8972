#include "world.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "egress/dns.hpp"
#include "executor/network.hpp"
#include "tests/support/quiet_log.hpp"

namespace lockstep::testing {
namespace fs = std::filesystem;

namespace {

bool sh(const std::string& script, std::string* err = nullptr) {
  auto r = run_process({"/bin/sh", "-c", script});
  if (err) *err = r.out + r.err;
  return r.exit_code == 0;
}

// One DNS answer record for the question at offset 12 (compression pointer).
std::string record(uint16_t type, const std::string& rdata) {
  std::string r = {
      static_cast<char>(0xc0),        12, 0, static_cast<char>(type), 0, 1, 0, 0, 0, 60, 0,
      static_cast<char>(rdata.size())};
  return r + rdata;
}

std::string raw_address(int family, const char* text) {
  unsigned char buf[16];
  ::inet_pton(family, text, buf);
  return std::string(reinterpret_cast<char*>(buf), family == AF_INET ? 4 : 16);
}

}  // namespace

World::World(const fs::path& dir) : dir_(dir), stop_(::eventfd(0, EFD_CLOEXEC)) {
  if (!net_.ok()) {
    error_ = "network namespaces: " + net_.error();
    return;
  }
  net_.in_world([&] {
    using executor::detail::IpPrefix;
    auto nl = executor::detail::Netlink::open();
    auto lo = nl ? nl->link_index("lo") : Result<int>(0);
    for (const char* a : {kWorldDns, kWorldOther})
      if (!nl || !lo || !nl->add_address(*lo, *IpPrefix::parse(a), true))
        error_ = "add a world address";
  });
  if (!error_.empty()) return;
  std::string out;
  fs::create_directories(www());
  std::ofstream(www() / "hello.txt") << "hello from the test internet\n";
  std::string d = dir_.string();
  // A CA of the test's own and a certificate for files.test.
  std::string pki =
      "set -e; cd '" + d +
      "'; openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
      "-keyout ca.key -out ca.pem -days 2 -subj /CN=lockstep-test-ca 2>/dev/null; "
      "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout srv.key "
      "-out srv.csr -subj /CN=files.test 2>/dev/null; printf 'subjectAltName=DNS:files.test\\n' "
      "> ext; openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out "
      "srv.pem -days 2 -extfile ext 2>/dev/null";
  if (!sh(pki, &out)) {
    error_ = "make the test CA: " + out;
    return;
  }
  // A repository git clones over dumb HTTP(S).
  std::string git =
      "set -e; cd '" + d +
      "'; git init -q src; echo 'cloned through the proxy' > src/README; git -C src add README; "
      "git -C src -c user.name=t -c user.email=t@t commit -q -m one; git clone -q --bare src "
      "www/repo.git; git -C www/repo.git update-server-info";
  if (!sh(git, &out)) {
    error_ = "make the test repository: " + out;
    return;
  }
  std::ofstream(dir_ / "resolv.conf") << "nameserver " << kWorldDns << "\n";
  net_.in_world([&] {
    dns_fd_ = UniqueFd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(53);
    ::inet_pton(AF_INET, kWorldDns, &a.sin_addr);
    if (::bind(dns_fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
      error_ = "bind the DNS responder";
  });
  if (!error_.empty()) return;
  dns_ = std::thread([this] { serve_dns(); });
  if (!start_nginx()) return;
}

World::~World() {
  uint64_t one = 1;
  (void)::write(stop_.get(), &one, sizeof one);
  if (dns_.joinable()) dns_.join();
  stop_nginx();
}

void World::serve_dns() {
  char buf[512];
  for (;;) {
    pollfd p[2] = {{stop_.get(), POLLIN, 0}, {dns_fd_.get(), POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) continue;
    if (p[0].revents) return;
    sockaddr_storage from{};
    socklen_t len = sizeof from;
    ssize_t n =
        ::recvfrom(dns_fd_.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 12) continue;
    std::string q(buf, static_cast<size_t>(n));
    auto question = egress::parse_dns_question(q);
    if (!question) continue;
    std::vector<std::string> answers;
    if (question->name == "files.test" && question->type == 1)
      answers.push_back(record(1, raw_address(AF_INET, kWorldServer4)));
    if (question->name == "files.test" && question->type == 28)
      answers.push_back(record(28, raw_address(AF_INET6, kWorldServer6)));
    if (question->name == "private.test" && question->type == 1)
      answers.push_back(record(1, raw_address(AF_INET, kWorldPrivate)));
    if (question->name == "other.test" && question->type == 1)
      answers.push_back(record(1, raw_address(AF_INET, kWorldOther)));
    bool known = question->name == "files.test" || question->name == "private.test" ||
                 question->name == "other.test";
    // The query's header and question, answered.
    size_t qend = 12;
    while (qend < q.size() && q[qend] != 0) qend += 1 + static_cast<uint8_t>(q[qend]);
    std::string r = q.substr(0, qend + 5);
    r[2] = static_cast<char>(0x81);
    r[3] = static_cast<char>(known ? 0x80 : 0x83);
    r[6] = 0;
    r[7] = static_cast<char>(answers.size());
    r[8] = r[9] = r[10] = r[11] = 0;
    for (const auto& a : answers) r += a;
    (void)::sendto(dns_fd_.get(), r.data(), r.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
  }
}

bool World::start_nginx() {
  std::string d = dir_.string(), w = www().string();
  std::ostringstream c;
  c << "daemon off;\nmaster_process on;\nworker_processes 1;\nuser root;\n"
    << "pid " << d << "/nginx.pid;\nerror_log " << d << "/error.log warn;\n"
    << "events { worker_connections 256; }\nhttp {\n"
    << "  access_log " << d << "/access.log;\n"
    << "  client_body_temp_path " << d << "/body;\n  proxy_temp_path " << d << "/proxy;\n"
    << "  fastcgi_temp_path " << d << "/fcgi;\n  sendfile on;\n"
    << "  server {\n    listen " << kWorldServer4 << ":80;\n    listen [" << kWorldServer6
    << "]:80;\n    listen " << kWorldPrivate << ":80;\n    listen " << kWorldOther << ":80;\n"
    << "    root " << w << ";\n  }\n"
    << "  server {\n    listen " << kWorldServer4 << ":443 ssl;\n    server_name files.test;\n"
    << "    ssl_certificate " << d << "/srv.pem;\n    ssl_certificate_key " << d << "/srv.key;\n"
    << "    root " << w << ";\n  }\n}\n";
  std::ofstream(dir_ / "nginx.conf") << c.str();
  int err =
      ::open((dir_ / "nginx.stderr").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  nginx_ = net_.spawn(net_.world_fd(),
                      {"/usr/sbin/nginx", "-p", d + "/", "-c", (dir_ / "nginx.conf").string()}, {},
                      "", -1, err);
  ::close(err);
  // Ready when it answers.
  for (int i = 0; i < 200; ++i) {
    bool up = false;
    net_.in_world([&] {
      UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(443);
      ::inet_pton(AF_INET, kWorldServer4, &a.sin_addr);
      up = ::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    });
    if (up) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  auto text = read_file(dir_ / "nginx.stderr");
  error_ = "nginx did not start: " + (text ? *text : std::string());
  return false;
}

void World::stop_nginx() {
  if (nginx_ <= 0) return;
  ::kill(nginx_, SIGTERM);
  net_.wait(nginx_);
  nginx_ = -1;
}

int World::served(const std::string& path) const {
  wait_until_log_is_still(dir_ / "access.log");
  auto text = read_file(dir_ / "access.log");
  if (!text) return 0;
  int n = 0;
  std::istringstream in(*text);
  for (std::string line; std::getline(in, line);)
    if (line.find(" " + path + " ") != std::string::npos) ++n;
  return n;
}

pid_t World::start_lockstep(const LockstepHome& home, std::vector<std::string> args, int* out_fd) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return -1;
  args.insert(args.begin(), LOCKSTEP_BINARY);
  // The child's cwd is the home's root, like LockstepHome::lockstep.
  std::vector<std::string> full = {"/bin/sh", "-c", "cd \"$0\" && exec \"$@\"",
                                   home.root().string()};
  full.insert(full.end(), args.begin(), args.end());
  pid_t pid = net_.spawn(net_.host_fd(), full, {"LOCKSTEP_HOME=" + home.home().string()},
                         (dir_ / "resolv.conf").string(), p[1], p[1]);
  ::close(p[1]);
  *out_fd = p[0];
  return pid;
}

ProcessOutput World::lockstep(const LockstepHome& home, std::vector<std::string> args,
                              std::vector<std::string> env) {
  args.insert(args.begin(), LOCKSTEP_BINARY);
  std::vector<std::string> full = {"/bin/sh", "-c", "cd \"$0\" && exec \"$@\"",
                                   home.root().string()};
  full.insert(full.end(), args.begin(), args.end());
  env.push_back("LOCKSTEP_HOME=" + home.home().string());
  return run_in_host(full, env);
}

ProcessOutput World::run_in_host(const std::vector<std::string>& argv,
                                 const std::vector<std::string>& env) {
  int out[2], err[2];
  ProcessOutput r;
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) return r;
  pid_t pid =
      net_.spawn(net_.host_fd(), argv, env, (dir_ / "resolv.conf").string(), out[1], err[1]);
  ::close(out[1]);
  ::close(err[1]);
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    if (::poll(fds, 2, -1) < 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
      }
    }
  }
  r.exit_code = net_.wait(pid);
  return r;
}

std::vector<std::string> World::leftovers() {
  std::vector<std::string> out;
  net_.in_host([&] {
    auto r = executor::list_network_objects();
    out = r ? *r : std::vector<std::string>{"error: " + r.error().message()};
  });
  return out;
}

std::string World::forwarding() {
  std::string v;
  net_.in_host([&] { v = executor::detail::read_sysctl("net/ipv4/ip_forward").value_or("?"); });
  return v;
}

}  // namespace lockstep::testing
