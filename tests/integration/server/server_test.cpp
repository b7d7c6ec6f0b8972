// lockstep server and agents on a real PostgreSQL: a signed push runs every
// matrix cell on the agents, jobs are never run twice at once, a dead
// agent's job is re-queued after its lease, and bad input is refused.
#include <fcntl.h>
#include <signal.h>

#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>

#include "common/digest.hpp"
#include "registry-mirror/client.hpp"
#include "registry-mirror/http.hpp"
#include "registry-mirror/reference.hpp"
#include "server/pg.hpp"
#include "tests/integration/registry/local_registry.hpp"
#include "tests/integration/registry/test_image.hpp"
#include "tests/integration/server/server_fixture.hpp"
#include "tests/support/lockstep_process.hpp"

namespace lockstep::testing {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

const char* kMatrixWorkflow = R"(name: ci
on:
  push:
    branches: [main]
jobs:
  build:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        os: [linux, bsd]
        cc: [gcc, clang, tcc]
    steps:
      - run: |
          echo hello from a build
          sleep 0.3
  after:
    needs: build
    runs-on: ubuntu-latest
    steps:
      - run: echo all built
)";

// The events of each job, by attempt.
std::map<int64_t, std::map<int, std::vector<TraceEvent>>> by_job(
    const std::vector<TraceEvent>& events) {
  std::map<int64_t, std::map<int, std::vector<TraceEvent>>> out;
  for (const auto& e : events) out[e.job][e.attempt].push_back(e);
  return out;
}

// No two attempts of one job were ever alive at the same time: every event
// of an attempt comes before the start of the next one.
void expect_no_overlap(const std::vector<TraceEvent>& events) {
  for (const auto& [job, attempts] : by_job(events)) {
    int64_t last_end = 0;
    for (const auto& [attempt, evs] : attempts) {
      int64_t first = evs.front().ns, last = evs.front().ns;
      for (const auto& e : evs) {
        first = std::min(first, e.ns);
        last = std::max(last, e.ns);
      }
      EXPECT_GT(first, last_end) << "attempt " << attempt << " of job " << job
                                 << " started while an earlier attempt was alive";
      last_end = last;
    }
  }
}

// The busybox test rootfs (scripts/busybox-rootfs.sh; import_busybox makes
// it) as a one-layer registry image, with `extra` entries added.
registry::testing::TestImage busybox_image(
    const fs::path& rootfs, const std::vector<registry::testing::TarEntry>& extra = {}) {
  std::vector<registry::testing::TarEntry> entries;
  for (auto it = fs::recursive_directory_iterator(rootfs); it != fs::recursive_directory_iterator();
       ++it) {
    const std::string rel = it->path().lexically_relative(rootfs).string();
    if (it->is_symlink())
      entries.push_back(registry::testing::symlink(rel, fs::read_symlink(it->path()).string()));
    else if (it->is_directory())
      entries.push_back(registry::testing::dir(rel));
    else
      entries.push_back(registry::testing::file(
          rel, slurp(it->path()), static_cast<int>(fs::status(it->path()).permissions()) & 0777));
  }
  entries.insert(entries.end(), extra.begin(), extra.end());
  return registry::testing::make_image({entries}, registry::testing::Compression::kGzip);
}

// A docker-registry on loopback holding `image` (REGISTRY/<path>) as the
// busybox test image; move() points the tag at the same image with a file
// /retagged added.
struct MovingTag {
  std::optional<registry::testing::LocalRegistry> reg;
  std::optional<registry::RegistryClient> client;
  std::optional<registry::Reference> ref;
  registry::testing::TestImage first, moved;
  std::string image;

  // Starts it; an error says what failed.
  std::string start(const fs::path& rootfs, const std::string& path) {
    auto r = registry::testing::LocalRegistry::start();
    if (!r) return "start docker-registry: " + r.error().message();
    reg.emplace(std::move(*r));
    first = busybox_image(rootfs);
    moved = busybox_image(rootfs, {registry::testing::file("retagged", "moved\n")});
    auto c = registry::RegistryClient::create({});
    if (!c) return c.error().message();
    client.emplace(std::move(*c));
    image = reg->domain() + "/" + path;
    auto parsed = registry::Reference::parse(image);
    if (!parsed) return parsed.error().message();
    ref = *parsed;
    auto pushed = registry::testing::push_image(*client, *ref, first);
    return pushed ? "" : pushed.error().message();
  }
  std::string move() {
    auto pushed = registry::testing::push_image(*client, *ref, moved);
    return pushed ? "" : pushed.error().message();
  }
};

TEST_F(ServerFixture, SignedPushRunsEveryMatrixCellOnTheAgents) {
  std::string sha = commit({{".github/workflows/ci.yml", kMatrixWorkflow}});
  start_server();
  start_agent("a");
  start_agent("b");
  start_agent("c");
  auto r = push_hook("delivery-1", sha, secret_);
  ASSERT_EQ(r.status, 202) << r.body;

  ASSERT_TRUE(eventually([&] { return runs().size() == 1; }));
  int64_t run_id = runs()[0].value("id", int64_t{0});
  json run = finished_run(run_id);
  EXPECT_EQ(run["run"].value("status", ""), "success") << run.dump();
  EXPECT_EQ(run["run"].value("sha", ""), sha);
  ASSERT_EQ(run["jobs"].size(), 7u) << run.dump();  // 2 x 3 cells and the job after them
  std::set<std::string> names, agents;
  for (json job : run["jobs"]) {
    names.insert(job.value("name", ""));
    EXPECT_EQ(job.value("status", ""), "success") << job.dump();
    ASSERT_EQ(job["attempts"].size(), 1u) << job.dump();
    EXPECT_EQ(job["attempts"][0].value("state", ""), "success");
    agents.insert(job["attempts"][0].value("agent", ""));
  }
  EXPECT_EQ(names, (std::set<std::string>{"build (linux, gcc)", "build (linux, clang)",
                                          "build (linux, tcc)", "build (bsd, gcc)",
                                          "build (bsd, clang)", "build (bsd, tcc)", "after"}));
  for (const auto& a : agents) EXPECT_TRUE(a == "a" || a == "b" || a == "c") << a;

  // The job after the matrix started only once every cell had ended.
  auto events = trace();
  int64_t after_id = 0;
  for (json job : run["jobs"])
    if (job.value("key", "") == "after") after_id = job.value("id", int64_t{0});
  int64_t after_start = 0, builds_end = 0;
  for (const auto& e : events) {
    if (e.job == after_id && e.event == "start") after_start = e.ns;
    if (e.job != after_id && e.event == "end") builds_end = std::max(builds_end, e.ns);
  }
  EXPECT_GT(after_start, builds_end);
  // Each job started exactly once: no agent ran a job another one had.
  std::map<int64_t, int> starts;
  for (const auto& e : events)
    if (e.event == "start") ++starts[e.job];
  EXPECT_EQ(starts.size(), 7u);
  for (const auto& [job, n] : starts) EXPECT_EQ(n, 1) << "job " << job;

  // Logs through the API.
  int64_t first_job = run["jobs"][0].value("id", int64_t{0});
  auto log = get("/api/jobs/" + std::to_string(first_job) + "/log?attempt=1");
  EXPECT_EQ(log.status, 200);
  EXPECT_NE(log.body.find("hello from a build"), std::string::npos) << log.body;
  // The web UI is served by the server.
  auto ui = get("/");
  EXPECT_EQ(ui.status, 200);
  EXPECT_NE(ui.body.find("<html"), std::string::npos);
}

