// Built-in actions and services around a job's steps, with real git
// repositories and real sibling containers.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "common/fs.hpp"
#include "common/json.hpp"
#include "tests/support/lockstep_process.hpp"

namespace lockstep::testing {
namespace {

bool has(const std::string& s, const std::string& needle) {
  return s.find(needle) != std::string::npos;
}

class ActionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!is_root()) GTEST_SKIP() << "needs root: containers use mount/pid/net namespaces";
    ASSERT_FALSE(home_.import_busybox("localhost/busybox:test").empty());
  }
  ProcessOutput run(const std::string& yaml, std::vector<std::string> extra = {}) {
    auto wf = home_.write("wf/wf.yml", yaml);
    extra.insert(extra.begin(), wf.string());
    extra.insert(extra.begin(), "run");
    return home_.lockstep(extra);
  }
  // A git repository: commit "one" tagged v1, then commit "two" on main.
  std::filesystem::path make_repo() {
    auto repo = home_.root() / "src";
    std::filesystem::create_directories(repo);
    auto git = [&](std::vector<std::string> args) {
      args.insert(args.begin(), {"/usr/bin/git", "-C", repo.string()});
      auto r =
          run_process(args, {"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@e", "GIT_COMMITTER_NAME=t",
                             "GIT_COMMITTER_EMAIL=t@e", "GIT_AUTHOR_DATE=2020-01-01T00:00:00Z",
                             "GIT_COMMITTER_DATE=2020-01-01T00:00:00Z"});
      EXPECT_EQ(r.exit_code, 0) << r.err;
      return r.out;
    };
    git({"init", "-q", "-b", "main"});
    std::ofstream(repo / "hello.txt") << "version one\n";
    git({"add", "hello.txt"});
    git({"commit", "-q", "-m", "one"});
    git({"tag", "v1"});
    std::ofstream(repo / "hello.txt") << "version two\n";
    git({"commit", "-q", "-am", "two"});
    return repo;
  }
  LockstepHome home_;
};

TEST_F(ActionsTest, CheckoutBranchAndTagFromLocalRepositoryThroughTheMirror) {
  auto repo = make_repo();
  std::string yaml = R"(on: push
jobs:
  c:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - uses: actions/checkout@v4
        with:
          repository: )" +
                     repo.string() + R"(
          ref: main
      - uses: actions/checkout@v4
        with:
          repository: )" +
                     repo.string() + R"(
          ref: v1
          path: old
      - run: |
          echo main: $(cat hello.txt)
          echo tag: $(cat old/hello.txt)
)";
  auto r = run(yaml);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "[c] main: version two")) << r.out;
  EXPECT_TRUE(has(r.out, "[c] tag: version one")) << r.out;
  // A second run finds the mirror current.
  r = run(yaml);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "(mirror current)")) << r.out;
}

// Two runs that built different source never share an environment hash: a
// checkout of another repository is resolved before the job's hash, and
// `diff` names the commit that moved.
TEST_F(ActionsTest, ACheckoutThatMovedChangesTheJobHashAndDiffNamesIt) {
  auto repo = make_repo();
  std::string yaml = R"(on: push
jobs:
  c:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - uses: actions/checkout@v4
        with:
          repository: )" +
                     repo.string() + R"(
      - run: cat hello.txt
)";
  auto r = run(yaml);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "[c] version two")) << r.out;
  std::string first = home_.run_ids().back();
  // The repository moves on.
  std::ofstream(repo / "hello.txt") << "version three\n";
  auto git = run_process({"/usr/bin/git", "-C", repo.string(), "-c", "user.name=t", "-c",
                          "user.email=t@e", "commit", "-qam", "three"});
  ASSERT_EQ(git.exit_code, 0) << git.err;
  r = run(yaml);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "[c] version three")) << r.out;
  std::string second = home_.run_ids().back();
  auto load = [&](const std::string& id) {
    return Json::parse(*read_file(home_.home() / "runs" / id / "record.json"));
  };
  Json a = load(first), b = load(second);
  EXPECT_NE(a["jobs"][0]["env_hash"], b["jobs"][0]["env_hash"]);
  std::string key = repo.string() + "@HEAD";
  EXPECT_NE(a["jobs"][0]["env_doc"]["checkouts"][key], b["jobs"][0]["env_doc"]["checkouts"][key]);
  auto diff = home_.lockstep({"diff", first, second});
  EXPECT_TRUE(has(diff.out, "checkouts[\"" + key + "\"]")) << diff.out << diff.err;
  EXPECT_FALSE(has(diff.out, "no differences")) << diff.out;
}

