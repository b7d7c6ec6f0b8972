// lockstep.lock in a run: which lock applies, --frozen's refusals and how
// images and checkouts are pinned. No containers: files in a temp dir.
#include <gtest/gtest.h>

#include "common/digest.hpp"
#include "common/fs.hpp"
#include "pipeline/matrix.hpp"
#include "pipeline/parse.hpp"
#include "runner/engine/lock_use.hpp"

namespace lockstep::runner {
namespace {
namespace fs = std::filesystem;

const std::string kD1 = "sha256:" + std::string(64, '1');
const std::string kD2 = "sha256:" + std::string(64, '2');
const std::string kC1 = std::string(40, 'c');

class LockUseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = TempDir::create(fs::temp_directory_path(), "lock-use-test");
    ASSERT_TRUE(d);
    dir_.emplace(std::move(*d));
    fs::create_directories(root() / ".git");
    fs::create_directories(root() / ".github/workflows");
  }
  fs::path root() const { return dir_->path(); }

  // Writes the workflow and a lock pinning `images` for it.
  fs::path setup(const std::string& workflow, const std::vector<pipeline::LockedImage>& images,
                 const std::vector<pipeline::LockedSource>& sources = {}) {
    fs::path wf = root() / ".github/workflows/ci.yml";
    EXPECT_TRUE(write_file(wf, workflow));
    pipeline::Lockfile lock;
    lock.lockstep_version = "0.1.0";
    lock.workflow_path = ".github/workflows/ci.yml";
    lock.workflow_digest = sha256_of(workflow).str();
    lock.images = images;
    lock.sources = sources;
    EXPECT_TRUE(write_file(root() / "lockstep.lock", pipeline::serialize_lockfile(lock)));
    return wf;
  }

  Status frozen(const fs::path& wf, const pipeline::Lockfile& lock) {
    auto parsed = pipeline::load_workflow(wf);
    EXPECT_TRUE(parsed) << parsed.error().message();
    workflow_ = std::move(*parsed);
    pipeline::EvalContext base;
    base.contexts["github"] = pipeline::Value::object();
    auto plan = pipeline::expand_jobs(workflow_, base);
    EXPECT_TRUE(plan);
    return check_frozen(lock, *plan, base, {{"ubuntu-latest", "localhost/busybox:1.35"}},
                        root().string());
  }

  std::optional<TempDir> dir_;
  pipeline::Workflow workflow_;
};

const char* kWorkflow = R"(on: push
jobs:
  build:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        v: ["3.18", "3.19"]
    container: alpine:${{ matrix.v }}
    steps:
      - uses: actions/checkout@v4
      - uses: actions/checkout@v4
        with:
          repository: https://example.com/lib.git
          ref: v1
  mapped:
    runs-on: ubuntu-latest
    steps:
      - run: true
)";

pipeline::LockedImage image(const std::string& ref, const std::string& digest,
                            const std::string& source = "registry") {
  return {ref, source, "", {{"linux/amd64", digest}}, {}};
}

TEST_F(LockUseTest, FrozenAcceptsAFullyPinnedWorkflow) {
  fs::path wf = setup(kWorkflow,
                      {image("alpine:3.18", kD1), image("alpine:3.19", kD2),
                       image("localhost/busybox:1.35", kD1, "local")},
                      {{"https://example.com/lib.git", "v1", kC1, false, {}}});
  auto lock = load_run_lock(wf, "", true);
  ASSERT_TRUE(lock) << lock.error().message();
  ASSERT_TRUE(lock->has_value());
  auto st = frozen(wf, **lock);
  EXPECT_TRUE(st) << st.error().message();
}

TEST_F(LockUseTest, FrozenNamesEveryUnpinnedInput) {
  fs::path wf = setup(kWorkflow, {image("alpine:3.18", kD1)});
  auto lock = load_run_lock(wf, "", true);
  ASSERT_TRUE(lock && lock->has_value());
  auto st = frozen(wf, **lock);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().kind(), ErrorKind::kUsage);
  EXPECT_EQ(st.error().message(),
            "--frozen: checkout of 'https://example.com/lib.git' at 'v1' (job build (3.18)) is "
            "not pinned by lockstep.lock\n"
            "lockstep: error: --frozen: image 'alpine:3.19' (job build (3.19)) is not pinned by "
            "lockstep.lock\n"
            "lockstep: error: --frozen: checkout of 'https://example.com/lib.git' at 'v1' (job "
            "build (3.19)) is not pinned by lockstep.lock\n"
            "lockstep: error: --frozen: image 'localhost/busybox:1.35' (job mapped) is not pinned "
            "by lockstep.lock");

  wf = setup(kWorkflow, {image("alpine:3.18", kD1), image("localhost/busybox:1.35", kD1, "local")},
             {{"https://example.com/lib.git", "v1", kC1, false, {}}});
  lock = load_run_lock(wf, "", true);
  st = frozen(wf, **lock);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message(),
            "--frozen: image 'alpine:3.19' (job build (3.19)) is not pinned by lockstep.lock");
}

