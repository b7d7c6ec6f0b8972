// HTTPS inspection end to end (egress.inspect): the job's own curl and git
// against the test internet's HTTPS server through the proxy; each request
// recorded by URL, status and sha256; an origin whose certificate does not
// verify fails the request, named; pins and the store work for https URLs;
// the CA's key is nowhere on disk.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#include "common/digest.hpp"
#include "egress_fixture.hpp"

namespace lockstep::testing {
namespace {

namespace fs = std::filesystem;

class InspectTest : public EgressRunTest {
 protected:
  void inspect(bool with_ca) {
    home_.write("wf/.lockstep.yml",
                "egress:\n  inspect: true\n" +
                    (with_ca ? "  ca: " + world_->ca().string() + "\n" : std::string()));
  }
  // The run's CA as the job printed it (`cat` of the CA file).
  static std::string ca_from(const std::string& out) {
    std::string pem;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) {
      auto at = line.find("] ");
      std::string text = at == std::string::npos ? line : line.substr(at + 2);
      if (text == "-----BEGIN CERTIFICATE-----" || !pem.empty()) pem += text + "\n";
      if (text == "-----END CERTIFICATE-----" && !pem.empty()) break;
    }
    return pem;
  }
  // Files under `dir` holding, in PEM, the private key of `cert_pem` (the
  // forms OpenSSL writes: PKCS#8 and SEC1).
  static std::vector<std::string> keys_of(const std::string& cert_pem, const fs::path& dir) {
    std::vector<std::string> out;
    BIO* cb = BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size()));
    X509* cert = PEM_read_bio_X509(cb, nullptr, nullptr, nullptr);
    BIO_free(cb);
    EXPECT_NE(cert, nullptr) << cert_pem;
    if (!cert) return {"no certificate"};
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (!it->is_regular_file(ec) || it->is_symlink(ec)) continue;
      auto text = read_file(it->path());
      if (!text) continue;
      for (size_t at = text->find("-----BEGIN "); at != std::string::npos;
           at = text->find("-----BEGIN ", at + 1)) {
        BIO* b = BIO_new_mem_buf(text->data() + at, static_cast<int>(text->size() - at));
        EVP_PKEY* key = PEM_read_bio_PrivateKey(b, nullptr, nullptr, nullptr);
        BIO_free(b);
        ERR_clear_error();
        if (key && X509_check_private_key(cert, key) == 1) out.push_back(it->path().string());
        EVP_PKEY_free(key);
      }
    }
    ERR_clear_error();
    X509_free(cert);
    return out;
  }
  std::vector<std::string> keys_on_disk(const std::string& out) {
    std::string ca = ca_from(out);
    // The check finds a key when there is one: the test CA's own.
    auto test_ca = read_file(world_->ca());
    EXPECT_EQ(keys_of(test_ca ? *test_ca : "", home_.root() / "world").size(), 1u);
    return keys_of(ca, home_.home());
  }
  std::vector<json> fetches(const std::string& url) {
    std::vector<json> out;
    json rec = record();
    for (const auto& f : rec["jobs"][0]["egress"]["fetches"])
      if (member(f, "url") == url) out.push_back(f);
    return out;
  }
};