TEST_F(ActionsTest, UnknownRefIsAOneLineErrorNamingIt) {
  auto repo = make_repo();
  auto r = run(R"(on: push
jobs:
  c:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - uses: actions/checkout@v4
        with:
          repository: )" +
               repo.string() + R"(
          ref: v9
)");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(has(r.err, "unknown ref 'v9'")) << r.err;
}

TEST_F(ActionsTest, WorkflowRepositoryAtHeadWithDirtyPatchAndRepoRef) {
  auto repo = make_repo();
  std::filesystem::create_directories(repo / ".github/workflows");
  std::ofstream(repo / ".github/workflows/ci.yml") << R"(on: push
jobs:
  t:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - uses: actions/checkout@v4
      - run: echo sha=${{ github.sha }} file=$(cat hello.txt)
)";
  auto head = run_process({"/usr/bin/git", "-C", repo.string(), "rev-parse", "v1"}).out;
  head.pop_back();
  std::ofstream(repo / "hello.txt") << "uncommitted\n";
  auto wf = (repo / ".github/workflows/ci.yml").string();
  // The workflow file itself is untracked: the tree is dirty either way.
  auto r = home_.lockstep({"run", wf});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "file=version two")) << r.out;
  EXPECT_TRUE(has(r.err, "has uncommitted changes")) << r.err;
  r = home_.lockstep({"run", wf, "--dirty"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "file=uncommitted")) << r.out;
  r = home_.lockstep({"run", wf, "--repo", repo.string(), "--ref", "v1"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "sha=" + head + " file=version one")) << r.out;
}

TEST_F(ActionsTest, DependencyCacheMissesSavesThenHitsAndMatchesRestoreKeys) {
  auto yaml = [](const std::string& key) {
    return R"(on: push
jobs:
  c:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - id: cache
        uses: actions/cache@v4
        with:
          key: )" +
           key + R"(
          restore-keys: |
            deps-
          path: |
            deps
            ~/.tool
      - run: |
          echo "hit=${{ steps.cache.outputs.cache-hit }} matched=${{ steps.cache.outputs.cache-matched-key }}"
          echo restored: $(cat deps/lib.txt 2>/dev/null || echo none) $(cat ~/.tool/conf 2>/dev/null || echo none)
          mkdir -p deps ~/.tool
          echo "built for )" +
           key + R"(" > deps/lib.txt
          echo "tool conf" > ~/.tool/conf
)";
  };
  auto r = run(yaml("deps-v1"));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "hit=false matched=")) << r.out;
  EXPECT_TRUE(has(r.out, "restored: none none")) << r.out;
  EXPECT_TRUE(has(r.out, "saved cache 'deps-v1'")) << r.out;

  r = run(yaml("deps-v1"));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "hit=true matched=deps-v1")) << r.out;
  EXPECT_TRUE(has(r.out, "restored: built for deps-v1 tool conf")) << r.out;
  EXPECT_FALSE(has(r.out, "saved cache")) << r.out;

  // A new key misses exactly but matches the restore-key prefix.
  r = run(yaml("deps-v2"));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "hit=false matched=deps-v1")) << r.out;
  EXPECT_TRUE(has(r.out, "restored: built for deps-v1")) << r.out;
  EXPECT_TRUE(has(r.out, "saved cache 'deps-v2'")) << r.out;

  // Both entries are in the store; gc evicts them, and the next run misses.
  r = home_.lockstep({"cache", "du"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "deps         2")) << r.out;
  r = home_.lockstep({"cache", "gc", "--max-deps-size", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "evicted dependency cache deps-v1")) << r.out;
  EXPECT_TRUE(has(r.out, "evicted dependency cache deps-v2")) << r.out;
  r = run(yaml("deps-v1"));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "hit=false matched=\n") || has(r.out, "hit=false matched=\r")) << r.out;
}

