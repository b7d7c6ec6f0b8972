// Reusable workflows through the real binary: local and remote ones (a
// forge directory of real git repositories made by the test, through
// --actions-url), typed inputs, secrets (explicit and inherited, masked),
// outputs, a matrix on the calling job, nesting, the errors, lock pinning,
// --frozen, and replay.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>

#include "common/digest.hpp"
#include "common/fs.hpp"
#include "common/json.hpp"
#include "tests/support/lockstep_process.hpp"

namespace lockstep::testing {
namespace {
namespace fs = std::filesystem;

bool has(const std::string& s, const std::string& needle) {
  return s.find(needle) != std::string::npos;
}

// The jobs of a project: setup makes a version; `call` runs build.yml once
// per matrix value with typed inputs (one from setup's outputs) and one
// secret; `after` reads the called workflow's output.
const char* const kCaller = R"(name: CI
on: push
env:
  TOP: top-env
jobs:
  setup:
    runs-on: x
    container: localhost/busybox:test
    outputs:
      version: ${{ steps.s.outputs.version }}
    steps:
      - id: s
        run: echo "version=1.5" >> $GITHUB_OUTPUT
  call:
    needs: setup
    strategy:
      matrix:
        os: [linux, bsd]
    uses: ./.github/workflows/build.yml
    with:
      os: ${{ matrix.os }}
      fast: true
      level: 3
      version: ${{ needs.setup.outputs.version }}
    secrets:
      token: ${{ secrets.TOKEN }}
  after:
    needs: call
    runs-on: x
    container: localhost/busybox:test
    steps:
      - run: echo "result=${{ needs.call.result }} built=${{ needs.call.outputs.built }}"
)";

const char* const kBuild = R"(name: Build
on:
  workflow_call:
    inputs:
      os: {type: string, required: true}
      fast: {type: boolean, default: false}
      level: {type: number}
      version: {type: string}
      mode: {type: string, default: "${{ github.workflow }}-default"}
    secrets:
      token: {required: true}
    outputs:
      built:  # empty for bsd
        value: ${{ inputs.os != 'bsd' && jobs.compile.outputs.artifact || '' }}
env:
  INNER: inner-env
jobs:
  compile:
    runs-on: x
    container: localhost/busybox:test
    outputs:
      artifact: ${{ steps.a.outputs.artifact }}
    steps:
      - id: a
        run: |
          echo 'types: os=${{ toJSON(inputs.os) }} fast=${{ toJSON(inputs.fast) }} level=${{ toJSON(inputs.level) }} version=${{ toJSON(inputs.version) }} mode=${{ inputs.mode }}'
          echo "env: top=[$TOP] inner=$INNER workflow=${{ github.workflow }} job=$GITHUB_JOB"
          echo "secret: ${{ secrets.token }} other=[${{ secrets.OTHER }}]"
          echo "artifact=app-${{ inputs.os }}" >> $GITHUB_OUTPUT
  test:
    needs: compile
    runs-on: x
    container: localhost/busybox:test
    steps:
      - run: echo "testing ${{ needs.compile.outputs.artifact }}"
)";

// A workflow in a remote repository that calls one next to it (local to
// that repository), inheriting secrets all the way down.
const char* const kRemoteOuter = R"(on:
  workflow_call:
    inputs:
      n: {type: number, default: 7}
    outputs:
      deep:
        value: ${{ jobs.inner.outputs.said }}
jobs:
  inner:
    uses: ./.github/workflows/inner.yml
    with:
      word: n=${{ inputs.n }}
    secrets: inherit
)";

std::string remote_inner(const std::string& greeting) {
  return R"(on:
  workflow_call:
    inputs:
      word: {type: string}
    outputs:
      said:
        value: ${{ jobs.say.outputs.w }}
jobs:
  say:
    runs-on: x
    container: localhost/busybox:test
    outputs:
      w: ${{ steps.s.outputs.w }}
    steps:
      - id: s
        run: |
          echo ")" +
         greeting + R"( word=${{ inputs.word }} secret=${{ secrets.S }}"
          echo "w=${{ inputs.word }}" >> $GITHUB_OUTPUT
)";
}