TEST_F(InspectTest, HttpsRequestsAreRecordedByUrlStatusAndDigest) {
  inspect(true);
  auto r = run(job_head(R"WF(      - run: echo "https $(curl -fsS https://files.test/hello.txt)"
      - run: echo "missing $(curl -sS -o /dev/null -w '%{http_code}' https://files.test/missing.txt)"
      - run: echo "h2 $(curl -fsS --http2 -w ' %{http_version}' https://files.test/hello.txt | tr -d '\n')"
      - run: git clone -q https://files.test/repo.git /tmp/r && echo "git $(cat /tmp/r/README)"
      - run: echo "vars $SSL_CERT_FILE $CURL_CA_BUNDLE $GIT_SSL_CAINFO $REQUESTS_CA_BUNDLE $NODE_EXTRA_CA_CERTS"
      - run: echo "bundle $(grep -c 'BEGIN CERTIFICATE' /etc/ssl/certs/ca-certificates.crt) $(grep -c 'BEGIN CERTIFICATE' /usr/local/share/ca-certificates/lockstep-run-ca.crt)"
      - run: cat /usr/local/share/ca-certificates/lockstep-run-ca.crt
)WF"));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const std::string b = "/etc/ssl/certs/ca-certificates.crt";
  for (const std::string& line : std::vector<std::string>{
           "https hello from the test internet", "missing 404", "git cloned through the proxy",
           // Offered h2 and HTTP/1.1, curl gets HTTP/1.1.
           "h2 hello from the test internet 1.1",
           "vars " + b + " " + b + " " + b + " " + b + " " + b, "bundle 1 1"})
    EXPECT_TRUE(has(r.out, line)) << line << "\n" << r.out;

  std::string hello_sha = sha256_of("hello from the test internet\n").str();
  auto hello = fetches("https://files.test/hello.txt");
  ASSERT_EQ(hello.size(), 2u) << record()["jobs"][0]["egress"].dump(2);
  EXPECT_EQ(hello[0]["kind"], "http");
  EXPECT_EQ(hello[0]["method"], "GET");
  EXPECT_EQ(hello[0]["status"], 200);
  EXPECT_EQ(hello[0]["sha256"], hello_sha);
  EXPECT_EQ(hello[0]["inspected"], true);
  EXPECT_EQ(hello[0]["stored"], true);
  EXPECT_EQ(hello[0]["address"], kWorldServer4);
  EXPECT_TRUE(fs::exists(home_.home() / "blobs/sha256" / hello_sha.substr(7)));
  auto missing = fetches("https://files.test/missing.txt");
  ASSERT_EQ(missing.size(), 1u);
  EXPECT_EQ(missing[0]["status"], 404);
  EXPECT_FALSE(missing[0].contains("stored"));
  // git's requests, each on its own (one connection kept alive).
  int git = 0;
  json rec = record();
  for (const auto& f : rec["jobs"][0]["egress"]["fetches"]) {
    EXPECT_FALSE(f.contains("error")) << f.dump();
    if (member(f, "url").starts_with("https://files.test/repo.git/") && f["status"] == 200) ++git;
  }
  EXPECT_GE(git, 3) << record()["jobs"][0]["egress"].dump(2);
  EXPECT_EQ(record()["jobs"][0]["env_doc"]["container"]["egress_inspect"], true);
  auto show = home_.lockstep({"runs", "show", home_.run_ids().back()});
  EXPECT_TRUE(has(show.out, "fetch GET https://files.test/hello.txt  200 " + hello_sha))
      << show.out;
  // The key was only ever in the runner's memory.
  EXPECT_EQ(keys_on_disk(r.out), std::vector<std::string>{});
}

TEST_F(InspectTest, AnOriginThatDoesNotVerifyFailsTheRequestNamingWhy) {
  // The test CA is not in the host's trust store: without egress.ca the
  // origin's certificate has no known issuer.
  inspect(false);
  auto r = run(job_head(
      "      - run: curl -sS -w 'code %{http_code}\\n' https://files.test/hello.txt\n"
      // Plain HTTP through a CONNECT tunnel (curl -p): not TLS, so not
      // carried under inspection.
      "      - run: curl -sS -p http://files.test:443/hello.txt || echo \"plain failed\"\n"));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  std::string why =
      "the certificate of files.test does not verify: unable to get local issuer "
      "certificate";
  EXPECT_TRUE(has(r.out, "lockstep egress: " + why)) << r.out;
  EXPECT_TRUE(has(r.out, "code 502")) << r.out;
  auto f = fetches("https://files.test/hello.txt");
  ASSERT_EQ(f.size(), 1u) << record()["jobs"][0]["egress"].dump(2);
  EXPECT_EQ(f[0]["error"], why);
  EXPECT_FALSE(f[0].contains("sha256"));
  EXPECT_TRUE(has(r.out, "plain failed")) << r.out;
  int not_tls = 0;
  json rec = record();
  for (const auto& e : rec["jobs"][0]["egress"]["fetches"])
    not_tls +=
        e["kind"] == "connect" && e["host"] == "files.test" &&
        member(e, "error") == "the job sent something other than TLS through an inspected tunnel";
  EXPECT_EQ(not_tls, 1) << rec["jobs"][0]["egress"].dump(2);
  auto log = read_file(home_.latest_record().parent_path() / "jobs" / "1-j" / "log.txt");
  ASSERT_TRUE(log);
  EXPECT_TRUE(has(*log, "egress: https://files.test/hello.txt: " + why)) << *log;

  // With the CA, the certificate still names files.test, not the address.
  inspect(true);
  r = run(job_head(
      "      - run: curl -sS -w 'code %{http_code}\\n' https://198.51.100.10/hello.txt\n"));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out,
                  "lockstep egress: the certificate of 198.51.100.10 does not verify: IP address "
                  "mismatch"))
      << r.out;
  EXPECT_EQ(world_->served("/hello.txt"), 0);  // no request reached the origin
}

