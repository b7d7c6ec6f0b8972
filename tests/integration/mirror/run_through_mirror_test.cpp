// `lockstep run --mirror` and `lockstep image pull --mirror` end to end: a
// real docker-registry upstream holding a pushed image, the real
// `lockstep mirror serve` in front of it, and the real binary pulling through
// it into private LOCKSTEP_HOMEs.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "../registry/local_registry.hpp"
#include "../registry/test_image.hpp"
#include "common/fs.hpp"
#include "common/json.hpp"
#include "registry-mirror/client.hpp"
#include "tests/support/lockstep_process.hpp"
#include "tests/support/quiet_log.hpp"

extern char** environ;

namespace lockstep::registry::testing {
namespace {

using lockstep::testing::LockstepHome;

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int count(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (size_t p = haystack.find(needle); p != std::string::npos; p = haystack.find(needle, p + 1))
    ++n;
  return n;
}

// `lockstep mirror serve` as a child process with its own LOCKSTEP_HOME;
// stopped with SIGTERM (SIGKILL after 10 s) and reaped on destruction.
class MirrorServe {
 public:
  MirrorServe(const std::filesystem::path& dir, const std::vector<std::string>& upstreams)
      : dir_(dir), port_(free_port()) {
    std::filesystem::create_directories(dir_);
    std::vector<std::string> args = {LOCKSTEP_BINARY,
                                     "mirror",
                                     "serve",
                                     "--listen",
                                     "127.0.0.1:" + std::to_string(port_),
                                     "--access-log",
                                     access_log().string()};
    for (const auto& u : upstreams) {
      args.push_back("--upstream");
      args.push_back(u);
    }
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e)
      if (std::string_view(*e).rfind("LOCKSTEP_HOME=", 0) != 0) env.emplace_back(*e);
    env.push_back("LOCKSTEP_HOME=" + (dir_ / "home").string());
    std::vector<char*> argv, envp;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    std::string log = (dir_ / "serve.log").string();
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    if (::posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), envp.data()) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
    started_ = pid_ > 0 && wait_for_port(port_).has_value();
  }
  ~MirrorServe() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int st = 0;
    for (int i = 0; i < 1000; ++i) {
      if (::waitpid(pid_, &st, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &st, 0);
  }
  MirrorServe(const MirrorServe&) = delete;
  MirrorServe& operator=(const MirrorServe&) = delete;

  bool started() const { return started_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::filesystem::path access_log() const { return dir_ / "access.jsonl"; }
  // The mirror logs a request after its response has gone out.
  std::string access() const {
    lockstep::testing::wait_until_log_is_still(access_log());
    return slurp(access_log());
  }
  std::string log() const { return slurp(dir_ / "serve.log"); }

 private:
  std::filesystem::path dir_;
  int port_ = 0;
  pid_t pid_ = -1;
  bool started_ = false;
};

class RunThroughMirror : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!LocalRegistry::available()) GTEST_SKIP() << "needs " << LocalRegistry::kBinary;
    auto r = LocalRegistry::start();
    ASSERT_TRUE(r) << r.error().message();
    upstream_.emplace(std::move(*r));
    auto d = TempDir::create(std::filesystem::temp_directory_path(), "ls-mirror-run-");
    ASSERT_TRUE(d) << d.error().message();
    dir_ = std::move(*d);
    ClientOptions o;
    o.credentials = CredentialStore{};
    auto c = RegistryClient::create(o);
    ASSERT_TRUE(c) << c.error().message();
    client_.emplace(std::move(*c));
  }

  // The upstream's name at the mirror is its registry domain, as clients name it.
  std::string upstream_flag() const {
    return upstream_->domain() + "=http://" + upstream_->domain();
  }
  std::string app_ref() const { return upstream_->domain() + "/app:v1"; }

  // Pushes the busybox image a LockstepHome imported (its store's blobs and
  // manifest) to the upstream as app:v1; returns the blob count.
  size_t push_busybox(const LockstepHome& builder, const std::string& manifest_digest,
                      const std::string& to = "") {
    auto blob = [&](const std::string& digest) {
      return slurp(builder.home() / "blobs" / "sha256" / digest.substr(7));
    };
    std::string manifest = blob(manifest_digest);
    auto doc = Json::parse(manifest, nullptr, false);
    if (doc.is_discarded()) return 0;
    std::vector<std::string> digests = {doc["config"]["digest"].get<std::string>()};
    for (const auto& l : doc["layers"]) digests.push_back(l["digest"].get<std::string>());
    auto ref = Reference::parse(to.empty() ? app_ref() : upstream_->domain() + "/" + to);
    for (const auto& d : digests)
      if (!client_->push_blob(*ref, blob(d))) return 0;
    std::string media_type =
        doc.value("mediaType", std::string("application/vnd.oci.image.manifest.v1+json"));
    auto pushed = client_->push_manifest(*ref, media_type, manifest);
    if (!pushed || pushed->str() != manifest_digest) return 0;
    return digests.size();
  }

  // A small image without a runnable shell, for `image pull`.
  void push_small() {
    TestImage img =
        make_image({{file("hello.txt", "hello through the mirror\n")}}, Compression::kGzip);
    auto ref = Reference::parse(app_ref());
    auto st = push_image(*client_, *ref, img);
    ASSERT_TRUE(st) << st.error().message();
    small_digest_ = img.manifest.digest.str();
  }

  std::optional<LocalRegistry> upstream_;
  std::optional<RegistryClient> client_;
  TempDir dir_;
  std::string small_digest_;
};

