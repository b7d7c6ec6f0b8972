// `lockstep run` on the egress network, end to end: downloads over HTTP,
// HTTPS and git recorded; refusals named and fast; services by name and
// localhost in every mode; allow-lists; nothing left behind, not even by a
// killed runner; bad input refused before anything runs.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <thread>

#include "common/digest.hpp"
#include "egress_fixture.hpp"

namespace lockstep::testing {
namespace {

TEST_F(EgressRunTest, DownloadsOverHttpHttpsAndGitAreRecorded) {
  std::string ca = world_->ca().string();
  auto r = run(R"WF(on: push
jobs:
  fetch:
    runs-on: ubuntu-latest
    container:
      image: localhost/net:test
      volumes: [")WF" +
               ca + R"WF(:/ca.pem:ro"]
    steps:
      - run: echo "curl $(curl -fsS http://files.test/hello.txt)"
      - run: echo "wget $(wget -q -O - http://files.test/hello.txt)"
      - run: echo "https $(curl -fsS --cacert /ca.pem https://files.test/hello.txt)"
      - run: git -c http.sslCAInfo=/ca.pem clone -q https://files.test/repo.git /tmp/r && echo "git $(cat /tmp/r/README)"
      - run: echo "raw $(curl -fsS --noproxy '*' http://files.test/hello.txt)"
      - run: echo "raw6 $(curl -fsS --noproxy '*' -g 'http://[2001:db8:100::10]/hello.txt')"
      - run: cat /etc/resolv.conf; echo "proxy $HTTP_PROXY"
      - run: echo "bundle ${SSL_CERT_FILE:-unset} $(test -e /etc/ssl/certs/ca-certificates.crt && echo present || echo absent)"
)WF");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  for (const char* line : {"curl hello from the test internet", "wget hello from the test internet",
                           "https hello from the test internet", "git cloned through the proxy",
                           "raw hello from the test internet", "raw6 hello from the test internet",
                           "nameserver 127.0.0.53", "proxy http://127.0.0.53:3128",
                           // Without egress.inspect nothing of the run CA.
                           "bundle unset absent"})
    EXPECT_TRUE(has(r.out, line)) << line << "\n" << r.out;

  json job = record()["jobs"][0];
  EXPECT_EQ(job["network"], "egress");
  const json& eg = job["egress"];
  std::string hello_sha = sha256_of("hello from the test internet\n").str();
  int http = 0, connect = 0;
  for (const auto& f : eg["fetches"]) {
    if (f["kind"] == "http" && f["url"] == "http://files.test/hello.txt") {
      ++http;
      EXPECT_EQ(f["status"], 200);
      EXPECT_EQ(f["sha256"], hello_sha);
      // Either of the name's addresses (the resolver's order).
      EXPECT_TRUE(f["address"] == kWorldServer4 || f["address"] == kWorldServer6) << f.dump();
    }
    if (f["kind"] == "connect" && f["host"] == "files.test" && f["port"] == 443) {
      ++connect;
      EXPECT_GT(f["bytes_in"].get<int64_t>(), 0);
      EXPECT_GT(f["bytes_out"].get<int64_t>(), 0);
    }
  }
  for (const auto& f : eg["fetches"])  // HTTPS is CONNECT only
    EXPECT_FALSE(member(f, "url").starts_with("https://")) << f.dump();
  EXPECT_EQ(http, 2) << eg.dump(2);     // curl and wget
  EXPECT_EQ(connect, 2) << eg.dump(2);  // curl and git
  int raw = 0, raw6 = 0;
  for (const auto& c : eg["connections"]) {
    if (c["proto"] == "tcp" && c["address"] == kWorldServer4 && c["port"] == 80) {
      ++raw;
      EXPECT_EQ(c["host"], "files.test");
      EXPECT_GT(c["bytes_in"].get<int64_t>(), 29);
      EXPECT_TRUE(c.contains("ended")) << c.dump();
    }
    if (c["address"] == kWorldServer6) ++raw6;
    EXPECT_FALSE(c.contains("refused")) << c.dump();
  }
  EXPECT_EQ(raw, 1) << eg.dump(2);
  EXPECT_EQ(raw6, 1) << eg.dump(2);
  bool looked_up = false;
  for (const auto& d : eg["dns"])
    looked_up = looked_up || (d["name"] == "files.test" && d["answers"] == json{kWorldServer4});
  EXPECT_TRUE(looked_up) << eg["dns"].dump(2);