TEST_F(InspectTest, PinnedHttpsFetchesAreCheckedAndServedFromTheStore) {
  inspect(true);
  std::ofstream(world_->www() / "pin.txt") << "version one\n";
  std::string wf = job_head(
      "      - run: curl -fsS https://files.test/pin.txt\n"
      "      - run: cat /usr/local/share/ca-certificates/lockstep-run-ca.crt\n");
  auto r = run(wf);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto lock = world_->lockstep(
      home_, {"lock", (home_.root() / "wf/ci.yml").string(), "--fetches", home_.run_ids().back()});
  ASSERT_EQ(lock.exit_code, 0) << lock.out << lock.err;
  auto text = read_file(home_.root() / "wf/lockstep.lock");
  ASSERT_TRUE(text);
  std::string v1 = sha256_of("version one\n").str();
  EXPECT_TRUE(has(*text, "\"url\": \"https://files.test/pin.txt\"")) << *text;

  // Other bytes at the origin and none in the store: refused, named.
  std::ofstream(world_->www() / "pin.txt") << "version two\n";
  std::string v2 = sha256_of("version two\n").str();
  fs::remove(home_.home() / "blobs/sha256" / v1.substr(7));
  r = run(wf, {"--frozen"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(
      has(r.err, "download https://files.test/pin.txt has " + v2 + ", lockstep.lock pins " + v1))
      << r.out << r.err;

  // The pinned bytes again: fetched, checked, kept; then served with the
  // origin down.
  std::ofstream(world_->www() / "pin.txt") << "version one\n";
  r = run(wf, {"--frozen"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  world_->stop_nginx();
  r = run(wf, {"--frozen"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "] version one")) << r.out;
  auto f = fetches("https://files.test/pin.txt");
  ASSERT_EQ(f.size(), 1u) << record()["jobs"][0]["egress"].dump(2);
  EXPECT_EQ(f[0]["served"], "store");
  EXPECT_EQ(f[0]["pinned"], true);
  EXPECT_EQ(f[0]["sha256"], v1);
  EXPECT_EQ(keys_on_disk(r.out), std::vector<std::string>{});

  // replay serves the recorded bytes, inspecting as the run did (the
  // environment hash has it), with the origin still down.
  auto replay = world_->lockstep(home_, {"replay", home_.run_ids().back()});
  EXPECT_EQ(replay.exit_code, 0) << replay.out << replay.err;
  EXPECT_TRUE(has(replay.out, "1 of 1 environment hashes match the record")) << replay.out;
  EXPECT_TRUE(has(replay.out, "] version one")) << replay.out;
}

// A Docker action: its image build cannot trust the run's CA, so its
// tunnels stay opaque (CONNECT, as without inspection); the action's
// container does, and its requests are inspected.
TEST_F(InspectTest, DockerActionsBuildThroughOpaqueTunnelsAndRunInspected) {
  if (::access("/usr/bin/buildah", X_OK) != 0) GTEST_SKIP() << "needs buildah";
  inspect(true);
  auto action = home_.root() / "forge" / "octo" / "fetcher";
  fs::create_directories(action);
  fs::copy_file(world_->ca(), action / "ca.pem");
  std::ofstream(action / "action.yml")
      << "name: fetcher\nruns:\n  using: docker\n  image: Dockerfile\n";
  std::ofstream(action / "Dockerfile")
      << "FROM localhost/net:test\nCOPY ca.pem /ca.pem\n"
         "RUN curl -fsS --cacert /ca.pem -o /fetched https://files.test/hello.txt\n"
         "ENTRYPOINT [\"/bin/sh\", \"-c\", \"echo built with: $(cat /fetched); echo ran with: "
         "$(curl -fsS https://files.test/hello.txt)\"]\n";
  for (std::vector<std::string> a : {std::vector<std::string>{"init", "-q", "-b", "main"},
                                     {"add", "-A"},
                                     {"commit", "-qm", "f"},
                                     {"tag", "v1"}}) {
    a.insert(a.begin(),
             {"/usr/bin/git", "-C", action.string(), "-c", "user.name=t", "-c", "user.email=t@e"});
    ASSERT_EQ(run_process(a).exit_code, 0);
  }
  auto r = run(job_head("      - uses: octo/fetcher@v1\n"),
               {"--actions-url", (home_.root() / "forge").string()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "built with: hello from the test internet")) << r.out;
  EXPECT_TRUE(has(r.out, "ran with: hello from the test internet")) << r.out;
  json rec = record();
  int opaque = 0, inspected = 0;
  for (const auto& f : rec["jobs"][0]["egress"]["fetches"]) {
    EXPECT_FALSE(f.contains("error")) << f.dump();
    if (f["kind"] == "connect" && f["host"] == "files.test") ++opaque;
    if (member(f, "url") == "https://files.test/hello.txt" && f["status"] == 200) ++inspected;
  }
  EXPECT_EQ(opaque, 1) << rec["jobs"][0]["egress"].dump(2);
  EXPECT_EQ(inspected, 1) << rec["jobs"][0]["egress"].dump(2);
}

TEST_F(InspectTest, BadInspectSettingsAreOneLineAndNothingRuns) {
  home_.write("wf/.lockstep.yml", "egress:\n  inspect: yes please\n");
  auto r = run(job_head("      - run: echo ran\n"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(has(r.err,
                  ".lockstep.yml:2:12: 'egress.inspect' must be true or false, got 'yes "
                  "please'"))
      << r.err;
  home_.write("wf/.lockstep.yml", "egress:\n  inspect: true\n  ca: /nonexistent/ca.pem\n");
  r = run(job_head("      - run: echo ran\n"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(has(r.err, "egress.ca: read /nonexistent/ca.pem")) << r.err;
  EXPECT_FALSE(has(r.out, "] ran"));
}

}  // namespace
}  // namespace lockstep::testing