const char* kWorkflow = R"(name: mirrored
on: push
jobs:
  app:
    runs-on: ubuntu-latest
    container: {IMAGE}
    steps:
      - run: echo job-ran
      - run: busybox true && echo busybox-present
)";

TEST_F(RunThroughMirror, RunPullsThroughTheMirrorAndLaterRunsNeedOnlyTheMirror) {
  if (!lockstep::testing::is_root()) GTEST_SKIP() << "needs root: jobs run in containers";
  LockstepHome builder;
  std::string digest = builder.import_busybox("localhost/busybox:test");
  ASSERT_FALSE(digest.empty()) << "busybox import failed";
  size_t blobs = push_busybox(builder, digest);
  ASSERT_GT(blobs, 1u);

  MirrorServe mirror(dir_.path(), {upstream_flag()});
  ASSERT_TRUE(mirror.started()) << mirror.log();

  std::string wf_text = kWorkflow;
  wf_text.replace(wf_text.find("{IMAGE}"), 7, app_ref());

  // First run: the mirror fetches every blob from the upstream, once.
  LockstepHome first;
  auto wf = first.write("wf.yml", wf_text);
  auto r = first.lockstep({"run", wf.string(), "--mirror", mirror.url()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << mirror.log();
  EXPECT_NE(r.out.find("busybox-present"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("pulling " + app_ref() + " through mirror " + mirror.url()),
            std::string::npos)
      << r.err;
  EXPECT_EQ(upstream_->count_requests("GET /v2/app/blobs/"), static_cast<int>(blobs));
  std::string access = mirror.access();
  // Every request of the pull reached the mirror, routed to the upstream by
  // its domain, and missed its cache.
  EXPECT_EQ(count(access, "\"target\":\"/v2/" + upstream_->domain() + "/app/blobs/"),
            static_cast<int>(blobs))
      << access;
  EXPECT_EQ(count(access, "\"cache\":\"miss\""), static_cast<int>(blobs) + 1) << access;

  // The record names the image by its real reference and digest.
  std::filesystem::path record = first.latest_record();
  auto rec = Json::parse(slurp(record), nullptr, false);
  ASSERT_FALSE(rec.is_discarded()) << record;
  ASSERT_EQ(rec["jobs"].size(), 1u);
  EXPECT_EQ(rec["jobs"][0]["image"]["ref"], app_ref());
  EXPECT_EQ(rec["jobs"][0]["image"]["manifest_digest"], digest);
  auto images = first.lockstep({"image", "ls"});
  EXPECT_NE(images.out.find(upstream_->domain() + "/app"), std::string::npos) << images.out;
  EXPECT_EQ(images.out.find(mirror.url().substr(7)), std::string::npos) << images.out;

  // With the upstream gone, a fresh LOCKSTEP_HOME still gets the image: the
  // mirror alone serves it.
  upstream_.reset();
  LockstepHome second;
  wf = second.write("wf.yml", wf_text);
  r = second.lockstep({"run", wf.string()}, {"LOCKSTEP_MIRROR=" + mirror.url()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << mirror.log();
  EXPECT_NE(r.out.find("busybox-present"), std::string::npos) << r.out;
  access = mirror.access();
  EXPECT_EQ(count(access, "\"cache\":\"hit\""), static_cast<int>(blobs) + 1) << access;
  EXPECT_EQ(count(r.err, "warning"), 0) << r.err;
}

// `runs-on: ubuntu-latest` with no container: lockstep's stand-in for the
// hosted runner is Docker Hub's ubuntu image, resolved through the mirror and
// pinned like any image. Here "Docker Hub" is the loopback registry behind the
// mirror's docker.io upstream.
TEST_F(RunThroughMirror, HostedRunnerLabelRunsInItsDefaultImageThroughTheMirror) {
  if (!lockstep::testing::is_root()) GTEST_SKIP() << "needs root: jobs run in containers";
  LockstepHome builder;
  std::string digest = builder.import_busybox("localhost/busybox:test");
  ASSERT_FALSE(digest.empty()) << "busybox import failed";
  ASSERT_GT(push_busybox(builder, digest, "library/ubuntu:24.04"), 1u);
  MirrorServe mirror(dir_.path(), {"docker.io=http://" + upstream_->domain()});
  ASSERT_TRUE(mirror.started()) << mirror.log();

  LockstepHome home;
  auto wf = home.write("wf/ci.yml", R"(on: push
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - run: echo stand-in ran
  b:
    runs-on: [ubuntu-latest]
    steps:
      - run: echo second job
)");
  auto r = home.lockstep({"run", wf.string(), "--mirror", mirror.url()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << mirror.log();
  EXPECT_NE(r.out.find("[a] stand-in ran"), std::string::npos) << r.out;
  // One note for the label, however many jobs use it.
  EXPECT_EQ(count(r.err,
                  "lockstep: note: runs-on 'ubuntu-latest' runs in docker.io/library/ubuntu:24.04 "
                  "(GitHub's hosted runner image is a VM, not a container); choose another with "
                  "runs-on: in .lockstep.yml or --platform ubuntu-latest=IMAGE\n"),
            1)
      << r.err;
  auto rec = Json::parse(slurp(home.latest_record()), nullptr, false);
  EXPECT_EQ(rec["jobs"][0]["image"]["ref"], "docker.io/library/ubuntu:24.04");
  EXPECT_EQ(rec["jobs"][0]["image"]["manifest_digest"], digest);
  EXPECT_NE(mirror.access().find("/v2/docker.io/library/ubuntu/manifests/24.04"),
            std::string::npos);

  // `lockstep lock` pins the stand-in like any image.
  auto lock = home.lockstep({"lock", wf.string(), "--mirror", mirror.url()});
  ASSERT_EQ(lock.exit_code, 0) << lock.out << lock.err;
  auto locked = Json::parse(slurp(home.root() / "wf" / "lockstep.lock"), nullptr, false);
  ASSERT_EQ(locked["images"].size(), 1u) << locked.dump(2);
  EXPECT_EQ(locked["images"][0]["reference"], "docker.io/library/ubuntu:24.04");
  EXPECT_EQ(locked["images"][0]["manifests"]["linux/amd64"], digest);

  // A project that maps the label gets its own image and no note.
  home.write("wf/.lockstep.yml", "runs-on:\n  ubuntu-latest: localhost/busybox:test\n");
  ASSERT_FALSE(home.import_busybox("localhost/busybox:test").empty());
  home.write("wf/lockstep.lock", "");
  std::filesystem::remove(home.root() / "wf" / "lockstep.lock");
  r = home.lockstep({"run", wf.string(), "--mirror", mirror.url()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.err.find("lockstep: note: runs-on"), std::string::npos) << r.err;
}

TEST_F(RunThroughMirror, UnreachableMirrorFallsBackToTheRegistryWithOneWarning) {
  push_small();
  LockstepHome home;
  // A bare loopback HOST:PORT means plain HTTP.
  std::string bare = "127.0.0.1:" + std::to_string(free_port());
  std::string dead = "http://" + bare;
  auto r = home.lockstep({"image", "pull", "--quiet", app_ref(), "--mirror", bare});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, small_digest_ + "\n");
  EXPECT_EQ(count(r.err, "\n"), 1) << r.err;
  EXPECT_EQ(r.err.rfind("lockstep: warning: cannot reach mirror " + dead + ": ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("; going to the registries directly\n"), std::string::npos) << r.err;
  EXPECT_EQ(upstream_->count_requests("GET /v2/app/manifests/v1"), 1);
}

TEST_F(RunThroughMirror, MirrorErrorsAreReportedNotBypassed) {
  push_small();
  // A mirror that does not know this registry answers 404; the image exists
  // upstream, but lockstep reports the mirror's answer instead of going there.
  MirrorServe mirror(dir_.path(), {"other.example=http://127.0.0.1:9"});
  ASSERT_TRUE(mirror.started()) << mirror.log();
  int upstream_before = upstream_->count_requests("/v2/app/");
  LockstepHome home;
  auto r =
      home.lockstep({"image", "pull", "--quiet", app_ref()}, {"LOCKSTEP_MIRROR=" + mirror.url()});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  const std::string domain = upstream_->domain();
  EXPECT_EQ(r.err, "lockstep: error: image " + app_ref() + " not found in registry " + domain +
                       " (manifest unknown) (through mirror " + mirror.url() +
                       "; a mirror without an upstream for registry " + domain +
                       " answers 404 too)\n");
  EXPECT_EQ(r.err.find("warning"), std::string::npos) << r.err;
  EXPECT_EQ(upstream_->count_requests("/v2/app/"), upstream_before);
  EXPECT_FALSE(std::filesystem::exists(home.home() / "images" / "images.json") &&
               slurp(home.home() / "images" / "images.json").find("app") != std::string::npos);

  // Through a mirror that knows it, the same pull works and names the real reference.
  MirrorServe good(dir_.path() / "good", {upstream_flag()});
  ASSERT_TRUE(good.started()) << good.log();
  r = home.lockstep({"image", "pull", "--quiet", app_ref(), "--mirror", good.url()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, small_digest_ + "\n");
  auto ls = home.lockstep({"image", "ls"});
  EXPECT_NE(ls.out.find(upstream_->domain() + "/app"), std::string::npos) << ls.out;
}

TEST_F(RunThroughMirror, LockResolvesThroughTheMirrorWhichAloneAnswersLater) {
  push_small();
  MirrorServe mirror(dir_.path(), {upstream_flag()});
  ASSERT_TRUE(mirror.started()) << mirror.log();
  LockstepHome home;
  std::string wf_text = kWorkflow;
  wf_text.replace(wf_text.find("{IMAGE}"), 7, app_ref());
  auto wf = home.write("ci.yml", wf_text);
  auto r = home.lockstep({"lock", wf.string(), "--mirror", mirror.url()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << mirror.log();
  EXPECT_EQ(r.err.find("warning"), std::string::npos) << r.err;
  auto lock = Json::parse(slurp(home.root() / "lockstep.lock"), nullptr, false);
  ASSERT_FALSE(lock.is_discarded());
  ASSERT_EQ(lock["images"].size(), 1u) << lock.dump();
  EXPECT_EQ(lock["images"][0]["reference"], app_ref());
  EXPECT_EQ(lock["images"][0]["source"], "registry");
  EXPECT_EQ(lock["images"][0]["manifests"]["linux/amd64"], small_digest_);
  EXPECT_EQ(
      count(mirror.access(), "\"target\":\"/v2/" + upstream_->domain() + "/app/manifests/v1\""), 1);

  // With the registry gone, the mirror (its tag still fresh) alone keeps the
  // lock current; $LOCKSTEP_MIRROR names it like for a run.
  upstream_.reset();
  r = home.lockstep({"lock", wf.string(), "--check"}, {"LOCKSTEP_MIRROR=" + mirror.url()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.err.find("warning"), std::string::npos) << r.err;

  // An unreachable mirror: one warning, then the registry directly (here gone
  // too, so the lock says which image it could not resolve).
  std::string dead = "http://127.0.0.1:" + std::to_string(free_port());
  r = home.lockstep({"lock", wf.string(), "--mirror", dead, "--output", "other.lock"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(count(r.err, "lockstep: warning: cannot reach mirror " + dead + ": "), 1) << r.err;
  EXPECT_NE(r.err.find("resolve image '" + app_ref() + "'"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(home.root() / "other.lock"));
}

TEST_F(RunThroughMirror, PrefetchOfALockWarmsTheMirrorWithEveryPinnedImage) {
  push_small();
  MirrorServe mirror(dir_.path(), {upstream_flag()});
  ASSERT_TRUE(mirror.started()) << mirror.log();
  LockstepHome home;
  ASSERT_FALSE(home.import_busybox("localhost/busybox:test").empty());
  auto wf = home.write("ci.yml", R"(on: push
jobs:
  app:
    runs-on: x
    container: )" + app_ref() + R"(
    steps: [{run: "true"}]
  tool:
    runs-on: x
    container: localhost/busybox:test
    steps: [{run: "true"}]
)");
  auto r = home.lockstep({"lock", wf.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string lock = (home.root() / "lockstep.lock").string();

  r = home.lockstep({"mirror", "prefetch", lock}, {"LOCKSTEP_MIRROR=" + mirror.url()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err << mirror.log();
  EXPECT_EQ(r.out.rfind("prefetched 1 images: 1 manifests, 2 blobs, ", 0), 0u) << r.out;
  EXPECT_EQ(r.err,
            "lockstep: note: image 'localhost/busybox:test' is only in a local image store; "
            "skipped\n");
  // The manifest went by its locked digest, as a run with the lock pulls it.
  EXPECT_EQ(count(mirror.access(), "/app/manifests/" + small_digest_), 1);

  // With the registry gone, a fresh host pulls the pinned image from the mirror alone.
  upstream_.reset();
  LockstepHome fresh;
  r = fresh.lockstep(
      {"image", "pull", "--quiet", app_ref() + "@" + small_digest_, "--mirror", mirror.url()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, small_digest_ + "\n");

  // A platform the lock does not pin is named.
  r = home.lockstep(
      {"mirror", "prefetch", lock, "--mirror", mirror.url(), "--platform", "linux/arm64"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("image '" + app_ref() + "': the lock pins no linux/arm64 manifest"),
            std::string::npos)
      << r.err;
}

TEST_F(RunThroughMirror, BadMirrorUrlIsAUsageError) {
  LockstepHome home;
  auto r = home.lockstep({"image", "pull", app_ref(), "--mirror", "ftp://mirror"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "lockstep: error: --mirror 'ftp://mirror': expected http://HOST[:PORT] or "
            "https://HOST[:PORT]\n");
  r = home.lockstep({"run", "x.yml"}, {"LOCKSTEP_MIRROR=http://a/b"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "lockstep: error: LOCKSTEP_MIRROR 'http://a/b': expected http://HOST[:PORT] or "
            "https://HOST[:PORT]\n");
}

}  // namespace
}  // namespace lockstep::registry::testing
