// Run records, environment hashes, `runs`, `logs`, `replay` and `verify`,
// end to end: the real binary, real containers, a busybox image imported by
// each test into its own LOCKSTEP_HOME.
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>

#include "common/digest.hpp"
#include "common/fs.hpp"
#include "common/json.hpp"
#include "tests/support/lockstep_process.hpp"

namespace lockstep::testing {
namespace {
namespace fs = std::filesystem;

const char* kWorkflow = R"(name: rec
on: push
env:
  GREETING: hello
jobs:
  build:
    runs-on: linux
    container: localhost/busybox:test
    strategy:
      matrix:
        word: [one, two]
    steps:
      - id: make
        run: |
          mkdir -p out
          echo "${GREETING} ${{ matrix.word }}" > out/result.txt
          echo "built ${{ matrix.word }}"
      - name: check
        run: cat out/result.txt
      - uses: actions/upload-artifact@v4
        with:
          name: result-${{ matrix.word }}
          path: out/result.txt
)";

// The same workflow with keys reordered, comments, and flow-style env.
const char* kWorkflowReordered = R"(# the same workflow, written differently
jobs:
  build:
    strategy:
      matrix:
        word: [one, two]   # same axis
    container: localhost/busybox:test
    steps:
      - run: |
          mkdir -p out
          echo "${GREETING} ${{ matrix.word }}" > out/result.txt
          echo "built ${{ matrix.word }}"
        id: make
      - run: cat out/result.txt
        name: check
      - with:
          path: out/result.txt
          name: result-${{ matrix.word }}
        uses: actions/upload-artifact@v4
    runs-on: linux
env: {GREETING: hello}
on: push
name: rec
)";

class RecordTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!is_root()) GTEST_SKIP() << "needs root: containers use mount/pid/net namespaces";
    ASSERT_FALSE(home_.import_busybox("localhost/busybox:test").empty());
  }

  // Runs `args` and returns the run id the run recorded.
  std::string run(std::vector<std::string> args, int expect_exit = 0) {
    auto r = home_.lockstep(args);
    EXPECT_EQ(r.exit_code, expect_exit) << r.out << r.err;
    std::smatch m;
    std::regex re("run (\\S+) recorded in");
    if (!std::regex_search(r.err, m, re)) {
      ADD_FAILURE() << "no run id in: " << r.err;
      return "";
    }
    return m[1];
  }

  Json record(const std::string& id) {
    auto text = read_file(home_.home() / "runs" / id / "record.json");
    EXPECT_TRUE(text) << id;
    return text ? Json::parse(*text) : Json();
  }

  static const Json& job(const Json& rec, const std::string& name) {
    for (const auto& j : rec["jobs"])
      if (j["name"] == name) return j;
    static Json none;
    ADD_FAILURE() << "no job " << name;
    return none;
  }

  LockstepHome home_;
};