// A pull request's job restores the repository's caches but saves into a
// scope of its own: what it saved (a fork's code may have made it) never
// reaches a push's job, while the same pull request finds it again.
TEST_F(ActionsTest, APullRequestsCacheNeverReachesTheRepositorysOtherRuns) {
  auto yaml = [](const std::string& key) {
    return R"(on: [push, pull_request]
jobs:
  c:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - id: cache
        uses: actions/cache@v4
        with:
          key: )" +
           key + R"(
          restore-keys: deps-
          path: deps
      - run: |
          echo "hit=${{ steps.cache.outputs.cache-hit }} matched=${{ steps.cache.outputs.cache-matched-key }}"
          mkdir -p deps && echo "made by ${{ github.event_name }}" > deps/lib.txt
)";
  };
  auto event = home_.write("pr.json", R"({"number": 7, "pull_request": {"number": 7,
      "head": {"ref": "topic"}, "base": {"ref": "main"}}})");
  const std::vector<std::string> as_pr = {"--event", "pull_request", "--event-file",
                                          event.string()};
  auto r = run(yaml("deps-v1"));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "saved cache 'deps-v1'")) << r.out;
  r = run(yaml("deps-v1"), as_pr);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "hit=true matched=deps-v1")) << r.out;
  r = run(yaml("deps-pr"), as_pr);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "hit=false matched=deps-v1")) << r.out;
  EXPECT_TRUE(has(r.out, "saved cache 'deps-pr'")) << r.out;
  // A push does not see it.
  r = run(yaml("deps-pr"));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "hit=false matched=deps-v1")) << r.out;
  EXPECT_TRUE(has(r.out, "saved cache 'deps-pr'")) << r.out;  // the repository's own now
  // The pull request finds its own first.
  r = run(yaml("deps-pr"), as_pr);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "hit=true matched=deps-pr")) << r.out;
  EXPECT_TRUE(has(r.out, "restored cache 'deps-pr'")) << r.out;
}

