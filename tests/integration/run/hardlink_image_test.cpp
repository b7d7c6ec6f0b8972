// An image whose second layer hard-links a file of the first, as OCI layers
// may (they apply onto their parents): built by tests/support/make_oci_image.py,
// pushed to a real docker-registry, pulled by tag and by digest with
// `lockstep image pull`, and run: inside the container the names are one
// inode.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>

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

class HardlinkImageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!is_root()) GTEST_SKIP() << "needs root: containers use mount/pid/net namespaces";
    if (!LocalRegistry::available())
      GTEST_SKIP() << "needs " << LocalRegistry::kBinary << " (apt-get install docker-registry)";
    // Layer 1: a busybox rootfs with /etc/a. Layer 2: only /etc/hl, a hard
    // link to /etc/a, and /etc/hl2, a hard link to /etc/hl.
    fs::path rootfs = builder_.root() / "rootfs";
    auto r =
        run_process({"/bin/bash", std::string(LOCKSTEP_SOURCE_DIR) + "/scripts/busybox-rootfs.sh",
                     rootfs.string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_TRUE(write_file(rootfs / "etc/a", "shared content\n"));
    fs::path layout = builder_.root() / "layout";
    r = run_process({"/usr/bin/python3",
                     std::string(LOCKSTEP_SOURCE_DIR) + "/tests/support/make_oci_image.py",
                     rootfs.string(), layout.string(), "--hardlink-layer", "etc/hl=etc/a",
                     "--hardlink-layer", "etc/hl2=etc/hl"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = builder_.lockstep({"image", "import", layout.string(), "--tag", "localhost/hl:1"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    digest_ = trim(r.out);
    auto reg = LocalRegistry::start();
    ASSERT_TRUE(reg) << reg.error().message();
    registry_.emplace(std::move(*reg));
    repo_ = registry_->domain() + "/ci/hardlinks";
    push(digest_, repo_ + ":1");
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
    ASSERT_EQ(m["layers"].size(), 2u);
    ASSERT_TRUE(client->push_blob(*ref, blob(m["config"]["digest"])));
    for (const auto& l : m["layers"]) ASSERT_TRUE(client->push_blob(*ref, blob(l["digest"])));
    auto pushed = client->push_manifest(*ref, m["mediaType"].get<std::string>(), bytes);
    ASSERT_TRUE(pushed) << pushed.error().message();
    ASSERT_EQ(pushed->str(), manifest);
  }

  // Pulls `ref` into `home`, then runs a job in it that stats the three
  // names; returns the job's output.
  std::string pull_and_stat(const LockstepHome& home, const std::string& ref) {
    auto pulled = home.lockstep({"image", "pull", "--quiet", ref});
    EXPECT_EQ(pulled.exit_code, 0) << pulled.err;
    EXPECT_EQ(trim(pulled.out), digest_);
    auto wf = home.write("ci.yml", R"(on: push
jobs:
  links:
    runs-on: linux
    container: )" + ref + R"(
    steps:
      - run: |
          stat -c 'inode=%i links=%h name=%n' /etc/a /etc/hl /etc/hl2
          cat /etc/hl2
)");
    auto r = home.lockstep({"run", wf.string()});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    return r.out;
  }

  // The inode of each name in `out`, which must all be the same and have
  // three links.
  void expect_one_inode(const std::string& out) {
    std::map<std::string, std::string> inode;
    std::regex line("inode=(\\d+) links=(\\d+) name=(/etc/\\w+)");
    for (auto it = std::sregex_iterator(out.begin(), out.end(), line); it != std::sregex_iterator();
         ++it) {
      inode[(*it)[3]] = (*it)[1];
      EXPECT_EQ((*it)[2], "3") << (*it)[0];
    }
    ASSERT_EQ(inode.size(), 3u) << out;
    EXPECT_EQ(inode["/etc/hl"], inode["/etc/a"]) << out;
    EXPECT_EQ(inode["/etc/hl2"], inode["/etc/a"]) << out;
    EXPECT_NE(out.find("shared content"), std::string::npos) << out;
  }

  LockstepHome builder_;
  std::optional<LocalRegistry> registry_;
  std::string digest_, repo_;
};

TEST_F(HardlinkImageTest, PulledByTagRunsWithOneInodeForAllNames) {
  LockstepHome home;
  expect_one_inode(pull_and_stat(home, repo_ + ":1"));
  // The first layer stands alone (keyed by diff id); the second depends on it
  // (keyed by chain id).
  auto inspect = home.lockstep({"image", "inspect", repo_ + ":1"});
  ASSERT_EQ(inspect.exit_code, 0) << inspect.err;
  auto j = nlohmann::json::parse(inspect.out);
  ASSERT_EQ(j["layers"].size(), 2u);
  EXPECT_EQ(j["layers"][0]["unpackedAs"], "layer");
  EXPECT_EQ(j["layers"][1]["unpackedAs"], "chain");
  EXPECT_EQ(j["layers"][0]["chainId"], j["layers"][0]["diffId"]);
  std::string chain = j["layers"][1]["chainId"];
  EXPECT_TRUE(fs::is_directory(home.home() / "layers" / ("chain-" + chain.substr(7))));
}

TEST_F(HardlinkImageTest, PulledByDigestRunsWithOneInodeForAllNames) {
  LockstepHome home;
  expect_one_inode(pull_and_stat(home, repo_ + "@" + digest_));
}

}  // namespace
}  // namespace lockstep::testing