  // runs show lists them.
  auto show = home_.lockstep({"runs", "show", home_.run_ids().back()});
  EXPECT_TRUE(has(show.out, "fetch GET http://files.test/hello.txt  200 " + hello_sha)) << show.out;
  EXPECT_TRUE(has(show.out, "fetch CONNECT files.test:443")) << show.out;
  EXPECT_TRUE(has(show.out, "connection tcp files.test:80 (198.51.100.10)")) << show.out;
}

// A Docker action built from its Dockerfile: RUN fetches through the job's
// egress network, and the fetch is in the job's record.
TEST_F(EgressRunTest, DockerfileActionBuildFetchesThroughTheJobsNetwork) {
  if (::access("/usr/bin/buildah", X_OK) != 0) GTEST_SKIP() << "needs buildah";
  auto action = home_.root() / "forge" / "octo" / "fetcher";
  std::filesystem::create_directories(action);
  std::ofstream(action / "action.yml")
      << "name: fetcher\nruns:\n  using: docker\n  image: Dockerfile\n";
  std::ofstream(action / "Dockerfile")
      << "FROM localhost/net:test\n"
         "RUN wget -q -O /fetched http://files.test/hello.txt\n"
         "ENTRYPOINT [\"/bin/sh\", \"-c\", \"echo built with: $(cat /fetched)\"]\n";
  auto git = [&](std::vector<std::string> a) {
    a.insert(a.begin(),
             {"/usr/bin/git", "-C", action.string(), "-c", "user.name=t", "-c", "user.email=t@e"});
    auto g = run_process(a);
    ASSERT_EQ(g.exit_code, 0) << g.err;
  };
  git({"init", "-q", "-b", "main"});
  git({"add", "-A"});
  git({"commit", "-qm", "fetcher"});
  git({"tag", "v1"});
  auto r = run(job_head("      - uses: octo/fetcher@v1\n"),
               {"--actions-url", (home_.root() / "forge").string()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "built with: hello from the test internet")) << r.out;
  json rec = record();
  bool fetched = false;
  for (const auto& f : rec["jobs"][0]["egress"]["fetches"])
    fetched = fetched || (f["kind"] == "http" && f["url"] == "http://files.test/hello.txt");
  EXPECT_TRUE(fetched) << rec["jobs"][0]["egress"].dump(2);
}

// An origin that closes before its Content-Length: the fetch keeps its
// digest and byte count but is marked incomplete and never stored, so no
// pin or replay takes a cut body for the URL's content.
TEST_F(EgressRunTest, ABodyCutShortIsRecordedIncompleteAndNotStored) {
  const std::string server = R"PY(
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.51.100.10", 8081))
s.listen(4)
while True:
    c, _ = s.accept()
    c.recv(65536)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
    c.close()
)PY";
  pid_t origin = world_->net().spawn(world_->net().world_fd(), {"/usr/bin/python3", "-c", server});
  ASSERT_GT(origin, 0);
  // The listener is up when a connection from the world succeeds.
  bool up = false;
  for (int i = 0; i < 100 && !up; ++i) {
    world_->net().in_world([&] {
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(8081);
      ::inet_pton(AF_INET, "198.51.100.10", &a.sin_addr);
      up = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
      ::close(fd);
    });
    if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(up) << "the truncating origin did not start";
  auto r = run(R"WF(on: push
jobs:
  cut:
    runs-on: ubuntu-latest
    container: localhost/net:test
    steps:
      - run: curl -sS http://files.test:8081/short -o /tmp/short || echo "curl exit $?"
)WF");
  ::kill(origin, SIGKILL);
  world_->net().wait(origin);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "curl exit 18")) << r.out;  // curl: partial file
  int seen = 0;
  const json rec = record();
  const json& eg = rec["jobs"][0]["egress"];
  for (const auto& f : eg["fetches"]) {
    if (f["url"] != "http://files.test:8081/short") continue;
    ++seen;
    EXPECT_EQ(f["status"], 200) << f.dump();
    EXPECT_EQ(f["body_bytes"], 10) << f.dump();
    EXPECT_EQ(f["sha256"], sha256_of("0123456789").str()) << f.dump();
    EXPECT_TRUE(f.contains("incomplete") && f["incomplete"] == true) << f.dump();
    EXPECT_FALSE(f.contains("stored")) << f.dump();
  }
  EXPECT_EQ(seen, 1) << eg.dump(2);
}