// With a lockstep server's shared cache (an agent's job) that cannot be
// reached, actions/cache warns and uses this host's cache, as GitHub's
// cache action treats a failing cache service; a cache server file that is
// not one is a one-line error before anything runs.
TEST_F(ActionsTest, AnUnreachableCacheServerIsAWarningAndThisHostsCacheServes) {
  // A port nothing listens on: bound here, never listening, so a connection
  // is refused at once.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  const std::string url = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  auto file =
      home_.write("cache-server.json",
                  Json{{"url", url}, {"token", "t0ken"}, {"job", 4}, {"attempt", 1}}.dump());
  const std::string yaml = R"(on: push
jobs:
  c:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - id: cache
        uses: actions/cache@v4
        with:
          key: deps-v1
          path: deps
      - run: |
          echo "hit=${{ steps.cache.outputs.cache-hit }}"
          mkdir -p deps && echo made > deps/lib.txt
)";
  auto r = run(yaml, {"--cache-server", file.string()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "warning: the shared cache could not be asked (lockstep server " + url))
      << r.out;
  EXPECT_TRUE(has(r.out, "hit=false")) << r.out;
  EXPECT_TRUE(
      has(r.out, "warning: cache 'deps-v1' was saved on this host only: lockstep server " + url))
      << r.out;
  r = run(yaml, {"--cache-server", file.string()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "hit=true")) << r.out;
  EXPECT_TRUE(has(r.out, "restored cache 'deps-v1'")) << r.out;
  ::close(fd);

  for (const auto& [text, why] : std::vector<std::pair<std::string, std::string>>{
           {"{", "--cache-server " + (home_.root() / "bad.json").string()},
           {R"({"url": "ftp://x", "token": "t", "job": 1, "attempt": 1})",
            "'url' must be an http:// or https:// URL"},
           {R"({"url": "http://x", "token": "t", "job": 0, "attempt": 1})",
            "'job' and 'attempt' must be positive numbers"}}) {
    auto bad = home_.write("bad.json", text);
    r = run(yaml, {"--cache-server", bad.string()});
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    EXPECT_TRUE(has(r.err, why)) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

TEST_F(ActionsTest, CachePathOutsideWorkspaceAndHomeIsAnError) {
  auto r = run(R"(on: push
jobs:
  c:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - uses: actions/cache@v4
        with:
          key: k
          path: /etc
)");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(has(r.err, "outside the workspace and home")) << r.err;
}

TEST_F(ActionsTest, ArtifactHandedToADependentJobByteForByte) {
  auto r = run(R"(on: push
jobs:
  build:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - run: |
          mkdir -p dist
          head -c 100000 /dev/urandom > dist/blob.bin
          echo hello > dist/readme.txt
          sha256sum dist/blob.bin | cut -d' ' -f1 > dist/blob.sha
      - uses: actions/upload-artifact@v4
        with:
          name: dist
          path: dist/
  use:
    needs: build
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - uses: actions/download-artifact@v4
        with:
          name: dist
          path: got
      - run: |
          echo readme: $(cat got/readme.txt)
          a=$(sha256sum got/blob.bin | cut -d' ' -f1); b=$(cat got/blob.sha)
          test "$a" = "$b" && echo "blob identical"
)");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "[use] readme: hello")) << r.out;
  EXPECT_TRUE(has(r.out, "[use] blob identical")) << r.out;
  EXPECT_TRUE(has(r.out, "uploaded artifact 'dist': 3 files, sha256:")) << r.out;
}

TEST_F(ActionsTest, ArtifactNameClashAndMissingArtifactAreErrors) {
  auto r = run(R"(on: push
jobs:
  m:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    strategy:
      max-parallel: 1
      fail-fast: false
      matrix:
        n: [1, 2]
    steps:
      - run: echo ${{ matrix.n }} > out.txt
      - uses: actions/upload-artifact@v4
        with:
          name: same
          path: out.txt
  get:
    needs: m
    if: always()
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - uses: actions/download-artifact@v4
        with:
          name: nothing-here
)");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(has(r.err, "artifact 'same' was already uploaded by job 'm (1)'")) << r.err;
  EXPECT_TRUE(has(r.err, "artifact 'nothing-here' not found in run")) << r.err;
}

class ServicesTest : public ActionsTest {
 protected:
  // An image whose command serves /www over HTTP on port 8080.
  // The served directory's name is unique to this test process, so that its
  // httpd can be told apart from those of tests running in parallel.
  std::string www() const { return "/www-" + std::to_string(::getpid()); }
  void make_web_image(const std::string& tag, const std::string& healthcheck_json) {
    auto rootfs = home_.root() / "busybox-rootfs";
    std::filesystem::create_directories(rootfs / www().substr(1));
    std::ofstream(rootfs / www().substr(1) / "index.html") << "served by the service\n";
    auto layout = home_.root() / ("layout-" + std::to_string(counter_++));
    std::vector<std::string> args = {
        "/usr/bin/python3",
        std::string(LOCKSTEP_SOURCE_DIR) + "/tests/support/make_oci_image.py",
        rootfs.string(),
        layout.string(),
        "--cmd",
        R"(["httpd", "-f", "-p", "8080", "-h", ")" + www() + "\"]"};
    if (!healthcheck_json.empty()) {
      args.push_back("--healthcheck");
      args.push_back(healthcheck_json);
    }
    auto m = run_process(args);
    ASSERT_EQ(m.exit_code, 0) << m.err;
    auto r = home_.lockstep({"image", "import", layout.string(), "--tag", tag});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  int counter_ = 0;
};

TEST_F(ServicesTest, ServiceIsHealthyAndReachableByLocalhostAndName) {
  make_web_image("localhost/web:test", "");
  auto r = run(R"(on: push
jobs:
  c:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    services:
      web:
        image: localhost/web:test
        options: --health-cmd "wget -q -O /dev/null http://127.0.0.1:8080/" --health-interval 200ms --health-retries 20
    steps:
      - run: |
          echo localhost: $(wget -q -O - http://localhost:8080/)
          echo by name: $(wget -q -O - http://web:8080/)
)");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "localhost: served by the service")) << r.out;
  EXPECT_TRUE(has(r.out, "by name: served by the service")) << r.out;
  // Nothing of the service is left running.
  auto ps = run_process(
      {"/bin/sh", "-c", "ps -eo args | grep -c '^httpd -f -p 8080 -h " + www() + "$' || true"});
  EXPECT_EQ(ps.out, "0\n");
}

TEST_F(ServicesTest, UnhealthyServiceFailsTheJobWithItsHealthOutput) {
  make_web_image(
      "localhost/web:sick",
      R"({"Test": ["CMD-SHELL", "echo still warming up; exit 1"], "Interval": 100000000, "Retries": 3})");
  auto r = run(R"(on: push
jobs:
  c:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    services:
      web:
        image: localhost/web:sick
    steps:
      - run: echo "must not run"
)");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(has(r.err, "service 'web' did not become healthy after 3 checks")) << r.err;
  EXPECT_TRUE(has(r.err, "still warming up")) << r.err;
  EXPECT_FALSE(has(r.out, "] must not run"));
}

// --userns: root inside every container is host uid 100000. The job checks
// out, writes its workspace, reaches its service, uploads an artifact; the
// mapping is part of the environment hash.
TEST_F(ServicesTest, UserNamespacedJobsCheckOutBuildUploadAndReachTheirService) {
  make_web_image("localhost/web:test", "");
  auto repo = make_repo();
  std::string yaml = R"(on: push
jobs:
  c:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    services:
      web:
        image: localhost/web:test
        options: --health-cmd "wget -q -O /dev/null http://127.0.0.1:8080/" --health-interval 200ms --health-retries 20
    steps:
      - uses: actions/checkout@v4
        with:
          repository: )" +
                     repo.string() +
                     R"(
          ref: v1
      - run: |
          echo uid $(id -u) map $(tr -s ' ' < /proc/self/uid_map)
          echo checked out: $(cat hello.txt)
          echo built > out.txt && echo home > $HOME/h.txt && echo wrote
          echo service: $(wget -q -O - http://web:8080/)
      - uses: actions/upload-artifact@v4
        with:
          name: out
          path: out.txt
      - run: echo again >> out.txt && cat out.txt
)";
  auto r = run(yaml, {"--userns"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "[c] uid 0 map 0 100000 65536")) << r.out;
  EXPECT_TRUE(has(r.out, "[c] checked out: version one")) << r.out;
  EXPECT_TRUE(has(r.out, "[c] wrote")) << r.out;
  EXPECT_TRUE(has(r.out, "[c] service: served by the service")) << r.out;
  EXPECT_TRUE(has(r.out, "[c] again")) << r.out;

  std::filesystem::path record = home_.latest_record();
  auto text = read_file(record);
  ASSERT_TRUE(text);
  auto rec = Json::parse(*text);
  const auto& job = rec["jobs"][0];
  EXPECT_EQ(job["env_doc"]["container"]["user_namespace"], "0:100000:65536");
  EXPECT_EQ(rec["options"]["userns"], true);
  ASSERT_EQ(job["artifacts"].size(), 1u);
  // A replay restores --userns from the record: the hashes match.
  auto replay = home_.lockstep({"replay", record.string()});
  EXPECT_EQ(replay.exit_code, 0) << replay.out << replay.err;

  // The same job without --userns: the host's ids, and no such field.
  auto plain = run(yaml);
  ASSERT_EQ(plain.exit_code, 0) << plain.out << plain.err;
  EXPECT_TRUE(has(plain.out, "[c] uid 0 map 0 0 4294967295")) << plain.out;
  rec = Json::parse(*read_file(home_.latest_record()));
  EXPECT_FALSE(rec["jobs"][0]["env_doc"]["container"].contains("user_namespace"));
}

TEST_F(ActionsTest, ProjectConfigCanTurnOnUserNamespaces) {
  home_.write("wf/.lockstep.yml", "userns: true\n");
  auto r = run(R"(on: push
jobs:
  c:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - run: echo map $(tr -s ' ' < /proc/self/uid_map) && echo ok > written.txt && cat written.txt
)");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "[c] map 0 100000 65536")) << r.out;
  EXPECT_TRUE(has(r.out, "[c] ok")) << r.out;
}

}  // namespace
}  // namespace lockstep::testing