// The agent's default executor: each job is its matrix cell of `lockstep
// run` in a container, at the pushed commit; the secret it references reaches
// it and is masked before its log leaves the agent.
TEST_F(ServerFixture, AgentsRunJobsInContainersThroughLockstepRun) {
  if (!is_root()) GTEST_SKIP() << "needs root for containers";
  std::string sha = commit({{".github/workflows/ci.yml", R"yml(on: push
jobs:
  build:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    strategy:
      matrix:
        word: [alpha, beta]
    outputs:
      made: ${{ steps.make.outputs.made }}
    steps:
      - run: echo "cell ${{ matrix.word }} at $GITHUB_SHA"
      - run: echo "token ${{ secrets.TOKEN }}"
      - id: make
        run: echo "made=built-${{ matrix.word }}" >> "$GITHUB_OUTPUT"
      - run: mkdir -p out && echo "made by ${{ matrix.word }}" > out/file.txt
      - uses: actions/upload-artifact@v4
        with:
          name: dist-${{ matrix.word }}
          path: out/
  check:
    needs: build
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - run: test -n "$(cat /etc/hostname)"
      - uses: actions/download-artifact@v4
        with:
          path: got
      - run: cat got/dist-alpha/file.txt got/dist-beta/file.txt
      - run: echo "got ${{ needs.build.result }} ${{ needs.build.outputs.made }} ${{ vars.STAGE }}"
)yml"}});
  {
    std::ofstream(root_ / "token-value") << "hunter2-secret\n";
    auto r = run_process({"/bin/sh", "-c",
                          std::string("exec ") + LOCKSTEP_BINARY +
                              " server secret set o/r TOKEN --db \"$0\" < \"$1\"",
                          db_url_, (root_ / "token-value").string()},
                         {"LOCKSTEP_HOME=" + (root_ / "server-home").string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = run_process(
        {LOCKSTEP_BINARY, "server", "var", "set", "o/r", "STAGE", "staging", "--db", db_url_},
        {"LOCKSTEP_HOME=" + (root_ / "server-home").string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  import_busybox("a");
  import_busybox("b");
  start_server();
  // The agents share the key their secrets are hashed under (so that a
  // job replays on any host given it).
  const std::string shared_key = "0123456789abcdef0123456789abcdef";
  ::setenv("LOCKSTEP_SECRET_HASH_KEY", shared_key.c_str(), 1);
  start_agent("a", 1, "lockstep");
  start_agent("b", 1, "lockstep");
  ::unsetenv("LOCKSTEP_SECRET_HASH_KEY");
  ASSERT_EQ(push_hook("delivery-1", sha, secret_).status, 202);
  ASSERT_TRUE(eventually([&] { return runs().size() == 1; }));
  json run = finished_run(runs()[0].value("id", int64_t{0}));
  EXPECT_EQ(run["run"].value("status", ""), "success") << run.dump();
  ASSERT_EQ(run["jobs"].size(), 3u) << run.dump();
  for (json job : run["jobs"]) {
    EXPECT_EQ(job.value("status", ""), "success") << job.dump();
    json attempt = job["attempts"][0];
    // The environment hash and the replay command come from the agent's run record.
    EXPECT_EQ(attempt.value("env_hash", "").rfind("sha256:", 0), 0u) << attempt.dump();
    EXPECT_EQ(attempt.value("env_hash", ""), attempt["record"]["job"].value("env_hash", "-"));
    std::string run_id = attempt["record"].value("run_id", "");
    EXPECT_FALSE(run_id.empty());
    EXPECT_EQ(attempt["record"].value("replay", ""),
              "lockstep replay " + run_id + " --job " +
                  (job.value("key", "") == "build" ? "'" + job.value("name", "") + "'"
                                                   : job.value("name", "")));
    if (job.value("key", "") != "build") {
      // The jobs it needs ran on other agents (or earlier): their results
      // and outputs came from the server, and they did not run again here.
      auto log = get("/api/jobs/" + std::to_string(job.value("id", int64_t{0})) + "/log?attempt=1");
      EXPECT_TRUE(log.body.find("got success built-alpha staging") != std::string::npos ||
                  log.body.find("got success built-beta staging") != std::string::npos)
          << log.body;
      EXPECT_EQ(log.body.find("cell alpha"), std::string::npos) << log.body;
      // The artifacts of both cells, from whichever agent made them.
      EXPECT_NE(log.body.find("made by alpha"), std::string::npos) << log.body;
      EXPECT_NE(log.body.find("made by beta"), std::string::npos) << log.body;
      EXPECT_EQ(log.body.find("cell beta"), std::string::npos) << log.body;
      EXPECT_EQ(attempt["record"]["job"]["name"], "check");
      continue;
    }
    // The job replays on its agent's host from that command (given the secret).
    std::string replay = attempt["record"].value("replay", "");
    auto rr =
        run_process({"/bin/sh", "-c",
                     std::string(LOCKSTEP_BINARY) + replay.substr(std::string("lockstep").size()) +
                         " --secret TOKEN=hunter2-secret"},
                    {"LOCKSTEP_HOME=" + (root_ / ("agent-" + attempt.value("agent", ""))).string(),
                     "LOCKSTEP_SECRET_HASH_KEY=" + shared_key});
    EXPECT_EQ(rr.exit_code, 0) << replay << ": " << rr.err << rr.out;
    std::string word = job["matrix"].value("word", "");
    auto log = get("/api/jobs/" + std::to_string(job.value("id", int64_t{0})) + "/log?attempt=1");
    EXPECT_NE(log.body.find("cell " + word + " at " + sha), std::string::npos) << log.body;
    EXPECT_NE(log.body.find("token ***"), std::string::npos) << log.body;
    EXPECT_EQ(log.body.find("hunter2-secret"), std::string::npos) << log.body;
  }

  // The CLI reads the server: runs, a run's jobs, a job's log, a record
  // replayed on another host (a state dir of its own) and two cells diffed.
  const std::string url = "http://127.0.0.1:" + std::to_string(port_);
  const std::vector<std::string> cli_env = {"LOCKSTEP_HOME=" + (root_ / "agent-cli").string()};
  import_busybox("cli");
  auto cli = [&](std::vector<std::string> args) {
    args.insert(args.begin(), LOCKSTEP_BINARY);
    return run_process(args, cli_env);
  };
  auto ls = cli({"runs", "ls", "--server", url});
  EXPECT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_NE(ls.out.find(sha.substr(0, 12)), std::string::npos) << ls.out;
  std::string run_id = std::to_string(runs()[0].value("id", int64_t{0}));
  auto show = cli({"runs", "show", "--server", url, run_id});
  EXPECT_EQ(show.exit_code, 0) << show.err;
  std::vector<int64_t> build_jobs;
  for (json job : run["jobs"])
    if (job.value("key", "") == "build") build_jobs.push_back(job.value("id", int64_t{0}));
  ASSERT_EQ(build_jobs.size(), 2u);
  const std::string first = std::to_string(build_jobs[0]);
  EXPECT_NE(show.out.find("replay: lockstep replay --server " + url + " " + first),
            std::string::npos)
      << show.out;
  auto logs = cli({"logs", "--server", url, first + ":1"});
  EXPECT_EQ(logs.exit_code, 0) << logs.err;
  EXPECT_NE(logs.out.find("token ***"), std::string::npos) << logs.out;
  // Its secrets were hashed under the agents' shared key: elsewhere only
  // with the same key.
  auto foreign = cli({"replay", "--server", url, first, "--secret", "TOKEN=hunter2-secret"});
  EXPECT_EQ(foreign.exit_code, 2) << foreign.err << foreign.out;
  EXPECT_NE(foreign.err.find("LOCKSTEP_SECRET_HASH_KEY"), std::string::npos) << foreign.err;
  auto replay = run_process(
      {LOCKSTEP_BINARY, "replay", "--server", url, first, "--secret", "TOKEN=hunter2-secret"},
      {cli_env[0], "LOCKSTEP_SECRET_HASH_KEY=" + shared_key});
  EXPECT_EQ(replay.exit_code, 0) << replay.err << replay.out;
  auto diff = cli({"diff", "--server", url, first, std::to_string(build_jobs[1])});
  EXPECT_EQ(diff.exit_code, 1) << diff.err << diff.out;  // the matrix cells differ
  EXPECT_NE(diff.out.find("beta"), std::string::npos) << diff.out;
  auto same = cli({"diff", "--server", url, first, first + ":1"});
  EXPECT_EQ(same.exit_code, 0) << same.err << same.out;
  // Bad input: one line each.
  auto missing = cli({"logs", "--server", url, "999999"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("404"), std::string::npos) << missing.err;
  auto bad = cli({"runs", "ls", "--server", "ftp://x"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_EQ(std::count(bad.err.begin(), bad.err.end(), '\n'), 1) << bad.err;

  // Each agent kept one egress network (bridge and table) across its jobs
  // (one slot: one at a time) and removes it when it stops.
  auto kept_by = [](pid_t agent) {
    struct stat st {};
    if (::stat("/proc/self/ns/net", &st) != 0) return -1;
    int n = 0;
    std::error_code ec;
    fs::path dir = fs::path("/run/lockstep/net") / ("ns-" + std::to_string(st.st_ino));
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      if (e.path().extension() != ".json" || e.path().filename() == "forwarding.json") continue;
      std::ifstream in(e.path());
      json j = json::parse(in, nullptr, false);
      if (j.is_object() && j.value("keeper_pid", 0) == agent) ++n;
    }
    return n;
  };
  const pid_t a = agents_["a"].pid, b = agents_["b"].pid;
  EXPECT_LE(kept_by(a), 1);
  EXPECT_LE(kept_by(b), 1);
  EXPECT_GE(kept_by(a) + kept_by(b), 1);
  stop_child(agents_["a"]);
  stop_child(agents_["b"]);
  EXPECT_EQ(kept_by(a), 0);
  EXPECT_EQ(kept_by(b), 0);
}

// With no --db the server makes and runs a PostgreSQL of its own under its
// state dir (initdb, pg_ctl; as root, as the postgres user): an admin verb
// and the server share it, what they wrote survives a restart, and stopping
// the server stops the database (no postgres process is left).
TEST_F(ServerFixture, WithoutDbTheServerRunsAPrivatePostgresUnderItsStateDir) {
  const fs::path home = root_ / "solo-home";
  const std::vector<std::string> env = {"LOCKSTEP_HOME=" + home.string()};
  auto add = run_process(
      {LOCKSTEP_BINARY, "server", "repo", "add", "o/solo", "--forge", "github", "--clone-url",
       (root_ / "repo.git").string(), "--webhook-secret-file", (root_ / "secret").string()},
      env);
  ASSERT_EQ(add.exit_code, 0) << add.err;
  const fs::path cluster = home / "server" / "pg";
  EXPECT_TRUE(fs::exists(cluster / "PG_VERSION")) << "no cluster under " << cluster;
  // The admin verb stopped the database it started.
  EXPECT_FALSE(fs::exists(cluster / "postmaster.pid"));
  for (int round = 0; round < 2; ++round) {
    start_server_without_db(home);
    auto repos = get("/api/repos");
    EXPECT_NE(repos.body.find("o/solo"), std::string::npos) << round << ": " << repos.body;
    EXPECT_TRUE(fs::exists(cluster / "postmaster.pid"));
    stop_child(server_);
    EXPECT_FALSE(fs::exists(cluster / "postmaster.pid")) << "round " << round;
    auto left = run_process({"/usr/bin/pgrep", "-f", cluster.string()});
    EXPECT_EQ(left.out, "") << "a postgres process outlived the server";
  }
}

// Artifacts expire when their own retention ends (upload-artifact's
// retention-days) or past the server's maximum age; an expired one's files
// go unless an artifact still live names the same bytes.
TEST_F(ServerFixture, ExpiredArtifactsLoseTheirFilesButSharedOnesStay) {
  if (!is_root()) GTEST_SKIP() << "needs root for containers";
  std::string sha = commit({{".github/workflows/ci.yml", R"yml(on: push
jobs:
  up:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - run: mkdir -p k s && echo shared > k/shared.txt && cp k/shared.txt s/ && echo keep-only > k/k.txt && echo short-only > s/s.txt
      - uses: actions/upload-artifact@v4
        with:
          name: keep
          path: k/
      - uses: actions/upload-artifact@v4
        with:
          name: short
          path: s/
          retention-days: 1
)yml"}});
  import_busybox("a");
  start_server();
  start_agent("a", 1, "lockstep");
  ASSERT_EQ(push_hook("delivery-1", sha, secret_).status, 202);
  ASSERT_TRUE(eventually([&] { return runs().size() == 1; }));
  json run = finished_run(runs()[0].value("id", int64_t{0}));
  ASSERT_EQ(run["run"].value("status", ""), "success") << run.dump();
  ASSERT_EQ(count("artifacts"), 2);
  auto db = server::pg::Conn::connect(db_url_);
  ASSERT_TRUE(db) << db.error().message();
  auto sql = [&](const std::string& q) {
    auto r = db->exec(q);
    EXPECT_TRUE(r) << q << ": " << (r ? "" : r.error().message());
  };
  // upload-artifact's retention-days: 1 is the short one's end.
  auto ends = db->exec(
      "SELECT name FROM artifacts WHERE expires_at BETWEEN now() + interval '23 hours' AND "
      "now() + interval '25 hours'");
  ASSERT_TRUE(ends);
  ASSERT_EQ(ends->size(), 1);
  EXPECT_EQ(ends->str(0, 0), "short");

  const fs::path blobs = root_ / "server-home" / "server" / "blobs";
  auto blob = [&](const std::string& text) { return blobs / sha256_of(text).hex(); };
  ASSERT_TRUE(fs::exists(blob("shared\n")));
  ASSERT_TRUE(fs::exists(blob("keep-only\n")));
  ASSERT_TRUE(fs::exists(blob("short-only\n")));
  // Files are older than the sweep's grace for uploads in flight.
  auto age = [&] {
    for (const auto& e : fs::directory_iterator(blobs)) {
      if (!e.is_regular_file()) continue;
      timespec old[2] = {{::time(nullptr) - 7200, 0}, {::time(nullptr) - 7200, 0}};
      ASSERT_EQ(::utimensat(AT_FDCWD, e.path().c_str(), old, 0), 0);
    }
  };
  auto sweep = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv = {LOCKSTEP_BINARY, "server", "artifacts",
                                     "sweep",         "--db",   db_url_};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return run_process(argv, {"LOCKSTEP_HOME=" + (root_ / "server-home").string()});
  };
  age();
  auto r = sweep({});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "expired 0 artifact(s); removed 0 file(s), 0 bytes\n");
  sql("UPDATE artifacts SET expires_at = now() - interval '1 minute' WHERE name = 'short'");
  r = sweep({});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "expired 1 artifact(s); removed 1 file(s), 11 bytes\n");
  EXPECT_FALSE(fs::exists(blob("short-only\n")));
  EXPECT_TRUE(fs::exists(blob("shared\n")));  // the live artifact names it too
  EXPECT_TRUE(fs::exists(blob("keep-only\n")));
  auto expired = db->exec("SELECT name FROM artifacts WHERE expired_at IS NOT NULL");
  ASSERT_TRUE(expired);
  ASSERT_EQ(expired->size(), 1);
  EXPECT_EQ(expired->str(0, 0), "short");

  // The server's maximum age: the other one, uploaded "three days ago".
  sql("UPDATE artifacts SET created_at = now() - interval '3 days' WHERE name = 'keep'");
  r = sweep({"--max-days", "7"});
  EXPECT_EQ(r.out, "expired 0 artifact(s); removed 0 file(s), 0 bytes\n");
  r = sweep({"--max-days", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "expired 1 artifact(s); removed 2 file(s), 17 bytes\n");
  EXPECT_FALSE(fs::exists(blob("shared\n")));
  EXPECT_FALSE(fs::exists(blob("keep-only\n")));
  EXPECT_EQ(count("artifacts"), 2);  // listed, as expired
  r = sweep({"--max-days", "0"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "lockstep: error: --max-days '0': expected a number from 1 to 36500\n");
}

// Dependency caches are shared by the agents through the server, in scopes
// the server picks from the job: a second agent with an empty state dir
// restores what the first saved; a pull request restores the repository's
// entries but saves into its own scope, which the repository's later push
// runs never see; the server's retention removes unused entries and their
// archives; a stale attempt is refused.
TEST_F(ServerFixture, CachesAreSharedBetweenAgentsInTheScopesTheServerPicks) {
  if (!is_root()) GTEST_SKIP() << "needs root for containers";
  std::string c1 = commit({{".github/workflows/ci.yml", R"yml(on: [push, pull_request]
jobs:
  deps:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - uses: actions/checkout@v4
      - uses: actions/cache@v4
        id: c
        with:
          path: dep
          key: deps-${{ hashFiles('lock.txt', 'feature.txt') }}
          restore-keys: deps-
      - run: echo "hit=${{ steps.c.outputs.cache-hit }} matched=${{ steps.c.outputs.cache-matched-key }}."
      - run: cat dep/made.txt || echo "no dep"
      - run: mkdir -p dep && echo "made at $GITHUB_SHA by ${{ github.event_name }}" > dep/made.txt
)yml"},
                           {"lock.txt", "v1\n"}});
  import_busybox("a");
  import_busybox("b");
  start_server();
  auto log_of = [&](const json& run) {
    return get("/api/jobs/" + std::to_string(run["jobs"][0].value("id", int64_t{0})) +
               "/log?attempt=1")
        .body;
  };
  auto run_of = [&](size_t n) {
    EXPECT_TRUE(eventually([&] { return runs().size() == n; }));
    json run = finished_run(runs()[0].value("id", int64_t{0}));
    EXPECT_EQ(run["run"].value("status", ""), "success") << run.dump() << log_of(run);
    return run;
  };
  auto db = server::pg::Conn::connect(db_url_);
  ASSERT_TRUE(db) << db.error().message();
  auto key_in = [&](const std::string& scope) {
    auto r =
        db->exec("SELECT key FROM caches WHERE scope = $1 ORDER BY id", {server::pg::p(scope)});
    std::vector<std::string> keys;
    for (int i = 0; r && i < r->size(); ++i) keys.push_back(r->str(i, 0));
    return keys;
  };

  // The first run, on agent a: nothing to restore; it saves.
  start_agent("a", 1, "lockstep");
  ASSERT_EQ(push_hook("delivery-1", c1, secret_).status, 202);
  std::string log = log_of(run_of(1));
  EXPECT_NE(log.find("hit=false matched=."), std::string::npos) << log;
  EXPECT_NE(log.find("no dep"), std::string::npos) << log;
  const auto saved = key_in("repo o/r");
  ASSERT_EQ(saved.size(), 1u);
  const std::string k1 = saved[0];
  EXPECT_EQ(k1.rfind("deps-", 0), 0u) << k1;
  EXPECT_NE(log.find("saved cache '" + k1 + "' ("), std::string::npos) << log;
  EXPECT_NE(log.find(") to http://127.0.0.1:" + std::to_string(port_)), std::string::npos) << log;

  // Agent b has never run anything: it restores a's entry from the server.
  stop_child(agents_["a"]);
  start_agent("b", 1, "lockstep");
  std::string c2 = commit({{"README", "another commit\n"}});
  ASSERT_EQ(push_hook("delivery-2", c2, secret_).status, 202);
  log = log_of(run_of(2));
  EXPECT_NE(log.find("hit=true matched=" + k1 + "."), std::string::npos) << log;
  EXPECT_NE(log.find("made at " + c1 + " by push"), std::string::npos) << log;

  // A pull request: another key; the repository's entry by its restore key;
  // what it saves goes to its own scope.
  std::string head = push_pull_head("from feature\n", "refs/pull/9/head");
  ASSERT_EQ(pull_request_hook("pr-9", 9, c2, head).status, 202);
  json pr_run = run_of(3);
  const std::string merge = pr_run["run"].value("sha", "");
  log = log_of(pr_run);
  EXPECT_NE(log.find("hit=false matched=" + k1 + "."), std::string::npos) << log;
  EXPECT_NE(log.find("made at " + c1 + " by push"), std::string::npos) << log;
  const auto pr_keys = key_in("repo o/r refs/pull/9/merge");
  ASSERT_EQ(pr_keys.size(), 1u);
  const std::string k2 = pr_keys[0];
  EXPECT_NE(k2, k1);

  // main gets the same files: its key is the pull request's, whose entry it
  // must not see; it restores its own by the restore key.
  std::string c3 = commit({{"feature.txt", "from feature\n"}});
  ASSERT_EQ(push_hook("delivery-3", c3, secret_).status, 202);
  log = log_of(run_of(4));
  EXPECT_NE(log.find("hit=false matched=" + k1 + "."), std::string::npos) << log;
  EXPECT_NE(log.find("made at " + c1 + " by push"), std::string::npos) << log;
  EXPECT_EQ(log.find("by pull_request"), std::string::npos) << log;
  EXPECT_EQ(key_in("repo o/r"), (std::vector<std::string>{k1, k2}));

  // A stale attempt may neither look up nor save.
  {
    registry::HttpRequest req;
    req.method = "POST";
    req.url = "http://127.0.0.1:" + std::to_string(port_) + "/api/agent/cache-lookup";
    req.headers = {"Authorization: Bearer " + agent_token("b")};
    const std::string stale = json{
        {"job", pr_run["jobs"][0].value("id", int64_t{0})},
        {"attempt", 1},
        {"key", k1},
        {"version", "v"}}.dump();
    req.body = stale;
    registry::HttpSession http;
    auto r = http.perform(req);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->status, 409) << r->body;
  }

  // Listed; then the pull request's entry, unused for eight days, goes with
  // its archive, and the repository's stay.
  auto admin = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {LOCKSTEP_BINARY, "server", "caches"});
    args.insert(args.end(), {"--db", db_url_});
    return run_process(args, {"LOCKSTEP_HOME=" + (root_ / "server-home").string()});
  };
  auto ls = admin({"ls", "o/r"});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_NE(ls.out.find("repo o/r refs/pull/9/merge"), std::string::npos) << ls.out;
  EXPECT_EQ(std::count(ls.out.begin(), ls.out.end(), '\n'), 4) << ls.out;  // header + 3
  auto digests = db->exec("SELECT scope, digest, size FROM caches ORDER BY id");
  ASSERT_TRUE(digests);
  ASSERT_EQ(digests->size(), 3);
  const fs::path blobs = root_ / "server-home" / "server" / "blobs";
  auto blob = [&](int row) { return blobs / digests->str(row, 1).substr(7); };
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(fs::exists(blob(i))) << blob(i);
  for (const auto& e : fs::directory_iterator(blobs)) {
    if (!e.is_regular_file()) continue;
    timespec old[2] = {{::time(nullptr) - 7200, 0}, {::time(nullptr) - 7200, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, e.path().c_str(), old, 0), 0);
  }
  ASSERT_TRUE(db->exec(
      "UPDATE caches SET last_used_at = now() - interval '8 days' WHERE scope LIKE '% refs/%'"));
  auto sweep = admin({"sweep"});
  ASSERT_EQ(sweep.exit_code, 0) << sweep.err;
  const std::string pr_size = std::to_string(digests->i64(1, 2));
  EXPECT_EQ(sweep.out, "removed 1 cache(s), " + pr_size + " bytes; removed 1 file(s), " + pr_size +
                           " bytes\n");
  EXPECT_TRUE(fs::exists(blob(0)));
  EXPECT_FALSE(fs::exists(blob(1)));
  EXPECT_TRUE(fs::exists(blob(2)));
  EXPECT_EQ(count("caches"), 2);
  // The size limit: the least recently used go first.
  ASSERT_TRUE(db->exec("UPDATE caches SET last_used_at = now() - interval '1 day' WHERE key = $1",
                       {server::pg::p(k1)}));
  sweep = admin({"sweep", "--max-size", std::to_string(digests->i64(2, 2))});
  ASSERT_EQ(sweep.exit_code, 0) << sweep.err;
  EXPECT_EQ(key_in("repo o/r"), (std::vector<std::string>{k2}));
  EXPECT_FALSE(fs::exists(blob(0)));
  EXPECT_TRUE(fs::exists(blob(2)));
  auto bad = admin({"sweep", "--max-size", "lots"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(bad.err, "lockstep: error: --max-size 'lots': expected a size such as 500M or 10G\n");
}

// An agent runs the job plan the server made (lockstep run --plan): the
// exact matrix cell, objects included, and the run's pins. An image the
// planner leaves to the agents (a runs-on label mapped in .lockstep.yml) is
// held to what the run's first job resolved: the later cells run it even
// though the tag moved (in the registry and the agent's store) while the
// first job ran. A new run resolves the tag again.
TEST_F(ServerFixture, JobsRunTheirPlanWithTheImagesTheRunFirstResolved) {
  if (!is_root()) GTEST_SKIP() << "needs root for containers";
  if (!registry::testing::LocalRegistry::available())
    GTEST_SKIP() << "needs " << registry::testing::LocalRegistry::kBinary;
  import_busybox("a");  // makes the busybox rootfs
  MovingTag tag;
  ASSERT_EQ(tag.start(root_ / "busybox-rootfs", "ci/runner:v1"), "");
  const std::string& image = tag.image;
  std::string sha = commit({{".github/workflows/ci.yml", R"yml(on: push
jobs:
  first:
    runs-on: ubuntu-latest
    steps:
      - run: echo "ready to wait" && sleep 5
  second:
    needs: first
    runs-on: ubuntu-latest
    strategy:
      matrix:
        cfg: [{name: a, n: 1}, {name: b, n: 2}]
    steps:
      - run: echo "cell ${{ matrix.cfg.name }} ${{ matrix.cfg.n }}" && test ! -e /retagged
)yml"},
                            {".lockstep.yml", "runs-on:\n  ubuntu-latest: " + image + "\n"}});
  start_server();
  start_agent("a", 1, "lockstep");
  ASSERT_EQ(push_hook("delivery-1", sha, secret_).status, 202);
  ASSERT_TRUE(eventually([&] { return runs().size() == 1; }));
  const std::string run_path = "/api/runs/" + std::to_string(runs()[0].value("id", int64_t{0}));
  int64_t first_id = 0;
  ASSERT_TRUE(eventually([&] {
    json run = get(run_path).json();
    for (const auto& j : run.value("jobs", json::array()))
      if (j.value("key", "") == "first") first_id = j.value("id", int64_t{0});
    return first_id > 0 && get("/api/jobs/" + std::to_string(first_id) + "/log?attempt=1")
                                   .body.find("ready to wait") != std::string::npos;
  }));
  // While the first job runs, the tag moves to another image, in the
  // registry and in the agent's store.
  ASSERT_EQ(tag.move(), "");
  auto pulled = run_process({LOCKSTEP_BINARY, "image", "pull", image},
                            {"LOCKSTEP_HOME=" + (root_ / "agent-a").string()});
  ASSERT_EQ(pulled.exit_code, 0) << pulled.err;
  json run = finished_run(runs()[0].value("id", int64_t{0}));
  ASSERT_EQ(run["jobs"].size(), 3u) << run.dump();
  std::map<std::string, std::string> digest_of;
  for (const json& job : run["jobs"]) {
    auto log = get("/api/jobs/" + std::to_string(job.value("id", int64_t{0})) + "/log?attempt=1");
    EXPECT_EQ(job.value("status", ""), "success") << job.dump() << log.body;
    const json rec = job["attempts"][0]["record"]["job"];
    digest_of[job.value("name", "")] = rec["image"].value("manifest_digest", "");
  }
  ASSERT_EQ(digest_of.size(), 3u);
  for (const auto& [name, d] : digest_of) EXPECT_EQ(d, tag.first.manifest.digest.str()) << name;
  for (const auto* cell : {"cell a 1", "cell b 2"}) {
    bool seen = false;
    for (const json& job : run["jobs"])
      seen =
          seen || get("/api/jobs/" + std::to_string(job.value("id", int64_t{0})) + "/log?attempt=1")
                          .body.find(cell) != std::string::npos;
    EXPECT_TRUE(seen) << cell;
  }

  // A new run has no pins: it takes the tag as it is now.
  std::string sha2 = commit({{"README", "again\n"}});
  ASSERT_EQ(push_hook("delivery-2", sha2, secret_).status, 202);
  ASSERT_TRUE(eventually([&] { return runs().size() == 2; }));
  json again = finished_run(runs()[0].value("id", int64_t{0}));
  ASSERT_FALSE(again["jobs"].empty());
  for (const json& job : again["jobs"]) {
    if (job.value("status", "") == "skipped") continue;
    EXPECT_EQ(job["attempts"][0]["record"]["job"]["image"].value("manifest_digest", ""),
              tag.moved.manifest.digest.str())
        << job.dump();
    // The moved image has /retagged.
    EXPECT_EQ(job.value("status", ""), job.value("key", "") == "first" ? "success" : "failure")
        << job.dump();
  }
}

// The planner pins the registry images a run's jobs name as it plans the
// run: its cells, started on two agents after the tag moved in the registry
// and before any of the run had finished, both run the image the tag named
// when the run was planned. A new run takes the moved tag.
TEST_F(ServerFixture, ThePlanPinsRegistryImagesBeforeAnyJobStarts) {
  if (!is_root()) GTEST_SKIP() << "needs root for containers";
  if (!registry::testing::LocalRegistry::available())
    GTEST_SKIP() << "needs " << registry::testing::LocalRegistry::kBinary;
  import_busybox("a");  // makes the busybox rootfs; agent a pulls from the registry all the same
  MovingTag tag;
  ASSERT_EQ(tag.start(root_ / "busybox-rootfs", "ci/busybox:v1"), "");
  const std::string& image = tag.image;

  std::string sha = commit({{".github/workflows/ci.yml", R"yml(on: push
jobs:
  cell:
    runs-on: ubuntu-latest
    container: )yml" + image + R"yml(
    strategy:
      matrix:
        n: [1, 2]
    steps:
      - run: echo "cell ${{ matrix.n }}" && test ! -e /retagged
)yml"}});
  start_server();
  ASSERT_EQ(push_hook("delivery-1", sha, secret_).status, 202);
  ASSERT_TRUE(eventually([&] { return runs().size() == 1; }));
  const int64_t first = runs()[0].value("id", int64_t{0});
  ASSERT_TRUE(eventually([&] {
    return get("/api/runs/" + std::to_string(first)).json().value("jobs", json::array()).size() ==
           2;
  }));
  // Planned, not started (no agent yet): the tag moves.
  ASSERT_EQ(tag.move(), "");
  start_agent("a", 1, "lockstep");
  start_agent("b", 1, "lockstep");
  json run = finished_run(first);
  EXPECT_EQ(run["run"].value("status", ""), "success") << run.dump();
  ASSERT_EQ(run["jobs"].size(), 2u);
  for (const json& job : run["jobs"]) {
    const json attempt = job["attempts"][0];
    EXPECT_EQ(attempt["record"]["job"]["image"].value("manifest_digest", ""),
              tag.first.manifest.digest.str())
        << get("/api/jobs/" + std::to_string(job.value("id", int64_t{0})) + "/log?attempt=1").body;
  }

  // A new run is planned with the tag as it is now.
  std::string sha2 = commit({{"README", "again\n"}});
  ASSERT_EQ(push_hook("delivery-2", sha2, secret_).status, 202);
  ASSERT_TRUE(eventually([&] { return runs().size() == 2; }));
  json again = finished_run(runs()[0].value("id", int64_t{0}));
  EXPECT_EQ(again["run"].value("status", ""), "failure") << again.dump();
  for (const json& job : again["jobs"])
    EXPECT_EQ(job["attempts"][0]["record"]["job"]["image"].value("manifest_digest", ""),
              tag.moved.manifest.digest.str())
        << job.dump();
}

// The planner pins the commits of the actions a job uses, from where the
// repository's .lockstep.yml says actions come from: a job that starts
// after the action's tag moved runs the commit the tag named when the run
// was planned. A new run takes the moved tag.
TEST_F(ServerFixture, ThePlanPinsActionsBeforeAnyJobStarts) {
  if (!is_root()) GTEST_SKIP() << "needs root for containers";
  const fs::path action = root_ / "actions" / "o" / "greet";
  fs::create_directories(action);
  auto agit = [&](std::vector<std::string> args) {
    args.insert(args.begin(),
                {"/usr/bin/git", "-c", "user.name=t", "-c", "user.email=t@example.com"});
    auto r = run_process(args, {}, action);
    EXPECT_EQ(r.exit_code, 0) << args[5] << ": " << r.err;
  };
  auto greet = [&](const std::string& word) {
    std::ofstream(action / "action.yml") << "name: greet\nruns:\n  using: composite\n  steps:\n"
                                            "    - run: echo \"greet "
                                         << word << "\"\n      shell: sh\n";
    agit({"add", "action.yml"});
    agit({"commit", "-q", "-m", word});
    agit({"tag", "-f", "v1"});
  };
  agit({"init", "-q", "-b", "main"});
  greet("one");
  std::string sha =
      commit({{".github/workflows/ci.yml", R"yml(on: push
jobs:
  hello:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - uses: o/greet@v1
)yml"},
              {".lockstep.yml", "actions-url: " + (root_ / "actions").string() + "\n"}});
  import_busybox("a");
  start_server();
  ASSERT_EQ(push_hook("delivery-1", sha, secret_).status, 202);
  ASSERT_TRUE(eventually([&] { return runs().size() == 1; }));
  const int64_t first = runs()[0].value("id", int64_t{0});
  ASSERT_TRUE(eventually([&] {
    return get("/api/runs/" + std::to_string(first)).json().value("jobs", json::array()).size() ==
           1;
  }));
  greet("two");  // planned, not started: the tag moves
  start_agent("a", 1, "lockstep");
  json run = finished_run(first);
  ASSERT_EQ(run["jobs"].size(), 1u);
  auto log =
      get("/api/jobs/" + std::to_string(run["jobs"][0].value("id", int64_t{0})) + "/log?attempt=1")
          .body;
  EXPECT_EQ(run["run"].value("status", ""), "success") << log;
  EXPECT_NE(log.find("greet one"), std::string::npos) << log;
  EXPECT_EQ(log.find("greet two"), std::string::npos) << log;

  std::string sha2 = commit({{"README", "again\n"}});
  ASSERT_EQ(push_hook("delivery-2", sha2, secret_).status, 202);
  ASSERT_TRUE(eventually([&] { return runs().size() == 2; }));
  json again = finished_run(runs()[0].value("id", int64_t{0}));
  ASSERT_EQ(again["jobs"].size(), 1u);
  log = get("/api/jobs/" + std::to_string(again["jobs"][0].value("id", int64_t{0})) +
            "/log?attempt=1")
            .body;
  EXPECT_NE(log.find("greet two"), std::string::npos) << log;
}

// A matrix made from the outputs of the job it needs: planned as one job
// that waits for them, then expanded by the server into one job per cell,
// queued like any other (so agents take the cells apart); the job after it
// sees the cells' result and outputs. A matrix that does not evaluate fails
// its job with the reason and skips what needs it.
TEST_F(ServerFixture, AMatrixFromNeedsOutputsRunsOnceTheyAreKnown) {
  if (!is_root()) GTEST_SKIP() << "needs root for containers";
  std::string sha = commit({{".github/workflows/ci.yml", R"yml(on: push
jobs:
  setup:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    outputs:
      cells: ${{ steps.m.outputs.cells }}
    steps:
      - id: m
        run: echo 'cells=["x","y"]' >> "$GITHUB_OUTPUT"
  build:
    needs: setup
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    strategy:
      matrix:
        cell: ${{ fromJSON(needs.setup.outputs.cells) }}
    outputs:
      last: ${{ steps.o.outputs.last }}
    steps:
      - id: o
        run: echo "built ${{ matrix.cell }}" && echo "last=${{ matrix.cell }}" >> "$GITHUB_OUTPUT"
  report:
    needs: build
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - run: echo "report ${{ needs.build.result }} ${{ needs.build.outputs.last }}"
)yml"}});
  import_busybox("a");
  import_busybox("b");
  start_server();
  start_agent("a", 1, "lockstep");
  start_agent("b", 1, "lockstep");
  ASSERT_EQ(push_hook("delivery-1", sha, secret_).status, 202);
  ASSERT_TRUE(eventually([&] { return runs().size() == 1; }));
  json run = finished_run(runs()[0].value("id", int64_t{0}));
  EXPECT_EQ(run["run"].value("status", ""), "success") << run.dump();
  ASSERT_EQ(run["jobs"].size(), 5u) << run.dump();  // setup, the stand-in, 2 cells, report
  std::map<std::string, std::string> log_of;        // by name
  std::set<std::string> agents;
  for (const json& job : run["jobs"]) {
    const std::string name = job.value("name", "");
    log_of[name] =
        get("/api/jobs/" + std::to_string(job.value("id", int64_t{0})) + "/log?attempt=1").body;
    EXPECT_EQ(job.value("status", ""), "success") << job.dump() << log_of[name];
    if (name == "build (matrix from needs)") {
      EXPECT_EQ(job.value("reason", ""), "expanded into 2 jobs") << job.dump();
      EXPECT_TRUE(job["attempts"].empty()) << job.dump();
    }
    if (job.value("key", "") == "build" && !job["attempts"].empty())
      agents.insert(job["attempts"][0].value("agent", ""));
  }
  EXPECT_NE(log_of["build (x)"].find("built x"), std::string::npos) << log_of["build (x)"];
  EXPECT_EQ(log_of["build (x)"].find("built y"), std::string::npos) << log_of["build (x)"];
  EXPECT_NE(log_of["build (y)"].find("built y"), std::string::npos) << log_of["build (y)"];
  EXPECT_NE(log_of["report"].find("report success y"), std::string::npos) << log_of["report"];
  EXPECT_FALSE(agents.empty());

  // A matrix that does not evaluate: its job fails naming why; what needs
  // it is skipped.
  std::string bad = commit({{".github/workflows/ci.yml", R"yml(on: push
jobs:
  setup:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    outputs:
      cells: ${{ steps.m.outputs.cells }}
    steps:
      - id: m
        run: echo 'cells=not json' >> "$GITHUB_OUTPUT"
  build:
    needs: setup
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    strategy:
      matrix:
        cell: ${{ fromJSON(needs.setup.outputs.cells) }}
    steps:
      - run: echo never
  report:
    needs: build
    runs-on: ubuntu-latest
    steps:
      - run: echo never
)yml"}});
  ASSERT_EQ(push_hook("delivery-2", bad, secret_).status, 202);
  ASSERT_TRUE(eventually([&] { return runs().size() == 2; }));
  json failed = finished_run(runs()[0].value("id", int64_t{0}));
  EXPECT_EQ(failed["run"].value("status", ""), "failure") << failed.dump();
  for (const json& job : failed["jobs"]) {
    if (job.value("key", "") == "build") {
      EXPECT_EQ(job.value("status", ""), "failure") << job.dump();
      EXPECT_EQ(job.value("reason", "").rfind("matrix: ", 0), 0u) << job.dump();
    }
    if (job.value("key", "") == "report") {
      EXPECT_EQ(job.value("status", ""), "skipped");
    }
  }
}

// A pull request runs on the merge of its head into the base branch, a commit
// only the server's mirror has: the agent makes the same commit itself, and
// the job sees both sides' files and that commit as GITHUB_SHA.
TEST_F(ServerFixture, APullRequestRunsOnItsMergeCommitOnAnAgent) {
  if (!is_root()) GTEST_SKIP() << "needs root for containers";
  std::string base = commit({{".github/workflows/ci.yml", R"yml(on: pull_request
jobs:
  test:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - uses: actions/checkout@v4
      - run: cat base.txt feature.txt && echo "at $GITHUB_SHA"
)yml"},
                             {"base.txt", "from base\n"}});
  // The head: a branch pushed only as the pull request's ref; then main
  // moves on, so the merge is a commit of its own.
  std::string head = push_pull_head("from feature\n", "refs/pull/7/head");
  std::string base2 = commit({{"base.txt", "from base, later\n"}});
  ASSERT_NE(base2, base);
  import_busybox("a");
  start_server();
  start_agent("a", 1, "lockstep");
  ASSERT_EQ(pull_request_hook("pr-1", 7, base2, head).status, 202);
  ASSERT_TRUE(eventually([&] { return runs().size() == 1; }));
  json run = finished_run(runs()[0].value("id", int64_t{0}));
  ASSERT_EQ(run["jobs"].size(), 1u) << run.dump();
  json job = run["jobs"][0];
  auto log = get("/api/jobs/" + std::to_string(job.value("id", int64_t{0})) + "/log?attempt=1");
  EXPECT_EQ(job.value("status", ""), "success") << job.dump() << log.body;
  std::string merge = run["run"].value("sha", "");
  EXPECT_NE(merge, head);
  EXPECT_NE(merge, base2);
  EXPECT_NE(log.body.find("from base, later"), std::string::npos) << log.body;
  EXPECT_NE(log.body.find("from feature"), std::string::npos) << log.body;
  EXPECT_NE(log.body.find("at " + merge), std::string::npos) << log.body;
}

// Commit statuses go to the forge's status API through the outbox: a forge
// that answers 500 is retried until it accepts, and the last status of the
// job is success.
TEST_F(ServerFixture, CommitStatusesReachAForgeThatFailsFirst) {
  FakeForge forge(/*failures=*/2);
  std::ofstream(root_ / "status-token") << "forge-token-1";
  auto add = run_process(
      {LOCKSTEP_BINARY, "server", "repo", "add", "o/r", "--forge", "github", "--clone-url",
       (root_ / "repo.git").string(), "--webhook-secret-file", (root_ / "secret").string(),
       "--status-api", "http://127.0.0.1:" + std::to_string(forge.port()), "--status-token-file",
       (root_ / "status-token").string(), "--db", db_url_},
      {"LOCKSTEP_HOME=" + (root_ / "server-home").string()});
  ASSERT_EQ(add.exit_code, 0) << add.err;
  std::string sha = commit({{".github/workflows/ci.yml", kOneJobWorkflow}});
  start_server();
  start_agent("a");
  ASSERT_EQ(push_hook("delivery-1", sha, secret_).status, 202);
  ASSERT_TRUE(eventually([&] { return runs().size() == 1; }));
  json run = finished_run(runs()[0].value("id", int64_t{0}));
  EXPECT_EQ(run["run"].value("status", ""), "success");
  std::vector<std::string> accepted;
  ASSERT_TRUE(eventually([&] {
    accepted.clear();
    for (const auto& c : forge.calls())
      if (c.answered == 201) accepted.push_back(json::parse(c.body).value("state", ""));
    return !accepted.empty() && accepted.back() == "success";
  })) << "statuses accepted: "
      << accepted.size();
  auto calls = forge.calls();
  ASSERT_GE(calls.size(), 4u);  // two refused, then pending and success
  EXPECT_EQ(calls[0].answered, 500);
  EXPECT_EQ(calls[1].answered, 500);
  EXPECT_EQ(accepted, (std::vector<std::string>{"pending", "success"}));
  for (const auto& c : calls) {
    EXPECT_EQ(c.method, "POST");
    EXPECT_EQ(c.path, "/repos/o/r/statuses/" + sha);
    EXPECT_EQ(c.authorization, "Bearer forge-token-1");
    EXPECT_EQ(json::parse(c.body).value("context", ""), "lockstep: ci / build");
  }
}

// Writes through the API need the admin token; a cancelled running job is
// stopped on its agent and its run ends cancelled; a re-run is a new run.
TEST_F(ServerFixture, CancelAndRerunThroughTheApi) {
  std::string sha = commit({{".github/workflows/ci.yml", R"(name: ci
on: push
jobs:
  long:
    runs-on: ubuntu-latest
    steps:
      - run: sleep 60
)"}});
  start_server(/*lease_seconds=*/12);  // a cancel reaches the agent in its next renewal (2 s)
  start_agent("a");
  ASSERT_EQ(push_hook("delivery-1", sha, secret_).status, 202);
  ASSERT_TRUE(eventually([&] {
    for (const auto& e : trace())
      if (e.event == "start") return true;
    return false;
  }));
  int64_t run_id = runs()[0].value("id", int64_t{0});
  std::string run_path = "/api/runs/" + std::to_string(run_id);
  EXPECT_EQ(post(run_path + "/cancel", std::string("not-the-admin-token")).status, 401);
  auto c = post(run_path + "/cancel");
  EXPECT_EQ(c.status, 200) << c.body;
  json run = finished_run(run_id);
  EXPECT_EQ(run["run"].value("status", ""), "cancelled") << run.dump();
  EXPECT_EQ(run["jobs"][0].value("status", ""), "cancelled");
  EXPECT_EQ(run["jobs"][0]["attempts"][0].value("state", ""), "cancelled");
  auto again = post(run_path + "/rerun");
  ASSERT_EQ(again.status, 201) << again.body;
  int64_t rerun_id = again.json().value("run", int64_t{0});
  EXPECT_NE(rerun_id, run_id);
  auto rerun = get("/api/runs/" + std::to_string(rerun_id)).json();
  EXPECT_EQ(rerun["run"].value("rerun_of", int64_t{0}), run_id);
  EXPECT_EQ(rerun["run"].value("sha", ""), sha);
  ASSERT_EQ(rerun["jobs"].size(), 1u);
  EXPECT_EQ(post("/api/runs/" + std::to_string(rerun_id) + "/cancel").status, 200);
  EXPECT_EQ(finished_run(rerun_id)["run"].value("status", ""), "cancelled");
}

const char* kSlowJobWorkflow = R"(name: ci
on: push
jobs:
  slow:
    runs-on: ubuntu-latest
    steps:
      - run: |
          echo before
          sleep 4
          echo after
)";

// All state is in PostgreSQL: a server restarted while a job runs finds the
// job where it was, and the agent's renewals (retried while the server was
// away) keep its attempt alive.
TEST_F(ServerFixture, AServerRestartMidJobLosesNothing) {
  std::string sha = commit({{".github/workflows/ci.yml", kSlowJobWorkflow}});
  start_server(/*lease_seconds=*/30);
  start_agent("a");
  ASSERT_EQ(push_hook("delivery-1", sha, secret_).status, 202);
  ASSERT_TRUE(eventually([&] {
    for (const auto& e : trace())
      if (e.event == "start") return true;
    return false;
  }));
  stop_child(server_);
  start_server(/*lease_seconds=*/30);
  json run = finished_run(runs()[0].value("id", int64_t{0}));
  EXPECT_EQ(run["run"].value("status", ""), "success") << run.dump();
  json job = run["jobs"][0];  // a copy: a missing entry is null, not undefined
  ASSERT_EQ(job["attempts"].size(), 1u) << job.dump();
  EXPECT_EQ(job["attempts"][0].value("state", ""), "success");
  auto log = get("/api/jobs/" + std::to_string(job.value("id", int64_t{0})) + "/log?attempt=1");
  EXPECT_NE(log.body.find("before\n"), std::string::npos) << log.body;
  EXPECT_NE(log.body.find("after\n"), std::string::npos) << log.body;
}

// PostgreSQL restarted while a job runs: the server re-opens its
// connections and the job finishes as its one attempt.
TEST_F(ServerFixture, APostgresRestartMidJobLosesNothing) {
  std::string sha = commit({{".github/workflows/ci.yml", kSlowJobWorkflow}});
  start_server(/*lease_seconds=*/30);
  start_agent("a");
  ASSERT_EQ(push_hook("delivery-1", sha, secret_).status, 202);
  ASSERT_TRUE(eventually([&] {
    for (const auto& e : trace())
      if (e.event == "start") return true;
    return false;
  }));
  restart_postgres();
  ASSERT_TRUE(eventually([&] { return runs().size() == 1; }));
  json run = finished_run(runs()[0].value("id", int64_t{0}));
  EXPECT_EQ(run["run"].value("status", ""), "success") << run.dump();
  json job = run["jobs"][0];
  ASSERT_EQ(job["attempts"].size(), 1u) << job.dump();
  EXPECT_EQ(job["attempts"][0].value("state", ""), "success");
  // A push after the restart runs too.
  std::string sha2 = commit({{"README", "again\n"}});
  parent_sha_ = sha;
  ASSERT_EQ(push_hook("delivery-2", sha2, secret_).status, 202);
  ASSERT_TRUE(eventually([&] { return runs().size() == 2; }));
  EXPECT_EQ(finished_run(runs()[0].value("id", int64_t{0}))["run"].value("status", ""), "success");
}

// The secrets a job references reach its agent only inside that job, and
// the agent masks them, and their encoded forms, before its log leaves it.
TEST_F(ServerFixture, SecretsAreMaskedOnTheAgentBeforeTheLogIsSent) {
  std::string sha = commit({{".github/workflows/ci.yml", R"(on: push
jobs:
  uses-it:
    runs-on: ubuntu-latest
    steps:
      - run: |
          echo ${{ secrets.TOKEN }}
          echo plain hunter2-secret and base64 aHVudGVyMi1zZWNyZXQ=
)"}});
  std::ofstream(root_ / "token-value") << "hunter2-secret\n";
  auto set = run_process(
      {"/bin/sh", "-c",
       std::string("exec ") + LOCKSTEP_BINARY + " server secret set o/r TOKEN --db \"$0\" < \"$1\"",
       db_url_, (root_ / "token-value").string()},
      {"LOCKSTEP_HOME=" + (root_ / "server-home").string()});
  ASSERT_EQ(set.exit_code, 0) << set.err;
  // The database holds the secret encrypted only.
  EXPECT_EQ(count("secrets"), 1);
  EXPECT_EQ(count("secrets WHERE position('hunter2'::bytea IN value_enc) > 0"), 0);
  start_server();
  start_agent("a");
  ASSERT_EQ(push_hook("delivery-1", sha, secret_).status, 202);
  ASSERT_TRUE(eventually([&] { return runs().size() == 1; }));
  json run = finished_run(runs()[0].value("id", int64_t{0}));
  EXPECT_EQ(run["run"].value("status", ""), "success") << run.dump();
  auto log =
      get("/api/jobs/" + std::to_string(run["jobs"][0].value("id", int64_t{0})) + "/log?attempt=1");
  EXPECT_NE(log.body.find("plain *** and base64 ***"), std::string::npos) << log.body;
  EXPECT_EQ(log.body.find("hunter2"), std::string::npos) << log.body;
  // The job's plan names the secrets it references, never their values.
  auto job = get("/api/jobs/" + std::to_string(run["jobs"][0].value("id", int64_t{0}))).json();
  EXPECT_EQ(job["plan"]["secrets"], json::array({"TOKEN"})) << job.dump();
}

TEST_F(ServerFixture, WrongOrMissingSignatureIsRefusedAndNothingIsQueued) {
  std::string sha = commit({{".github/workflows/ci.yml", kMatrixWorkflow}});
  start_server();
  auto wrong = push_hook("delivery-1", sha, "not-the-secret");
  EXPECT_EQ(wrong.status, 401) << wrong.body;
  EXPECT_NE(wrong.body.find("X-Hub-Signature-256 does not match the body"), std::string::npos)
      << wrong.body;
  auto missing = push_hook("delivery-2", sha, "");
  EXPECT_EQ(missing.status, 401) << missing.body;
  EXPECT_EQ(count("deliveries"), 0);
  EXPECT_EQ(count("runs"), 0);
  EXPECT_EQ(count("jobs"), 0);
  // The same delivery, signed: accepted (so the refusals above were the signature's).
  auto good = push_hook("delivery-1", sha, secret_);
  EXPECT_EQ(good.status, 202) << good.body;
  EXPECT_TRUE(eventually([&] { return count("jobs") == 7; }));
}

TEST_F(ServerFixture, UnknownRepositoryAndMalformedBodyAreRefused) {
  std::string sha = commit({{".github/workflows/ci.yml", kMatrixWorkflow}});
  start_server();
  auto unknown = push_hook("delivery-1", sha, secret_, "someone/else");
  EXPECT_EQ(unknown.status, 404) << unknown.body;
  EXPECT_NE(unknown.body.find("unknown repository 'someone/else'"), std::string::npos);
  auto malformed = push_hook("delivery-2", sha, secret_, "o/r", "{\"ref\": ");
  EXPECT_EQ(malformed.status, 400) << malformed.body;
  EXPECT_EQ(count("deliveries"), 0);
  EXPECT_EQ(count("runs"), 0);
}

TEST_F(ServerFixture, TheSameDeliveryTwiceRunsOnce) {
  std::string sha = commit({{".github/workflows/ci.yml", kMatrixWorkflow}});
  start_server();
  start_agent("a", 2);
  auto first = push_hook("delivery-1", sha, secret_);
  EXPECT_EQ(first.status, 202) << first.body;
  auto again = push_hook("delivery-1", sha, secret_);
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.json().value("duplicate", ""), "delivery-1");
  ASSERT_TRUE(eventually([&] { return runs().size() == 1; }));
  json run = finished_run(runs()[0].value("id", int64_t{0}));
  EXPECT_EQ(run["run"].value("status", ""), "success");
  EXPECT_EQ(count("deliveries"), 1);
  EXPECT_EQ(count("runs"), 1);
  EXPECT_EQ(count("jobs"), 7);
}

TEST_F(ServerFixture, AWorkflowThatDoesNotParseFailsItsRunWithTheLocation) {
  std::string sha = commit({{".github/workflows/ci.yml",
                             "on: push\njobs:\n  build:\n"
                             "    runs-on: x\n    step:\n"
                             "      - run: echo\n"}});
  start_server();
  ASSERT_EQ(push_hook("delivery-1", sha, secret_).status, 202);
  ASSERT_TRUE(eventually([&] { return runs().size() == 1; }));
  json run = runs()[0];
  EXPECT_EQ(run.value("status", ""), "failure") << run.dump();
  std::string error = run.value("error", "");
  EXPECT_NE(error.find(".github/workflows/ci.yml:5:5:"), std::string::npos) << error;
  EXPECT_EQ(count("jobs"), 0);
}

TEST_F(ServerFixture, AnAgentWithAWrongTokenIsRefused) {
  start_server();
  auto r = run_process(
      {LOCKSTEP_BINARY, "agent", "--server", "http://127.0.0.1:" + std::to_string(port_), "--token",
       "wrong-token", "--executor", "fake"},
      {"LOCKSTEP_HOME=" + (root_ / "agent-x").string()});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("the server refused the agent's token"), std::string::npos) << r.err;
}

// An agent killed mid-job: its job's supervisor stops the job, the server
// declares the attempt lost after the lease and another agent runs it as
// attempt 2; the two attempts never overlap.
TEST_F(ServerFixture, AnAgentKilledMidJobHasItsJobRunAgainAfterTheLease) {
  std::string sha = commit({{".github/workflows/ci.yml", R"(on: push
jobs:
  slow:
    runs-on: ubuntu-latest
    steps:
      - run: |
          echo working
          sleep 2
)"}});
  start_server(/*lease_seconds=*/6);
  Child& a = start_agent("a");
  ASSERT_EQ(push_hook("delivery-1", sha, secret_).status, 202);
  ASSERT_TRUE(eventually([&] {
    for (const auto& e : trace())
      if (e.event == "start") return true;
    return false;
  }));
  ::kill(a.pid, SIGKILL);
  int st = 0;
  ::waitpid(a.pid, &st, 0);
  a.pid = -1;
  // The supervisor of the killed agent's job sees the agent gone and stops.
  EXPECT_TRUE(eventually([&] {
    for (const auto& e : trace())
      if (e.event == "killed" && e.attempt == 1) return true;
    return false;
  }));
  start_agent("b");
  ASSERT_TRUE(eventually([&] { return runs().size() == 1; }));
  json run = finished_run(runs()[0].value("id", int64_t{0}));
  EXPECT_EQ(run["run"].value("status", ""), "success") << run.dump();
  ASSERT_EQ(run["jobs"].size(), 1u);
  json job = run["jobs"][0];
  EXPECT_EQ(job.value("attempt", 0), 2);
  ASSERT_EQ(job["attempts"].size(), 2u) << job.dump();
  EXPECT_EQ(job["attempts"][0].value("state", ""), "lost");
  EXPECT_EQ(job["attempts"][0].value("agent", ""), "a");
  EXPECT_EQ(job["attempts"][1].value("state", ""), "success");
  EXPECT_EQ(job["attempts"][1].value("agent", ""), "b");
  expect_no_overlap(trace());
  auto log = get("/api/jobs/" + std::to_string(job.value("id", int64_t{0})) + "/log?attempt=2");
  EXPECT_NE(log.body.find("working"), std::string::npos) << log.body;
}

// An agent frozen past its lease: its supervisor kills the job at the
// give-up time while the agent cannot act, the job runs again elsewhere, and
// when the agent resumes its writes for the old attempt are refused (409).
TEST_F(ServerFixture, AFrozenAgentLosesItsJobAndItsLateWritesAreRefused) {
  std::string sha = commit({{".github/workflows/ci.yml", R"(on: push
jobs:
  slow:
    runs-on: ubuntu-latest
    steps:
      - run: |
          echo working
          sleep 5
)"}});
  start_server(/*lease_seconds=*/6);
  Child& a = start_agent("a");
  ASSERT_EQ(push_hook("delivery-1", sha, secret_).status, 202);
  ASSERT_TRUE(eventually([&] {
    for (const auto& e : trace())
      if (e.event == "start") return true;
    return false;
  }));
  ::kill(a.pid, SIGSTOP);
  start_agent("b");
  ASSERT_TRUE(eventually([&] {
    for (const auto& e : trace())
      if (e.event == "start" && e.attempt == 2) return true;
    return false;
  }));
  ::kill(a.pid, SIGCONT);
  ASSERT_TRUE(eventually([&] { return runs().size() == 1; }));
  json run = finished_run(runs()[0].value("id", int64_t{0}));
  EXPECT_EQ(run["run"].value("status", ""), "success") << run.dump();
  json job = run["jobs"][0];
  ASSERT_EQ(job["attempts"].size(), 2u) << job.dump();
  EXPECT_EQ(job["attempts"][0].value("state", ""), "lost");
  EXPECT_EQ(job["attempts"][1].value("agent", ""), "b");
  EXPECT_EQ(job["attempts"][1].value("state", ""), "success");
  // Attempt 1 was stopped by its supervisor, not left to finish.
  bool killed = false, ended = false;
  for (const auto& e : trace()) {
    if (e.attempt != 1) continue;
    killed = killed || e.event == "killed";
    ended = ended || e.event == "end";
  }
  EXPECT_TRUE(killed);
  EXPECT_FALSE(ended);
  expect_no_overlap(trace());
  // The resumed agent was told its attempt is no longer current.
  EXPECT_TRUE(eventually([&] { return slurp(a.log).find("409") != std::string::npos; }));
}

}  // namespace
}  // namespace lockstep::testing