TEST_F(EgressRunTest, RefusalsAreImmediateAndNamedInTheLogAndRecord) {
  // A server on the host namespace's own address must stay out of reach.
  auto r = run(job_head(R"WF(      - run: |
          for u in http://10.77.0.10/ http://private.test/ http://169.254.169.254/ http://203.0.113.2:8081/; do
            rc=0; curl -sS --noproxy '*' --max-time 60 "$u" 2>&1 || rc=$?; echo "rc=$rc"
          done
          echo "proxy: $(curl -sS http://169.254.169.254/latest/meta-data)"
          echo "proxy to the host: $(curl -sS http://203.0.113.2:8081/)"
)WF"));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // curl's 7 is "could not connect" (refused); a timeout would be 28.
  std::regex rc(R"(rc=(\d+))");
  int n = 0;
  for (auto it = std::sregex_iterator(r.out.begin(), r.out.end(), rc); it != std::sregex_iterator();
       ++it, ++n)
    EXPECT_EQ((*it)[1], "7") << r.out;
  EXPECT_EQ(n, 4) << r.out;
  EXPECT_TRUE(has(r.out,
                  "proxy: lockstep egress: refused 169.254.169.254:80 (169.254.169.254: "
                  "link-local 169.254.0.0/16)"))
      << r.out;
  EXPECT_TRUE(has(r.out,
                  "proxy to the host: lockstep egress: refused 203.0.113.2:8081 "
                  "(203.0.113.2: the host's own address)"))
      << r.out;
  auto log = read_file(home_.latest_record().parent_path() / "jobs" / "1-j" / "log.txt");
  ASSERT_TRUE(log);
  EXPECT_TRUE(has(*log,
                  "egress: refused tcp connection to 10.77.0.10:80 (private range "
                  "10.0.0.0/8, not in egress.allow)"))
      << *log;
  EXPECT_TRUE(has(*log, "egress: refused tcp connection to private.test 10.77.0.10:80")) << *log;
  EXPECT_TRUE(has(*log,
                  "egress: refused tcp connection to 169.254.169.254:80 (link-local "
                  "169.254.0.0/16)"))
      << *log;
  json eg = record()["jobs"][0]["egress"];
  int refused = 0;
  for (const auto& c : eg["connections"])
    if (c.contains("refused")) ++refused;
  EXPECT_GE(refused, 4) << eg.dump(2);
  EXPECT_EQ(world_->served("/"), 0);  // nothing reached the private server
}

TEST_F(EgressRunTest, AllowListOpensNamesAndRangesAndClosesTheRest) {
  home_.write("wf/.lockstep.yml",
              "egress:\n  allow:\n    - files.test:80\n    - 10.77.0.0/16:80\n");
  auto r = run(job_head(R"WF(      - run: |
          echo "named $(curl -fsS --noproxy '*' http://files.test/hello.txt)"
          echo "range $(curl -fsS --noproxy '*' http://10.77.0.10/hello.txt)"
          rc=0; curl -sS --noproxy '*' --max-time 60 http://198.51.100.20/hello.txt 2>&1 || rc=$?; echo "other rc=$rc"
          echo "proxy $(curl -sS http://other.test/hello.txt)"
)WF"));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "named hello from the test internet")) << r.out;
  EXPECT_TRUE(has(r.out, "range hello from the test internet")) << r.out;
  EXPECT_TRUE(has(r.out, "other rc=7")) << r.out;
  EXPECT_TRUE(has(r.out,
                  "proxy lockstep egress: refused other.test:80 (198.51.100.20: not in "
                  "egress.allow)"))
      << r.out;
  json job = record()["jobs"][0];
  EXPECT_EQ(job["env_doc"]["container"]["egress_allow"],
            (json{"10.77.0.0/16:80", "files.test:80"}));
}

TEST_F(EgressRunTest, ServicesByNameAndLocalhostInEveryMode) {
  auto rootfs = home_.root() / "web-rootfs";
  ASSERT_EQ(
      run_process({"/bin/bash", std::string(LOCKSTEP_SOURCE_DIR) + "/scripts/busybox-rootfs.sh",
                   rootfs.string()})
          .exit_code,
      0);
  std::filesystem::create_directories(rootfs / "www");
  std::ofstream(rootfs / "www" / "index.html") << "served by the service\n";
  auto layout = home_.root() / "web-layout";
  auto m = run_process({"/usr/bin/python3",
                        std::string(LOCKSTEP_SOURCE_DIR) + "/tests/support/make_oci_image.py",
                        rootfs.string(), layout.string(), "--cmd",
                        R"(["httpd", "-f", "-p", "8080", "-h", "/www"])"});
  ASSERT_EQ(m.exit_code, 0) << m.err;
  ASSERT_EQ(
      home_.lockstep({"image", "import", layout.string(), "--tag", "localhost/web:test"}).exit_code,
      0);
  std::string wf = R"WF(on: push
jobs:
  c:
    runs-on: ubuntu-latest
    container: localhost/net:test
    services:
      web:
        image: localhost/web:test
        options: --health-cmd "wget -q -O /dev/null http://127.0.0.1:8080/" --health-interval 200ms --health-retries 20
    steps:
      - run: |
          echo "localhost: $(curl -fsS http://localhost:8080/)"
          echo "by name: $(curl -fsS http://web:8080/)"
)WF";
  for (const char* mode : {"egress", "none", "host"}) {
    auto r = run(wf, {"--network", mode});
    ASSERT_EQ(r.exit_code, 0) << mode << "\n" << r.out << r.err;
    EXPECT_TRUE(has(r.out, "localhost: served by the service")) << mode << "\n" << r.out;
    EXPECT_TRUE(has(r.out, "by name: served by the service")) << mode << "\n" << r.out;
    EXPECT_EQ(record()["jobs"][0]["network"], mode);
  }
}

TEST_F(EgressRunTest, TwoHundredJobsLeaveNothingBehind) {
  std::string values;
  for (int i = 0; i < 200; ++i) values += (i ? ", " : "") + std::to_string(i);
  auto r =
      run("on: push\njobs:\n  j:\n    runs-on: ubuntu-latest\n    container: "
          "localhost/net:test\n    strategy:\n      matrix:\n        i: [" +
          values + "]\n    steps:\n      - run: test -e /sys/class/net/eth0\n");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "200 of 200 jobs passed")) << r.out;
  // TearDown checks the interfaces, tables and forwarding.
}