const char* const kRemoteCaller = R"(jobs:
  remote:
    uses: octo/shared/.github/workflows/outer.yml@v1
    with: {n: 3}
    secrets: inherit
  show:
    needs: remote
    runs-on: x
    container: localhost/busybox:test
    steps:
      - run: echo "deep=${{ needs.remote.outputs.deep }}"
)";

class ReusableWorkflowsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!is_root()) GTEST_SKIP() << "needs root: containers use mount/pid/net namespaces";
    ASSERT_FALSE(home_.import_busybox("localhost/busybox:test").empty());
  }

  std::string git(const fs::path& repo, std::vector<std::string> args) {
    args.insert(args.begin(), {"/usr/bin/git", "-C", repo.string()});
    auto r = run_process(args, {"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@e", "GIT_COMMITTER_NAME=t",
                                "GIT_COMMITTER_EMAIL=t@e", "GIT_AUTHOR_DATE=2020-01-01T00:00:00Z",
                                "GIT_COMMITTER_DATE=2020-01-01T00:00:00Z"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    while (!r.out.empty() && r.out.back() == '\n') r.out.pop_back();
    return r.out;
  }
  // A git repository at `dir` with `files` committed on main.
  fs::path repo(const std::string& dir, const std::map<std::string, std::string>& files) {
    fs::path root = home_.root() / dir;
    fs::create_directories(root);
    git(root, {"init", "-q", "-b", "main"});
    commit(root, files, "one");
    return root;
  }
  void commit(const fs::path& root, const std::map<std::string, std::string>& files,
              const std::string& message) {
    for (const auto& [name, text] : files) {
      fs::create_directories((root / name).parent_path());
      std::ofstream(root / name) << text;
    }
    git(root, {"add", "-A"});
    git(root, {"commit", "-q", "-m", message});
  }
  // The forge: octo/shared with outer.yml and inner.yml, tagged v1.
  fs::path forge(const std::string& greeting) {
    auto shared =
        repo("forge/octo/shared", {{".github/workflows/outer.yml", kRemoteOuter},
                                   {".github/workflows/inner.yml", remote_inner(greeting)}});
    git(shared, {"tag", "v1"});
    return home_.root() / "forge";
  }
  Json record(const std::string& run_id) {
    auto text = read_file(home_.home() / "runs" / run_id / "record.json");
    EXPECT_TRUE(text);
    return text ? Json::parse(*text) : Json::object();
  }
  static Json job(const Json& rec, const std::string& name) {
    for (const auto& j : rec["jobs"])
      if (j["name"] == name) return j;
    return Json::object();
  }
  static std::string run_id_of(const ProcessOutput& r) {
    std::smatch m;
    std::regex re("run (\\S+) recorded in");
    return std::regex_search(r.err, m, re) ? std::string(m[1]) : std::string();
  }

  LockstepHome home_;
};

TEST_F(ReusableWorkflowsTest, LocalCallWithMatrixTypedInputsSecretsAndOutputs) {
  auto proj = repo(
      "proj", {{".github/workflows/ci.yml", kCaller}, {".github/workflows/build.yml", kBuild}});
  auto wf = (proj / ".github/workflows/ci.yml").string();

  auto list = home_.lockstep({"run", wf, "--list"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(list.out,
            "setup\ncall (linux) / compile\ncall (linux) / test\ncall (bsd) / compile\n"
            "call (bsd) / test\nafter\n");

  auto r = home_.lockstep({"run", wf, "--secret", "TOKEN=hunter2", "--secret", "OTHER=nope"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // Inputs typed as declared: a string, a boolean, a number, a string made
  // from needs outputs, and a default evaluated over github.
  EXPECT_TRUE(has(r.out,
                  "[call (linux) / compile] types: os=\"linux\" fast=true level=3 "
                  "version=\"1.5\" mode=CI-default"))
      << r.out;
  EXPECT_TRUE(has(r.out, "[call (bsd) / compile] types: os=\"bsd\" fast=true level=3"));
  // The caller's workflow env does not reach the called workflow; its own
  // does; github is the caller's.
  EXPECT_TRUE(has(r.out,
                  "[call (bsd) / compile] env: top=[] inner=inner-env workflow=CI "
                  "job=compile"))
      << r.out;
  // Only the secret passed reaches it, masked.
  EXPECT_TRUE(has(r.out, "[call (linux) / compile] secret: *** other=[]")) << r.out;
  EXPECT_FALSE(has(r.out, "hunter2")) << r.out;
  // The called workflow's jobs need each other within their call.
  EXPECT_TRUE(has(r.out, "[call (linux) / test] testing app-linux")) << r.out;
  EXPECT_TRUE(has(r.out, "[call (bsd) / test] testing app-bsd")) << r.out;
  // needs.call: the called workflows' result, and each output from the last
  // call that set it (bsd's call leaves it empty).
  EXPECT_TRUE(has(r.out, "[after] result=success built=app-linux")) << r.out;
  EXPECT_TRUE(has(r.out, "call (bsd) / test       -       success")) << r.out;

  std::string id = run_id_of(r);
  ASSERT_FALSE(id.empty()) << r.err;
  Json rec = record(id);
  Json c = job(rec, "call (linux) / compile");
  EXPECT_EQ(c["id"], "compile");
  EXPECT_EQ(c["call"]["callers"], Json::array({"call"}));
  EXPECT_EQ(c["call"]["workflow"], "./.github/workflows/build.yml");
  // The environment hash covers the called file, at the run's commit.
  const Json& doc = c["env_doc"]["workflow_call"];
  EXPECT_EQ(doc["path"], ".github/workflows/build.yml");
  EXPECT_EQ(doc["commit"], git(proj, {"rev-parse", "HEAD"}));
  EXPECT_EQ(doc["digest"], sha256_of(std::string(kBuild)).str());
  EXPECT_EQ(doc["inputs"]["level"], 3);
  EXPECT_EQ(doc["inputs"]["fast"], true);
  EXPECT_FALSE(job(rec, "setup")["env_doc"].contains("workflow_call"));
  // The secrets a called job sees are its call's: the hash names only those.
  EXPECT_TRUE(c["env_doc"]["secrets"].contains("token"));
  EXPECT_FALSE(c["env_doc"]["secrets"].contains("OTHER"));

  // --job accepts the calling job's id (and runs what it needs).
  auto one = home_.lockstep({"run", wf, "--job", "call", "--secret", "TOKEN=x", "--list"});
  ASSERT_EQ(one.exit_code, 0) << one.err;
  EXPECT_EQ(one.out,
            "setup\ncall (linux) / compile\ncall (linux) / test\ncall (bsd) / compile\n"
            "call (bsd) / test\n");

  // The called workflow is read at the run's commit: an uncommitted edit
  // is not used without --dirty, and is with it.
  std::string edited = kBuild;
  edited.replace(edited.find("echo 'types:"), 12, "echo 'EDITED:");
  std::ofstream(proj / ".github/workflows/build.yml") << edited;
  auto clean = home_.lockstep({"run", wf, "--job", "call", "--secret", "TOKEN=x"});
  ASSERT_EQ(clean.exit_code, 0) << clean.out << clean.err;
  EXPECT_TRUE(has(clean.out, "types: os=")) << clean.out;
  EXPECT_FALSE(has(clean.out, "EDITED:")) << clean.out;
  auto dirty = home_.lockstep({"run", wf, "--job", "call", "--secret", "TOKEN=x", "--dirty"});
  ASSERT_EQ(dirty.exit_code, 0) << dirty.out << dirty.err;
  EXPECT_TRUE(has(dirty.out, "EDITED: os=")) << dirty.out;

  // Replaying the run (the dirty one: its patch carries the edit) reaches
  // the same hashes.
  auto replay = home_.lockstep({"replay", run_id_of(dirty), "--secret", "TOKEN=x"});
  EXPECT_EQ(replay.exit_code, 0) << replay.out << replay.err;
  EXPECT_TRUE(has(replay.out, "5 of 5 environment hashes match the record")) << replay.out;
  auto only = home_.lockstep({"replay", id, "--job", "call (bsd) / test", "--secret",
                              "TOKEN=hunter2", "--secret", "OTHER=nope"});
  EXPECT_EQ(only.exit_code, 0) << only.out << only.err;
  EXPECT_TRUE(has(only.out, "1 of 1 environment hashes match the record")) << only.out;
}

TEST_F(ReusableWorkflowsTest, OutsideARepositoryLocalPathsAreUnderTheProjectDirectory) {
  home_.write("plain/.github/workflows/ci.yml", R"(jobs:
  c:
    uses: ./.github/workflows/lib.yml
    with: {who: files}
)");
  home_.write("plain/.github/workflows/lib.yml", R"(on:
  workflow_call:
    inputs:
      who: {type: string}
jobs:
  j:
    runs-on: x
    container: localhost/busybox:test
    steps:
      - run: echo "hello ${{ inputs.who }}"
)");
  auto wf = home_.root() / "plain/.github/workflows/ci.yml";
  auto r = home_.lockstep({"run", wf.string()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "[c / j] hello files")) << r.out;
  std::string id = run_id_of(r);
  Json rec = record(id);
  EXPECT_TRUE(rec["workflow"]["called_files"].contains(".github/workflows/lib.yml")) << rec;
  EXPECT_EQ(job(rec, "c / j")["env_doc"]["workflow_call"]["commit"], "");

  // The record alone replays it: the called file comes with it.
  fs::remove_all(home_.root() / "plain");
  auto replay = home_.lockstep({"replay", id});
  EXPECT_EQ(replay.exit_code, 0) << replay.out << replay.err;
  EXPECT_TRUE(has(replay.out, "1 of 1 environment hashes match the record")) << replay.out;
}

TEST_F(ReusableWorkflowsTest, RemoteWorkflowNestedTwoDeepPinnedByLockAndReplayedElsewhere) {
  auto forge_dir = forge("version-one");
  auto proj = repo("proj", {{".github/workflows/ci.yml", kRemoteCaller}});
  auto wf = (proj / ".github/workflows/ci.yml").string();
  const std::string url = forge_dir.string();

  auto r = home_.lockstep({"run", wf, "--actions-url", url, "--secret", "S=swordfish"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "[remote / inner / say] version-one word=n=3 secret=***")) << r.out;
  EXPECT_TRUE(has(r.out, "[show] deep=n=3")) << r.out;
  EXPECT_FALSE(has(r.out, "swordfish")) << r.out;
  Json rec = record(run_id_of(r));
  Json say = job(rec, "remote / inner / say");
  EXPECT_EQ(say["call"]["callers"], Json::array({"remote", "inner"}));
  EXPECT_EQ(say["call"]["workflow"], "octo/shared/.github/workflows/inner.yml@v1");
  const std::string v1 = git(forge_dir / "octo/shared", {"rev-parse", "v1"});
  EXPECT_EQ(say["env_doc"]["workflow_call"]["commit"], v1);
  bool input = false;
  for (const auto& in : say["inputs"])
    input = input || (in["kind"] == "workflow" && in["reference"] == "octo/shared@v1" &&
                      in["resolved"] == v1);
  EXPECT_TRUE(input) << say["inputs"];

  // lock pins the repository; the tag moves; the lock is stale, and a
  // frozen run still runs the locked commit.
  auto lock = home_.lockstep({"lock", wf, "--actions-url", url});
  ASSERT_EQ(lock.exit_code, 0) << lock.out << lock.err;
  auto text = read_file(proj / "lockstep.lock");
  ASSERT_TRUE(text);
  Json locked = Json::parse(*text);
  ASSERT_EQ(locked["actions"].size(), 1u) << locked;
  EXPECT_EQ(locked["actions"][0]["repository"], "octo/shared");
  EXPECT_EQ(locked["actions"][0]["commit"], v1);
  commit(forge_dir / "octo/shared", {{".github/workflows/inner.yml", remote_inner("version-two")}},
         "two");
  git(forge_dir / "octo/shared", {"tag", "-f", "v1"});
  const std::string v1_now = git(forge_dir / "octo/shared", {"rev-parse", "v1"});
  auto check = home_.lockstep({"lock", wf, "--check", "--actions-url", url});
  EXPECT_EQ(check.exit_code, 1) << check.out << check.err;
  EXPECT_TRUE(
      has(check.err, "stale: action 'octo/shared@v1' now " + v1_now + " (locked " + v1 + ")"))
      << check.err;
  auto frozen =
      home_.lockstep({"run", wf, "--frozen", "--actions-url", url, "--secret", "S=swordfish"});
  ASSERT_EQ(frozen.exit_code, 0) << frozen.out << frozen.err;
  EXPECT_TRUE(has(frozen.out, "version-one word=n=3")) << frozen.out;
  const std::string frozen_id = run_id_of(frozen);

  // A lock that does not pin it: --frozen refuses before anything runs.
  locked["actions"] = Json::array();
  std::ofstream(proj / "unpinned.lock") << locked.dump(2);
  auto refused = home_.lockstep(
      {"run", wf, "--frozen", "--lock", (proj / "unpinned.lock").string(), "--actions-url", url});
  EXPECT_EQ(refused.exit_code, 2) << refused.out << refused.err;
  EXPECT_TRUE(has(refused.err,
                  "ci.yml:3:11: job 'remote': --frozen: reusable workflow "
                  "'octo/shared/.github/workflows/outer.yml@v1' is not pinned by lockstep.lock"))
      << refused.err;
  EXPECT_FALSE(has(refused.out, "[show]")) << refused.out;

  // Exported, the run replays on a fresh state dir with the forge gone.
  fs::path bundle = home_.root() / "bundle";
  auto e = home_.lockstep({"runs", "export", frozen_id, bundle.string()});
  ASSERT_EQ(e.exit_code, 0) << e.out << e.err;
  EXPECT_TRUE(fs::exists(bundle / "actions" / v1 / ".github/workflows/inner.yml"));
  fs::rename(forge_dir, home_.root() / "forge-gone");
  LockstepHome fresh;
  // The same key for secret hashes as the recording host (a CI host and a
  // laptop share it through LOCKSTEP_SECRET_HASH_KEY; here, the key file).
  fs::create_directories(fresh.home());
  fs::copy_file(home_.home() / "secret-hash.key", fresh.home() / "secret-hash.key");
  auto replay = fresh.lockstep({"replay", (bundle / "record.json").string(), "--actions-url", url,
                                "--secret", "S=swordfish"});
  EXPECT_EQ(replay.exit_code, 0) << replay.out << replay.err;
  EXPECT_TRUE(has(replay.out, "2 of 2 environment hashes match the record")) << replay.out;
  EXPECT_TRUE(has(replay.out, "version-one word=n=3")) << replay.out;
}

TEST_F(ReusableWorkflowsTest, BadCallsAreOneLineErrorsBeforeAnythingRuns) {
  auto expect_error = [&](const std::map<std::string, std::string>& files,
                          const std::string& message) {
    static int n = 0;
    auto proj = repo("bad" + std::to_string(++n), files);
    auto r = home_.lockstep({"run", (proj / ".github/workflows/ci.yml").string()});
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    // One line (then the quoted source line): the caller's file is named as given.
    auto first = r.err.substr(0, r.err.find('\n'));
    EXPECT_TRUE(first.rfind("lockstep: error: ", 0) == 0) << r.err;
    EXPECT_TRUE(has(first, message)) << r.err;
    EXPECT_EQ(r.out, "") << r.out;
  };
  const std::string lib = R"(on:
  workflow_call:
    inputs:
      flag: {type: boolean}
jobs:
  j: {runs-on: x, container: localhost/busybox:test, steps: [{run: "true"}]}
)";
  expect_error(
      {{".github/workflows/ci.yml", "jobs:\n  c:\n    uses: ./.github/workflows/p.yml\n"},
       {".github/workflows/p.yml", "on: push\njobs:\n  j: {runs-on: x, steps: [{run: x}]}\n"}},
      ".github/workflows/ci.yml:3:11: job 'c' calls ./.github/workflows/p.yml, which is "
      "not a reusable workflow: it has no 'on: workflow_call'");
  expect_error({{".github/workflows/ci.yml", "jobs:\n  c:\n    uses: ./.github/workflows/a.yml\n"},
                {".github/workflows/a.yml",
                 "on: workflow_call\njobs:\n  b:\n    uses: ./.github/workflows/b.yml\n"},
                {".github/workflows/b.yml",
                 "on: workflow_call\njobs:\n  a:\n    uses: ./.github/workflows/a.yml\n"}},
               "./.github/workflows/b.yml:4:11: reusable workflow cycle: ./.github/workflows/a.yml "
               "-> ./.github/workflows/b.yml -> ./.github/workflows/a.yml");
  expect_error({{".github/workflows/ci.yml",
                 "jobs:\n  c:\n    uses: ./.github/workflows/l.yml\n    with: {flag: 'no'}\n"},
                {".github/workflows/l.yml", lib}},
               ".github/workflows/ci.yml:4:12: input 'flag' of ./.github/workflows/l.yml expects a "
               "boolean, got 'no' (a string)");
  expect_error({{".github/workflows/ci.yml",
                 "jobs:\n  c:\n    uses: ./.github/workflows/l.yml\n    with: {flags: true}\n"},
                {".github/workflows/l.yml", lib}},
               ".github/workflows/ci.yml:4:12: input 'flags' is not defined in "
               "./.github/workflows/l.yml (did you mean 'flag'?)");
  expect_error({{".github/workflows/ci.yml",
                 "jobs:\n  c:\n    uses: ./.github/workflows/l.yml\n    container: alpine\n"},
                {".github/workflows/l.yml", lib}},
               ".github/workflows/ci.yml:4:5: 'container' is not allowed in job 'c', which calls a "
               "reusable workflow");
  expect_error(
      {{".github/workflows/ci.yml", "jobs:\n  c:\n    uses: ./.github/workflows/none.yml\n"}},
      ".github/workflows/ci.yml:3:11: job 'c': reusable workflow "
      "'./.github/workflows/none.yml': no such file at commit");
}

TEST_F(ReusableWorkflowsTest, AWrongTypeKnownOnlyAtRunTimeFailsTheCallNamingIt) {
  auto proj = repo("proj", {{".github/workflows/ci.yml", R"(jobs:
  setup:
    runs-on: x
    container: localhost/busybox:test
    outputs:
      on: ${{ steps.s.outputs.on }}
    steps:
      - id: s
        run: echo "on=true" >> $GITHUB_OUTPUT
  c:
    needs: setup
    uses: ./.github/workflows/l.yml
    with:
      flag: ${{ needs.setup.outputs.on }}
  skipped:
    if: false
    uses: ./.github/workflows/l.yml
)"},
                            {".github/workflows/l.yml", R"(on:
  workflow_call:
    inputs:
      flag: {type: boolean}
jobs:
  j: {runs-on: x, container: localhost/busybox:test, steps: [{run: "echo ran"}]}
)"}});
  auto r = home_.lockstep({"run", (proj / ".github/workflows/ci.yml").string()});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(has(r.err, "lockstep: error: job c: " + proj.string() +
                             "/.github/workflows/ci.yml:14:7: input 'flag' of "
                             "./.github/workflows/l.yml expects a boolean, got 'true' (a string)"))
      << r.err;
  EXPECT_FALSE(has(r.out, "ran")) << r.out;
  EXPECT_TRUE(has(r.out, "skipped  -       skipped")) << r.out;
}

}  // namespace
}  // namespace lockstep::testing