TEST_F(LockUseTest, FrozenRefusesAMatrixFromNeedsOutputs) {
  const std::string text = R"(on: push
jobs:
  setup:
    runs-on: x
    container: alpine:3.19
    outputs:
      m: ${{ steps.m.outputs.m }}
    steps:
      - id: m
        run: echo 'm={"v":["3.18"]}' >> $GITHUB_OUTPUT
  fan:
    needs: setup
    runs-on: x
    strategy:
      matrix: ${{ fromJSON(needs.setup.outputs.m) }}
    container: alpine:${{ matrix.v }}
    steps:
      - run: true
)";
  fs::path wf = setup(text, {image("alpine:3.19", kD1)});
  auto lock = load_run_lock(wf, "", true);
  ASSERT_TRUE(lock && lock->has_value());
  auto parsed = pipeline::load_workflow(wf);
  ASSERT_TRUE(parsed);
  pipeline::EvalContext base;
  base.contexts["github"] = pipeline::Value::object();
  // As the runner plans it: the dynamic job stands in with a null matrix.
  auto plan = pipeline::expand_job(*parsed, parsed->jobs[0], base);
  ASSERT_TRUE(plan);
  plan->push_back({&parsed->jobs[1], pipeline::OrderedValue(), "fan (matrix from needs)"});
  auto st = check_frozen(**lock, *plan, base, {}, root().string());
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message(),
            "--frozen: image 'alpine:${{ matrix.v }}' (job fan (matrix from needs)) reads "
            "'matrix', made from needs outputs at run time and cannot be pinned by lockstep.lock");
}

TEST_F(LockUseTest, FrozenWithAStaleLockNamesEveryInputItDoesNotPinAndEveryUnusedPin) {
  fs::path wf = setup(kWorkflow,
                      {image("alpine:3.18", kD1), image("alpine:3.19", kD2),
                       image("localhost/busybox:1.35", kD1, "local")},
                      {{"https://example.com/lib.git", "v1", kC1, false, {}}});
  // The matrix moves on to 3.20 and the library to v2 after the lock was made.
  std::string edited = kWorkflow;
  edited.replace(edited.find("\"3.18\", \"3.19\""), 14, "\"3.19\", \"3.20\"");
  edited.replace(edited.find("ref: v1"), 7, "ref: v2");
  ASSERT_TRUE(write_file(wf, edited));
  bool stale = false;
  auto lock = load_run_lock(wf, "", true, &stale);
  ASSERT_TRUE(lock && lock->has_value()) << (lock ? "" : lock.error().message());
  EXPECT_TRUE(stale);
  auto parsed = pipeline::load_workflow(wf);
  ASSERT_TRUE(parsed);
  pipeline::EvalContext base;
  base.contexts["github"] = pipeline::Value::object();
  auto plan = pipeline::expand_jobs(*parsed, base);
  ASSERT_TRUE(plan);
  auto st =
      check_frozen(**lock, *plan, base, {{"ubuntu-latest", "localhost/busybox:1.35"}},
                   root().string(), "lockstep.lock does not match ci.yml: run 'lockstep lock'");
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().kind(), ErrorKind::kUsage);
  EXPECT_EQ(st.error().message(),
            "lockstep.lock does not match ci.yml: run 'lockstep lock'\n"
            "lockstep: error:   checkout of 'https://example.com/lib.git' at 'v2' (job build "
            "(3.19)) is not pinned by lockstep.lock\n"
            "lockstep: error:   image 'alpine:3.20' (job build (3.20)) is not pinned by "
            "lockstep.lock\n"
            "lockstep: error:   checkout of 'https://example.com/lib.git' at 'v2' (job build "
            "(3.20)) is not pinned by lockstep.lock\n"
            "lockstep: error:   image 'alpine:3.18' is pinned but no longer used\n"
            "lockstep: error:   checkout of 'https://example.com/lib.git' at 'v1' is pinned but "
            "no longer used");
  // Without --frozen the same lock is used for what it still pins.
  stale = false;
  auto loose = load_run_lock(wf, "", false, &stale);
  ASSERT_TRUE(loose && loose->has_value());
  EXPECT_FALSE(stale);
}