TEST_F(EgressRunTest, AKilledRunnersNetworkGoesWithTheNextRun) {
  home_.write("wf/slow.yml", job_head("      - run: echo started; sleep 600\n"));
  int out = -1;
  pid_t pid = world_->start_lockstep(home_, {"run", (home_.root() / "wf/slow.yml").string()}, &out);
  ASSERT_GT(pid, 0);
  std::string seen;
  char buf[4096];
  while (!has(seen, "] started")) {
    ssize_t n = ::read(out, buf, sizeof buf);
    if (n <= 0) break;
    seen.append(buf, static_cast<size_t>(n));
  }
  ASSERT_TRUE(has(seen, "] started")) << seen;
  EXPECT_FALSE(world_->leftovers().empty());
  EXPECT_EQ(world_->forwarding(), "1");
  ::kill(pid, SIGKILL);
  world_->net().wait(pid);
  ::close(out);
  auto r = run(job_head("      - run: echo next\n"), {"--network", "none"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  // TearDown: nothing left, forwarding back off.
}

// lock --fetches pins what a run downloaded; run --frozen serves and checks
// it; replay serves the recorded bytes with the server down.
TEST_F(EgressRunTest, PinnedFetchesAreCheckedServedAndReplayed) {
  std::ofstream(world_->www() / "pin.txt") << "version one\n";
  std::string wf = job_head(
      R"(      - run: mkdir -p out && curl -fsS http://files.test/pin.txt > out/pin.txt && cat out/pin.txt
      - uses: actions/upload-artifact@v4
        with:
          name: pin
          path: out/pin.txt
)");
  auto r = run(wf);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  std::string first = home_.run_ids().back();
  std::string v1 = sha256_of("version one\n").str();
  auto lock =
      world_->lockstep(home_, {"lock", (home_.root() / "wf/ci.yml").string(), "--fetches", first});
  ASSERT_EQ(lock.exit_code, 0) << lock.out << lock.err;
  auto text = read_file(home_.root() / "wf/lockstep.lock");
  ASSERT_TRUE(text);
  EXPECT_TRUE(has(*text, "\"url\": \"http://files.test/pin.txt\"")) << *text;
  EXPECT_TRUE(has(*text, "\"sha256\": \"" + v1 + "\"")) << *text;

  // The server changes the file and the store no longer has the pinned
  // bytes (another host): the frozen run refuses, naming URL and digests.
  std::ofstream(world_->www() / "pin.txt") << "version two\n";
  std::string v2 = sha256_of("version two\n").str();
  std::filesystem::remove(home_.home() / "blobs/sha256" / v1.substr(7));
  r = run(wf, {"--frozen"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(
      has(r.err, "download http://files.test/pin.txt has " + v2 + ", lockstep.lock pins " + v1))
      << r.out << r.err;

  // Back to the pinned bytes: fetched, checked, kept; then served with the
  // server down.
  std::ofstream(world_->www() / "pin.txt") << "version one\n";
  r = run(wf, {"--frozen"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  world_->stop_nginx();
  r = run(wf, {"--frozen"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "] version one")) << r.out;
  json f = record()["jobs"][0]["egress"]["fetches"][0];
  EXPECT_EQ(f["served"], "store") << f.dump();
  EXPECT_EQ(f["sha256"], v1);
  std::string served = home_.run_ids().back();

  auto replay = world_->lockstep(home_, {"replay", served});
  EXPECT_EQ(replay.exit_code, 0) << replay.out << replay.err;
  EXPECT_TRUE(
      has(replay.out, "1 of 1 environment hashes match the record; 1 artifact(s) identical"))
      << replay.out << replay.err;
}

TEST_F(EgressRunTest, BadNetworkInputIsOneLineAndNothingRuns) {
  auto r = run(job_head("      - run: echo ran\n"), {"--network", "overlay"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "lockstep: error: unsupported network 'overlay' for '--network' (lockstep supports "
            "egress, none and host)\n");
  home_.write("wf/.lockstep.yml", "egress:\n  allow:\n    - files.test\n    - 10.0.0.0/99\n");
  r = run(job_head("      - run: echo ran\n"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(has(r.err,
                  ".lockstep.yml:4:7: egress allow entry '10.0.0.0/99': prefix length 99 "
                  "is longer than 32"))
      << r.err;
  EXPECT_FALSE(has(r.out, "ran"));
  EXPECT_TRUE(home_.run_ids().empty());
  // A pin whose digest is not hex.
  home_.write("wf/.lockstep.yml", "egress:\n  allow: [files.test]\n");
  auto lock = world_->lockstep(home_, {"lock", (home_.root() / "wf/ci.yml").string()});
  ASSERT_EQ(lock.exit_code, 0) << lock.err;
  auto text = read_file(home_.root() / "wf/lockstep.lock");
  ASSERT_TRUE(text);
  std::string bad = *text;
  bad.insert(bad.rfind('}'),
             ",\"fetches\": [{\"url\": \"http://files.test/a\", \"sha256\": \"sha256:" +
                 std::string(64, 'x') + "\"}]\n");
  home_.write("wf/lockstep.lock", bad);
  r = run(job_head("      - run: echo ran\n"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(has(
      r.err, "fetch sha256 'sha256:" + std::string(64, 'x') + "' is not a sha256:<64 hex> digest"))
      << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_FALSE(has(r.out, "ran"));
  EXPECT_TRUE(home_.run_ids().empty());
}

}  // namespace
}  // namespace lockstep::testing