TEST_F(RecordTest, EveryRunIsRecordedWithHashesAndShownByRunsAndLogs) {
  auto wf = home_.write("ci.yml", kWorkflow);
  std::string id = run({"run", wf.string()});
  ASSERT_FALSE(id.empty());
  Json rec = record(id);
  EXPECT_EQ(rec["schema"], "lockstep.run-record/v1");
  EXPECT_EQ(rec["kind"], "run");
  EXPECT_EQ(rec["result"], "success");
  EXPECT_EQ(rec["workflow"]["digest"].get<std::string>().size(), 71u);
  EXPECT_TRUE(rec["ambient"]["kernel"].is_string());
  ASSERT_EQ(rec["jobs"].size(), 2u);
  const Json& one = job(rec, "build (one)");
  std::string h = one["env_hash"];
  EXPECT_EQ(h.rfind("sha256:", 0), 0u);
  EXPECT_EQ(one["env_doc"]["env"]["GREETING"], "hello");
  EXPECT_EQ(one["env_doc"]["matrix"]["word"], "one");
  EXPECT_EQ(one["env_doc"]["container"]["network"], "egress");  // the default
  EXPECT_EQ(one["image"]["platform"], "linux/amd64");
  EXPECT_NE(job(rec, "build (two)")["env_hash"], h);
  ASSERT_EQ(one["steps"].size(), 3u);
  EXPECT_EQ(one["steps"][0]["env_doc"]["previous"], h);
  EXPECT_EQ(one["steps"][1]["env_doc"]["previous"], one["steps"][0]["env_hash"]);
  EXPECT_EQ(one["steps"][0]["exit_code"], 0);
  ASSERT_EQ(one["artifacts"].size(), 1u);
  EXPECT_EQ(one["artifacts"][0]["name"], "result-one");
  EXPECT_EQ(one["artifacts"][0]["files"][0]["path"], "result.txt");
  // SOURCE_DATE_EPOCH, TZ and LANG are set for every job, and hashed.
  EXPECT_EQ(one["env_doc"]["env"]["TZ"], "UTC");
  EXPECT_TRUE(one["env_doc"]["env"].contains("SOURCE_DATE_EPOCH"));
  EXPECT_TRUE(fs::exists(home_.home() / "runs" / id / "workflow.yml"));
  EXPECT_TRUE(fs::exists(home_.home() / "runs" / id / "provenance.json"));
  EXPECT_TRUE(fs::exists(home_.home() / "lockstep.db"));

  auto ls = home_.lockstep({"runs", "ls"});
  EXPECT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_NE(ls.out.find(id), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("success"), std::string::npos) << ls.out;
  auto show = home_.lockstep({"runs", "show", id});
  EXPECT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find(h), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("artifact result-one sha256:"), std::string::npos) << show.out;
  auto logs = home_.lockstep({"logs", id, "build (two)"});
  EXPECT_EQ(logs.exit_code, 0) << logs.err;
  EXPECT_NE(logs.out.find("built two"), std::string::npos) << logs.out;
  EXPECT_EQ(logs.out.find("built one"), std::string::npos) << logs.out;
  auto missing = home_.lockstep({"logs", id, "build (three)"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("has no job 'build (three)'"), std::string::npos) << missing.err;
}

TEST_F(RecordTest, ARunThatCannotBeRecordedFailsWithExitCodeFour) {
  auto wf = home_.write("wf/ci.yml", kWorkflow);
  // The run index cannot be opened: a directory where lockstep.db belongs.
  fs::create_directories(home_.home() / "lockstep.db");
  auto r = home_.lockstep({"run", wf.string()});
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_NE(r.err.find("lockstep: error: write the run record of "), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(" recorded in "), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("2 of 2 jobs passed"), std::string::npos) << r.out;
  // Whatever was written is whole: no temp file left, the record parses.
  for (const auto& id : home_.run_ids()) {
    for (const auto& e : fs::directory_iterator(home_.home() / "runs" / id))
      EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
    auto text = read_file(home_.home() / "runs" / id / "record.json");
    if (text) {
      EXPECT_FALSE(Json::parse(*text, nullptr, false).is_discarded());
    }
  }
  fs::remove(home_.home() / "lockstep.db");

  // A report that cannot be written: the jobs passed, the run says what failed.
  r = home_.lockstep({"run", wf.string(), "--report",
                      "junit=" + (home_.root() / "wf/ci.yml/report.xml").string()});
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_NE(r.err.find("report.xml"), std::string::npos) << r.err;
}

TEST_F(RecordTest, ProvenanceSubjectsCheckTheDownloadedArtifactFiles) {
  auto wf = home_.write("ci.yml", kWorkflow);
  std::string id = run({"run", wf.string()});
  ASSERT_FALSE(id.empty());
  auto text = read_file(home_.home() / "runs" / id / "provenance.json");
  ASSERT_TRUE(text);
  Json statement = Json::parse(*text);
  auto dl = home_.lockstep({"artifacts", id, "--download", (home_.root() / "dl").string()});
  ASSERT_EQ(dl.exit_code, 0) << dl.err;
  std::set<std::string> files;
  for (const auto& s : statement["subject"]) {
    std::string name = s["name"];
    if (name.find('/') == std::string::npos) continue;  // the artifact as a whole
    files.insert(name);
    auto d = sha256_of_file(home_.root() / "dl" / name);
    ASSERT_TRUE(d) << name;
    EXPECT_EQ("sha256:" + s["digest"]["sha256"].get<std::string>(), d->str()) << name;
  }
  EXPECT_EQ(files, (std::set<std::string>{"result-one/result.txt", "result-two/result.txt"}));
}