// A reusable workflow's repository is pinned under `actions` too: a stale
// lock does not call its pin unused when the run's calls use it.
TEST_F(LockUseTest, FrozenWithAStaleLockKeepsThePinsOfReusableWorkflows) {
  fs::path wf = setup(kWorkflow,
                      {image("alpine:3.18", kD1), image("alpine:3.19", kD2),
                       image("localhost/busybox:1.35", kD1, "local")},
                      {{"https://example.com/lib.git", "v1", kC1, false, {}}});
  ASSERT_TRUE(write_file(wf, std::string(kWorkflow) + "# edited\n"));
  bool stale = false;
  auto lock = load_run_lock(wf, "", true, &stale);
  ASSERT_TRUE(lock && lock->has_value()) << (lock ? "" : lock.error().message());
  ASSERT_TRUE(stale);
  pipeline::Lockfile l = **lock;
  l.actions.push_back({"octo/shared", "v1", kC1, "", {"call"}});
  auto parsed = pipeline::load_workflow(wf);
  ASSERT_TRUE(parsed);
  pipeline::EvalContext base;
  base.contexts["github"] = pipeline::Value::object();
  auto plan = pipeline::expand_jobs(*parsed, base);
  ASSERT_TRUE(plan);
  const std::map<std::string, std::string> platforms = {
      {"ubuntu-latest", "localhost/busybox:1.35"}};
  auto used = check_frozen(l, *plan, base, platforms, root().string(), "stale", {"octo/shared@v1"});
  ASSERT_FALSE(used);
  EXPECT_EQ(used.error().message(), "stale");
  auto unused = check_frozen(l, *plan, base, platforms, root().string(), "stale");
  ASSERT_FALSE(unused);
  EXPECT_EQ(unused.error().message(),
            "stale\nlockstep: error:   action 'octo/shared@v1' is pinned but no longer used by a "
            "step of the workflow");
}

TEST_F(LockUseTest, LockOfAnotherWorkflowOrContent) {
  fs::path wf = setup(kWorkflow, {});
  // Changed after locking.
  ASSERT_TRUE(write_file(wf, std::string(kWorkflow) + "# edited\n"));
  auto lock = load_run_lock(wf, "", true);
  ASSERT_FALSE(lock);
  EXPECT_EQ(lock.error().message(),
            "lockstep.lock does not match " + wf.string() + ": run 'lockstep lock'");
  // Without --frozen the lock is still used.
  lock = load_run_lock(wf, "", false);
  ASSERT_TRUE(lock);
  EXPECT_TRUE(lock->has_value());

  fs::path other = root() / ".github/workflows/other.yml";
  ASSERT_TRUE(write_file(other, kWorkflow));
  lock = load_run_lock(other, root() / "lockstep.lock", false);
  ASSERT_FALSE(lock);
  EXPECT_NE(lock.error().message().find("locks .github/workflows/ci.yml, not " + other.string()),
            std::string::npos)
      << lock.error().message();
  // The project's lock for another workflow is ignored without --frozen.
  lock = load_run_lock(other, "", false);
  ASSERT_TRUE(lock);
  EXPECT_FALSE(lock->has_value());

  fs::remove(root() / "lockstep.lock");
  lock = load_run_lock(wf, "", false);
  ASSERT_TRUE(lock);
  EXPECT_FALSE(lock->has_value());
  lock = load_run_lock(wf, "", true);
  ASSERT_FALSE(lock);
  EXPECT_EQ(lock.error().kind(), ErrorKind::kUsage);
}

TEST_F(LockUseTest, PinsImagesByDigestAndCheckoutsByCommit) {
  pipeline::Lockfile lock;
  lock.images = {image("127.0.0.1:5000/ci/app:1", kD1),
                 image("localhost/busybox:1.35", kD2, "local")};
  lock.sources = {{"https://example.com/lib.git", "v1", kC1, false, {}},
                  {"/src/repo", "HEAD", kC1, true, {}}};
  ImagePin p = pin_image(&lock, "127.0.0.1:5000/ci/app:1");
  EXPECT_EQ(p.lookup, "127.0.0.1:5000/ci/app@" + kD1);
  EXPECT_EQ(p.locked, kD1);
  p = pin_image(&lock, "localhost/busybox:1.35");
  EXPECT_EQ(p.lookup, "localhost/busybox@" + kD2);
  p = pin_image(&lock, "alpine:3.19");
  EXPECT_EQ(p.lookup, "alpine:3.19");
  EXPECT_EQ(p.locked, "");
  p = pin_image(nullptr, "alpine:3.19");
  EXPECT_EQ(p.lookup, "alpine:3.19");

  cache::ImageRecord got;
  got.manifest = *Digest::parse(kD2);
  auto v =
      verify_image_pin(pin_image(&lock, "127.0.0.1:5000/ci/app:1"), "127.0.0.1:5000/ci/app:1", got);
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().kind(), ErrorKind::kIntegrity);
  EXPECT_TRUE(verify_image_pin(pin_image(&lock, "localhost/busybox:1.35"), "x", got));

  EXPECT_EQ(pin_checkout(&lock, "https://example.com/lib.git", "v1", "/src/repo"), kC1);
  EXPECT_EQ(pin_checkout(&lock, "https://example.com/lib.git", "v2", "/src/repo"), std::nullopt);
  // The workflow's own repository at the run's commit is never replaced.
  EXPECT_EQ(pin_checkout(&lock, "", "", "/src/repo"), std::nullopt);
  EXPECT_EQ(pin_checkout(nullptr, "https://example.com/lib.git", "v1", "/src/repo"), std::nullopt);
}

}  // namespace
}  // namespace lockstep::runner
