// lockstep.lock end to end: `lockstep lock` against a real docker-registry
// and real git repositories, `lock --check`, `run` pinned by the lock,
// `run --frozen` refusals, and .lockstep.yml runs-on mappings.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "registry-mirror/client.hpp"
#include "registry-mirror/reference.hpp"
#include "tests/integration/registry/local_registry.hpp"
#include "tests/support/lockstep_process.hpp"

namespace lockstep::testing {
namespace {
namespace fs = std::filesystem;
using registry::testing::LocalRegistry;

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// git in `dir`, failing the test on a non-zero exit.
std::string git(const fs::path& dir, std::vector<std::string> args) {
  args.insert(args.begin(), {"/usr/bin/git", "-C", dir.string()});
  auto r = run_process(
      args, {"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t",
             "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_GLOBAL=/dev/null"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return trim(r.out);
}

// Writes `text` to `path`, creating its directory.
bool put(const fs::path& path, const std::string& text) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  return write_file(path, text).has_value();
}

void init_repo(const fs::path& dir) {
  fs::create_directories(dir);
  git(dir, {"init", "-q", "-b", "main"});
}

void commit_all(const fs::path& dir, const std::string& message) {
  git(dir, {"add", "-A"});
  git(dir, {"commit", "-q", "-m", message});
}

class LockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!is_root()) GTEST_SKIP() << "needs root: containers use mount/pid/net namespaces";
    if (!LocalRegistry::available())
      GTEST_SKIP() << "needs " << LocalRegistry::kBinary << " (apt-get install docker-registry)";
    // Two images differing in /marker, built in a separate state dir so
    // that the runs below must fetch them from the registry.
    ASSERT_FALSE(builder_.import_busybox("localhost/busybox:one").empty());
    fs::path two = builder_.root() / "rootfs-two";
    ASSERT_EQ(
        run_process({"/bin/cp", "-a", (builder_.root() / "busybox-rootfs").string(), two.string()})
            .exit_code,
        0);
    ASSERT_TRUE(put(builder_.root() / "busybox-rootfs/marker", "one\n"));
    ASSERT_TRUE(put(two / "marker", "two\n"));
    auto r = builder_.lockstep({"image", "import", (builder_.root() / "busybox-rootfs").string(),
                                "--tag", "localhost/busybox:one"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    one_ = trim(r.out);
    r = builder_.lockstep({"image", "import", two.string(), "--tag", "localhost/busybox:two"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    two_ = trim(r.out);
    ASSERT_NE(one_, two_);
    auto reg = LocalRegistry::start();
    ASSERT_TRUE(reg) << reg.error().message();
    registry_.emplace(std::move(*reg));
    image_ = registry_->domain() + "/ci/app:1";
    push(one_, image_);
    // A service image: busybox whose command keeps running.
    fs::path layout = builder_.root() / "svc-layout";
    auto m = run_process({"/usr/bin/python3",
                          std::string(LOCKSTEP_SOURCE_DIR) + "/tests/support/make_oci_image.py",
                          (builder_.root() / "busybox-rootfs").string(), layout.string(), "--cmd",
                          R"(["sleep", "600"])"});
    ASSERT_EQ(m.exit_code, 0) << m.err;
    r = builder_.lockstep({"image", "import", layout.string(), "--tag", "localhost/svc:1"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    svc_ = trim(r.out);
    service_ = registry_->domain() + "/ci/svc:1";
    push(svc_, service_);
    // The local image the run side knows without a registry.
    ASSERT_FALSE(home_.import_busybox("localhost/busybox:test").empty());
  }

  // Pushes the builder's image `manifest` to the registry as `target`.
  void push(const std::string& manifest, const std::string& target) {
    auto ref = registry::Reference::parse(target);
    ASSERT_TRUE(ref);
    auto client = registry::RegistryClient::create();
    ASSERT_TRUE(client);
    auto blob = [&](const std::string& digest) {
      auto b = read_file(builder_.home() / "blobs/sha256" / digest.substr(7));
      EXPECT_TRUE(b) << digest;
      return b ? *b : std::string();
    };
    std::string bytes = blob(manifest);
    auto m = nlohmann::json::parse(bytes);
    ASSERT_TRUE(client->push_blob(*ref, blob(m["config"]["digest"])));
    for (const auto& l : m["layers"]) ASSERT_TRUE(client->push_blob(*ref, blob(l["digest"])));
    auto pushed = client->push_manifest(*ref, m["mediaType"].get<std::string>(), bytes);
    ASSERT_TRUE(pushed) << pushed.error().message();
    ASSERT_EQ(pushed->str(), manifest);
  }

  ProcessOutput lockstep(std::vector<std::string> args, const fs::path& cwd) {
    args.insert(args.begin(), LOCKSTEP_BINARY);
    return run_process(args, {"LOCKSTEP_HOME=" + home_.home().string()}, cwd);
  }

  LockstepHome builder_;
  LockstepHome home_;
  std::optional<LocalRegistry> registry_;
  std::string one_, two_, image_, svc_, service_;
};

TEST_F(LockTest, LocksTagAndRefCheckSeesThemMoveRunKeepsTheLockedOnes) {
  fs::path lib = home_.root() / "lib";
  init_repo(lib);
  ASSERT_TRUE(put(lib / "version.txt", "lib one\n"));
  commit_all(lib, "one");
  git(lib, {"tag", "v1"});
  std::string lib_v1 = git(lib, {"rev-parse", "HEAD"});

  fs::path proj = home_.root() / "proj";
  init_repo(proj);
  ASSERT_TRUE(put(proj / ".github/workflows/ci.yml", R"(on: push
jobs:
  build:
    runs-on: ubuntu-latest
    container: )" + image_ + R"(
    services:
      side:
        image: )" + service_ + R"(
    steps:
      - uses: actions/checkout@v4
        with:
          repository: )" + lib.string() + R"(
          ref: v1
          path: lib
      - run: cat /marker lib/version.txt
)"));
  commit_all(proj, "ci");

  auto r = lockstep({"lock"}, proj);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto text = read_file(proj / "lockstep.lock");
  ASSERT_TRUE(text);
  auto lock = nlohmann::json::parse(*text);
  EXPECT_EQ(lock["schema"], "lockstep.lock/v2");
  EXPECT_EQ(lock["workflow"]["path"], ".github/workflows/ci.yml");
  ASSERT_EQ(lock["images"].size(), 2u) << *text;
  EXPECT_EQ(lock["images"][0]["reference"], image_);
  EXPECT_EQ(lock["images"][0]["source"], "registry");
  EXPECT_EQ(lock["images"][0]["manifests"]["linux/amd64"], one_);
  EXPECT_EQ(lock["images"][1]["reference"], service_);
  EXPECT_EQ(lock["images"][1]["manifests"]["linux/amd64"], svc_);
  bool found_lib = false, found_own = false;
  for (const auto& s : lock["sources"]) {
    if (s["url"] == lib.string() && s["ref"] == "v1") {
      found_lib = true;
      EXPECT_EQ(s["commit"], lib_v1);
    }
    if (s.contains("workflow-repository")) {
      found_own = true;
      EXPECT_EQ(s["commit"], git(proj, {"rev-parse", "HEAD"}));
    }
  }
  EXPECT_TRUE(found_lib) << *text;
  EXPECT_TRUE(found_own) << *text;
  // Locking again gives the same bytes.
  r = lockstep({"lock"}, proj);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(*read_file(proj / "lockstep.lock"), *text);
  r = lockstep({"lock", "--check"}, proj);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;

  // Move the tags and the ref (the service tag to an image without a command).
  push(two_, image_);
  push(two_, service_);
  ASSERT_TRUE(put(lib / "version.txt", "lib two\n"));
  commit_all(lib, "two");
  git(lib, {"tag", "-f", "v1"});
  std::string lib_v2 = git(lib, {"rev-parse", "HEAD"});
  r = lockstep({"lock", "--check"}, proj);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("stale: image '" + image_ + "': linux/amd64 now " + two_ + " (locked " +
                       one_ + ")"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("stale: source '" + lib.string() + "' ref 'v1' now " + lib_v2 + " (locked " +
                       lib_v1 + ")"),
            std::string::npos)
      << r.err;
  // The lock file itself is untouched by --check.
  EXPECT_EQ(*read_file(proj / "lockstep.lock"), *text);

  // The run uses what the lock pins, not where the tag and ref are now.
  r = lockstep({"run", "--frozen"}, proj);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("] one"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("] lib one"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("] two"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("lib two"), std::string::npos) << r.out;
  // The record names the locked digests.
  auto at = r.err.find("recorded in ");
  ASSERT_NE(at, std::string::npos) << r.err;
  auto record_path = r.err.substr(at + 12, r.err.find('\n', at) - at - 12);
  auto record = read_file(record_path);
  ASSERT_TRUE(record) << record_path;
  auto rec = nlohmann::json::parse(*record);
  ASSERT_EQ(rec["jobs"].size(), 1u);
  EXPECT_EQ(rec["jobs"][0]["image"]["manifest_digest"], one_) << *record;
  // The service's digest (in the job's environment document) is the locked
  // one too: the moved tags appear nowhere.
  EXPECT_NE(record->find(svc_), std::string::npos) << *record;
  EXPECT_EQ(record->find(two_), std::string::npos) << *record;

  // A new lock follows the moved tags and ref.
  push(svc_, service_);
  r = lockstep({"lock"}, proj);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = lockstep({"run", "--frozen"}, proj);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("] two"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("] lib two"), std::string::npos) << r.out;
}

TEST_F(LockTest, FrozenRefusesWhatTheLockDoesNotPin) {
  fs::path proj = home_.root() / "frozen";
  init_repo(proj);
  ASSERT_TRUE(
      write_file(proj / ".lockstep.yml", "runs-on:\n  ubuntu-latest: localhost/busybox:test\n"));
  ASSERT_TRUE(put(proj / ".github/workflows/ci.yml", R"(on: push
jobs:
  build:
    runs-on: ubuntu-latest
    outputs:
      img: localhost/busybox:test
    steps:
      - run: echo built
  deploy:
    needs: build
    runs-on: ubuntu-latest
    container: ${{ needs.build.outputs.img }}
    steps:
      - run: echo deployed
)"));
  commit_all(proj, "ci");
  auto r = lockstep({"lock"}, proj);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  commit_all(proj, "lock");
  EXPECT_NE(r.err.find("warning: job deploy: container image '${{ needs.build.outputs.img }}' "
                       "reads 'needs', known only at run time: not locked"),
            std::string::npos)
      << r.err;
  auto lock = nlohmann::json::parse(*read_file(proj / "lockstep.lock"));
  ASSERT_EQ(lock["images"].size(), 1u);
  EXPECT_EQ(lock["images"][0]["source"], "local");

  // An image mapped on the command line is not the locked one.
  r = lockstep(
      {"run", "--frozen", "--job", "build", "--platform", "ubuntu-latest=localhost/busybox:other"},
      proj);
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_EQ(r.err,
            "lockstep: error: --frozen: image 'localhost/busybox:other' (job build) is not pinned "
            "by lockstep.lock\n");
  EXPECT_FALSE(fs::exists(home_.home() / "runs"));
  // An input known only at run time.
  r = lockstep({"run", "--frozen"}, proj);
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_EQ(r.err,
            "lockstep: error: --frozen: image '${{ needs.build.outputs.img }}' (job deploy) reads "
            "'needs', known only at run time and cannot be pinned by lockstep.lock\n");
  // Without --frozen it resolves at run time.
  r = lockstep({"run"}, proj);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("] deployed"), std::string::npos) << r.out;
}

TEST_F(LockTest, LockOfAnotherOrAChangedWorkflowIsRefused) {
  fs::path proj = home_.root() / "two-workflows";
  init_repo(proj);
  std::string body = R"(on: push
jobs:
  a:
    runs-on: x
    container: localhost/busybox:test
    steps:
      - run: echo a
)";
  ASSERT_TRUE(put(proj / ".github/workflows/a.yml", body));
  ASSERT_TRUE(put(proj / ".github/workflows/b.yml", body));
  commit_all(proj, "ci");
  auto r = lockstep({"run", "--frozen", ".github/workflows/a.yml"}, proj);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--frozen: no lockstep.lock for .github/workflows/a.yml"), std::string::npos)
      << r.err;

  r = lockstep({"lock", ".github/workflows/a.yml", "--output", "a.lock"}, proj);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = lockstep({"run", ".github/workflows/b.yml", "--lock", "a.lock"}, proj);
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("lockstep: error: a.lock locks .github/workflows/a.yml, not "
                       ".github/workflows/b.yml"),
            std::string::npos)
      << r.err;
  r = lockstep({"run", ".github/workflows/a.yml", "--lock", "a.lock", "--frozen"}, proj);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;

  r = lockstep({"lock", ".github/workflows/a.yml"}, proj);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(put(proj / ".github/workflows/a.yml", body + "      - run: echo more\n"));
  r = lockstep({"run", "--frozen", ".github/workflows/a.yml"}, proj);
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_EQ(r.err,
            "lockstep: error: lockstep.lock does not match .github/workflows/a.yml: run "
            "'lockstep lock'\n");
  r = lockstep({"lock", "--check", ".github/workflows/a.yml"}, proj);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("stale: workflow .github/workflows/a.yml changed"), std::string::npos)
      << r.err;
  // A bad lock file is one located line.
  ASSERT_TRUE(put(proj / "lockstep.lock", "{\n  \"schema\": \"lockstep.lock/v9\"\n}\n"));
  r = lockstep({"run", ".github/workflows/a.yml"}, proj);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("lockstep.lock:2:13: schema 'lockstep.lock/v9' is newer"), std::string::npos)
      << r.err;
}

TEST_F(LockTest, ProjectConfigMapsRunsOnAndSetsDefaults) {
  // The host's network namespace, as a job with the host network sees it (its interfaces come
  // and go with other tests' networks; the namespace is stable).
  std::error_code ec;
  auto host_net = fs::read_symlink("/proc/self/ns/net", ec).string();
  ASSERT_FALSE(ec);
  fs::path proj = home_.root() / "config";
  init_repo(proj);
  ASSERT_TRUE(put(proj / ".lockstep.yml", R"(runs-on:
  ubuntu-latest: localhost/busybox:test
defaults:
  network: host
  pids-limit: 64
)"));
  ASSERT_TRUE(put(proj / ".github/workflows/ci.yml", R"yml(on: push
jobs:
  mapped:
    runs-on: ubuntu-latest
    steps:
      - run: echo "mapped, network $(readlink /proc/self/ns/net)"
  own:
    runs-on: ubuntu-latest
    container:
      image: localhost/busybox:test
      options: --network none
    steps:
      - run: echo "own, interfaces $(grep -c "[:]" /proc/net/dev)"
)yml"));
  commit_all(proj, "ci");
  auto r = lockstep({"run"}, proj);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  // The defaults apply to the mapped job; the job's own options win.
  EXPECT_NE(r.out.find("[mapped] mapped, network " + host_net + "\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[own] own, interfaces 1\n"), std::string::npos) << r.out;
  // --platform wins over the config.
  r = lockstep({"run", "--job", "mapped", "--platform", "ubuntu-latest=localhost/busybox:missing"},
               proj);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("localhost/busybox:missing"), std::string::npos) << r.err;
  // --config names another file.
  ASSERT_TRUE(put(proj / "other.yml", "runs-on:\n  ubuntu-latest: localhost/busybox:gone\n"));
  r = lockstep({"run", "--job", "mapped", "--config", "other.yml"}, proj);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("localhost/busybox:gone"), std::string::npos) << r.err;
  // A config error is located.
  ASSERT_TRUE(put(proj / ".lockstep.yml", "runs_on:\n  ubuntu-latest: x\n"));
  r = lockstep({"run"}, proj);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(".lockstep.yml:1:1: unknown key 'runs_on' (did you mean 'runs-on'?)"),
            std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace lockstep::testing