TEST_F(RecordTest, RunsRmAndPruneRemoveRecordLogsRowsAndArtifacts) {
  auto wf = home_.write("ci.yml", kWorkflow);
  std::string a = run({"run", wf.string()});
  std::string b = run({"run", wf.string()});
  std::string c = run({"run", wf.string()});
  ASSERT_FALSE(a.empty() || b.empty() || c.empty());
  const fs::path runs = home_.home() / "runs";
  const fs::path artifacts = home_.home() / "artifacts" / "runs";
  ASSERT_TRUE(fs::exists(artifacts / a));

  // Bad input: a one-line error, and nothing is removed.
  auto r = home_.lockstep({"runs", "rm", a, "no-such-run"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "lockstep: error: no run 'no-such-run' in " + runs.string() + "\n");
  EXPECT_TRUE(fs::exists(runs / a / "record.json"));
  r = home_.lockstep({"runs", "rm", "../" + a});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "lockstep: error: runs rm: not a run id: '../" + a + "'\n");
  r = home_.lockstep({"runs", "prune"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "lockstep: error: runs prune needs --keep N or --older-than\n");
  r = home_.lockstep({"runs", "prune", "--keep", "-1"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "lockstep: error: --keep '-1': expected a number from 0 to 1000000000\n");
  r = home_.lockstep({"runs", "prune", "--older-than", "soon"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--older-than: invalid duration 'soon'"), std::string::npos) << r.err;

  r = home_.lockstep({"runs", "rm", a});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("removed run " + a + " (", 0), 0u) << r.out;
  EXPECT_FALSE(fs::exists(runs / a));
  EXPECT_FALSE(fs::exists(artifacts / a));
  auto ls = home_.lockstep({"runs", "ls"});
  EXPECT_EQ(ls.out.find(a), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find(b), std::string::npos) << ls.out;
  EXPECT_NE(home_.lockstep({"runs", "show", a}).exit_code, 0);
  EXPECT_NE(home_.lockstep({"artifacts", a}).exit_code, 0);

  // Keep the newest: a dry run first.
  r = home_.lockstep({"runs", "prune", "--keep", "1", "--dry-run"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("would remove run " + b + " (started ", 0), 0u) << r.out;
  EXPECT_EQ(r.out.find(c), std::string::npos) << r.out;
  EXPECT_TRUE(fs::exists(runs / b / "record.json"));
  r = home_.lockstep({"runs", "prune", "--keep", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("removed 1 run(s)"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(runs / b));
  EXPECT_TRUE(fs::exists(runs / c / "record.json"));
  r = home_.lockstep({"runs", "prune", "--older-than", "1d"});
  EXPECT_EQ(r.out, "removed 0 run(s), 0 B\n");
  EXPECT_TRUE(fs::exists(runs / c / "record.json"));

  // A run directory without a record (interrupted, or still running) needs --force.
  const std::string orphan = "20990101-000000.000-dead";
  fs::create_directories(runs / orphan / "jobs" / "1-x");
  ASSERT_TRUE(write_file(runs / orphan / "jobs" / "1-x" / "log.txt", "partial\n"));
  r = home_.lockstep({"runs", "rm", orphan});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "lockstep: error: run '" + orphan +
                       "' has no record (interrupted, or still running); --force removes it\n");
  EXPECT_TRUE(fs::exists(runs / orphan));
  r = home_.lockstep({"runs", "prune", "--keep", "0"});
  EXPECT_TRUE(fs::exists(runs / orphan)) << "prune leaves runs without a record alone";
  EXPECT_FALSE(fs::exists(runs / c));
  r = home_.lockstep({"runs", "rm", "--force", orphan});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(runs / orphan));
}

TEST_F(RecordTest, HashIgnoresLayoutButFollowsEveryInputAndDiffNamesIt) {
  auto wf = home_.write("ci.yml", kWorkflow);
  auto wf2 = home_.write("reordered/ci.yml", kWorkflowReordered);
  std::string a = run({"run", wf.string()});
  std::string b = run({"run", wf2.string()});
  std::string c = run({"run", wf.string(), "--env", "EXTRA=1"});
  auto limits = home_.write(
      "limits/ci.yml",
      std::regex_replace(std::string(kWorkflow), std::regex("container: localhost/busybox:test"),
                         "container:\n      image: localhost/busybox:test\n"
                         "      options: --memory 256m"));
  std::string d = run({"run", limits.string()});
  ASSERT_FALSE(a.empty() || b.empty() || c.empty() || d.empty());
  // Run ids sort by start time, also for runs within the same second.
  for (const auto& id : {a, b, c, d})
    EXPECT_TRUE(std::regex_match(id, std::regex(R"(\d{8}-\d{6}\.\d{3}-[0-9a-f]{4})"))) << id;
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_LT(c, d);
  Json ra = record(a), rb = record(b), rc = record(c), rd = record(d);
  for (const char* name : {"build (one)", "build (two)"}) {
    EXPECT_EQ(job(ra, name)["env_hash"], job(rb, name)["env_hash"])
        << json_differences(job(ra, name)["env_doc"], job(rb, name)["env_doc"]).front();
    EXPECT_NE(job(ra, name)["env_hash"], job(rc, name)["env_hash"]);
    EXPECT_NE(job(ra, name)["env_hash"], job(rd, name)["env_hash"]);
  }
  // The workflow files differ as bytes (and the diff says so), the jobs'
  // inputs do not.
  auto same = home_.lockstep({"diff", a, b});
  EXPECT_NE(same.out.find("build (one): inputs identical"), std::string::npos) << same.out;
  EXPECT_NE(same.out.find("build (two): inputs identical"), std::string::npos) << same.out;
  auto env = home_.lockstep({"diff", a, c});
  EXPECT_EQ(env.exit_code, 1) << env.out << env.err;
  EXPECT_NE(env.out.find("env.EXTRA"), std::string::npos) << env.out;
  auto mem = home_.lockstep({"diff", a, d});
  EXPECT_EQ(mem.exit_code, 1) << mem.out << mem.err;
  EXPECT_NE(mem.out.find("container.limits.memory_bytes"), std::string::npos) << mem.out;
}

TEST_F(RecordTest, ReplayFromRecordJsonOnAFreshStateDirMatchesHashesAndOutputs) {
  auto wf = home_.write("ci.yml", kWorkflow);
  std::string id = run({"run", wf.string()});
  ASSERT_FALSE(id.empty());
  fs::path copy = home_.root() / "elsewhere" / "record.json";
  fs::create_directories(copy.parent_path());
  fs::copy_file(home_.home() / "runs" / id / "record.json", copy);
  fs::remove(wf);  // no workflow file needed

  LockstepHome fresh;
  ASSERT_FALSE(fresh.import_busybox("localhost/busybox:test").empty());
  auto r = fresh.lockstep({"replay", copy.string()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("2 of 2 environment hashes match the record; 2 artifact(s) identical; "
                       "outputs match"),
            std::string::npos)
      << r.out << r.err;
  // The replay is itself recorded, with the same hashes.
  std::smatch m;
  std::regex re("run (\\S+) recorded in");
  ASSERT_TRUE(std::regex_search(r.err, m, re)) << r.err;
  auto text = read_file(fresh.home() / "runs" / std::string(m[1]) / "record.json");
  ASSERT_TRUE(text);
  Json replay = Json::parse(*text);
  EXPECT_EQ(replay["kind"], "replay");
  EXPECT_EQ(replay["replay_of"], id);
  EXPECT_NE(replay["builder_id"], record(id)["builder_id"]);
  EXPECT_EQ(job(replay, "build (one)")["env_hash"], job(record(id), "build (one)")["env_hash"]);

  // One job only, stopping before its second step.
  auto until =
      fresh.lockstep({"replay", copy.string(), "--job", "build (two)", "--until", "check"});
  EXPECT_EQ(until.exit_code, 0) << until.out << until.err;
  EXPECT_NE(until.out.find("built two"), std::string::npos) << until.out;
  EXPECT_EQ(until.out.find("built one"), std::string::npos) << until.out;
  EXPECT_NE(until.out.find("stopped before step 'check'"), std::string::npos) << until.out;
}

TEST_F(RecordTest, AnExportedRunReplaysOnAHostWithoutItsImages) {
  auto wf = home_.write("ci.yml", kWorkflow);
  std::string id = run({"run", wf.string()});
  ASSERT_FALSE(id.empty());
  fs::path bundle = home_.root() / "bundle";
  auto e = home_.lockstep({"runs", "export", id, bundle.string()});
  ASSERT_EQ(e.exit_code, 0) << e.out << e.err;
  EXPECT_TRUE(fs::exists(bundle / "record.json"));
  EXPECT_TRUE(fs::exists(bundle / "jobs"));
  size_t tars = 0;
  for (const auto& f : fs::directory_iterator(bundle / "images"))
    tars += f.path().extension() == ".tar";
  EXPECT_EQ(tars, 1u);
  auto again = home_.lockstep({"runs", "export", id, bundle.string()});
  EXPECT_EQ(again.exit_code, 2) << again.err;  // never over an existing export

  LockstepHome bare;  // no image imported
  auto r = bare.lockstep({"replay", (bundle / "record.json").string()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("imported 1 image(s)"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("2 of 2 environment hashes match the record"), std::string::npos) << r.out;
  auto logs = bare.lockstep({"logs", (bundle / "record.json").string(), "build (one)"});
  EXPECT_EQ(logs.exit_code, 0) << logs.err;
  EXPECT_NE(logs.out.find("built one"), std::string::npos) << logs.out;
}

TEST_F(RecordTest, ReplayRefusesAChangedEnvironmentNamingTheField) {
  auto wf = home_.write("ci.yml", kWorkflow);
  std::string id = run({"run", wf.string(), "--job", "build", "--matrix", "word=one"});
  ASSERT_FALSE(id.empty());
  Json rec = record(id);
  // The record says the job saw GREETING=bonjour; this host computes hello.
  rec["jobs"][0]["env_doc"]["env"]["GREETING"] = "bonjour";
  fs::path tampered = home_.write("tampered.json", rec.dump());
  auto r = home_.lockstep({"replay", tampered.string()});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("env.GREETING: \"bonjour\" -> \"hello\""), std::string::npos)
      << r.out << r.err;
  EXPECT_EQ(r.out.find("built one"), std::string::npos) << "nothing may run: " << r.out;
}

TEST_F(RecordTest, BadRecordsAreOneLineErrors) {
  auto wf = home_.write("ci.yml", kWorkflow);
  std::string id = run({"run", wf.string(), "--job", "build", "--matrix", "word=one"});
  ASSERT_FALSE(id.empty());
  std::string text = *read_file(home_.home() / "runs" / id / "record.json");
  auto one_line = [](const std::string& err) {
    return std::count(err.begin(), err.end(), '\n') == 1;
  };

  Json newer = Json::parse(text);
  newer["schema"] = "lockstep.run-record/v2";
  auto r = home_.lockstep({"replay", home_.write("newer.json", newer.dump()).string()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("has schema version 2; this lockstep reads version 1"), std::string::npos)
      << r.err;
  EXPECT_TRUE(one_line(r.err)) << r.err;

  r = home_.lockstep(
      {"replay", home_.write("truncated.json", text.substr(0, text.size() / 2)).string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("truncated"), std::string::npos) << r.err;
  EXPECT_TRUE(one_line(r.err)) << r.err;

  // An image nobody has: the digest is unknown here and no registry serves it.
  Json gone = Json::parse(text);
  gone["jobs"][0]["image"]["manifest_digest"] = "sha256:" + std::string(64, 'e');
  r = home_.lockstep({"replay", home_.write("gone.json", gone.dump()).string()});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE((r.out + r.err).find("sha256:" + std::string(64, 'e')), std::string::npos)
      << r.out << r.err;

  Json arm = Json::parse(text);
  arm["jobs"][0]["image"]["platform"] = "linux/arm64";
  r = home_.lockstep({"replay", home_.write("arm.json", arm.dump()).string()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("was recorded on linux/arm64; this host runs linux/amd64"),
            std::string::npos)
      << r.err;
  EXPECT_TRUE(one_line(r.err)) << r.err;

  r = home_.lockstep({"runs", "show", "no-such-run"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(one_line(r.err)) << r.err;
}

TEST_F(RecordTest, VerifyFindsReproducibleAndUnreproducibleBuildsNamingTheFile) {
  auto good = home_.write("good/ci.yml", R"(name: good
jobs:
  build:
    runs-on: linux
    container: localhost/busybox:test
    steps:
      - run: |
          mkdir -p dist
          echo "version 1.0 built at ${SOURCE_DATE_EPOCH}" > dist/app.txt
          printf "b\na\n" | sort > dist/listing.txt
      - uses: actions/upload-artifact@v4
        with: {name: dist, path: dist}
)");
  auto r = home_.lockstep({"verify", good.string()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("REPRODUCIBLE: 1 artifact(s), 2 file(s) identical across 2 builds"),
            std::string::npos)
      << r.out << r.err;

  auto path = home_.write("path/ci.yml", R"yml(name: path
jobs:
  build:
    runs-on: linux
    container: localhost/busybox:test
    steps:
      - run: |
          mkdir -p dist
          echo "same" > dist/same.txt
          echo "built in $(pwd)" > dist/buildinfo.txt
      - uses: actions/upload-artifact@v4
        with: {name: dist, path: dist}
)yml");
  r = home_.lockstep({"verify", path.string()});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE(r.out.find("NOT REPRODUCIBLE"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("file buildinfo.txt"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("file same.txt"), std::string::npos) << r.out;

  auto clock = home_.write("clock/ci.yml", R"(name: clock
jobs:
  build:
    runs-on: linux
    container: localhost/busybox:test
    steps:
      - run: |
          mkdir -p dist
          date +%s > dist/stamp.txt
      - uses: actions/upload-artifact@v4
        with: {name: dist, path: dist}
)");
  r = home_.lockstep({"verify", clock.string(), "--vary", "-build-path,-uid"});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE(r.out.find("file stamp.txt"), std::string::npos) << r.out;

  r = home_.lockstep({"verify", good.string(), "--vary", "+colour"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown variation 'colour'"), std::string::npos) << r.err;
}

TEST_F(RecordTest, VerifyVariesDirectoryOrderAndDomainEvenAsAnotherUser) {
  if (::access("/dev/fuse", R_OK | W_OK) != 0) GTEST_SKIP() << "needs /dev/fuse (disorderfs)";
  if (::access("/usr/bin/disorderfs", X_OK) != 0) GTEST_SKIP() << "needs disorderfs";
  auto wf = home_.write("order/ci.yml", R"yml(name: order
jobs:
  build:
    runs-on: linux
    container: localhost/busybox:test
    steps:
      - run: |
          mkdir -p dist src
          touch src/a src/b src/c
          find src -mindepth 1 > dist/order.txt
          echo "id=$(id -u) domain=$(cat /proc/sys/kernel/domainname)"
      - uses: actions/upload-artifact@v4
        with: {name: dist, path: dist}
)yml");
  auto r = home_.lockstep({"verify", wf.string()});
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  EXPECT_NE(r.out.find("file order.txt"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("id=0 domain=(none)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("id=1001 domain=build2.example"), std::string::npos) << r.out;
  // Without the directory-order variation the same build is reproducible.
  r = home_.lockstep({"verify", wf.string(), "--vary", "-dir-order"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  // Nothing of the view is left mounted.
  auto mounts = read_file("/proc/self/mountinfo");
  ASSERT_TRUE(mounts);
  EXPECT_EQ(mounts->find(home_.root().string()), std::string::npos) << *mounts;
}

}  // namespace
}  // namespace lockstep::testing
