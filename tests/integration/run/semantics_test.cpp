// GitHub's semantics beyond what one workflow's output shows (those are in
// tests/integration/compat): the github context `lock` and `run` share,
// conditional services in the lock, named volumes in the hash and in
// `cache gc`, and multi-line secrets that never reach the record.
#include <gtest/gtest.h>

#include <fstream>

#include "common/fs.hpp"
#include "common/json.hpp"
#include "tests/support/lockstep_process.hpp"

namespace lockstep::testing {
namespace {
namespace fs = std::filesystem;

int git(const fs::path& dir, std::vector<std::string> args) {
  args.insert(args.begin(), {"/usr/bin/git", "-C", dir.string()});
  return run_process(args,
                     {"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t",
                      "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_GLOBAL=/dev/null"})
      .exit_code;
}

bool has(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class SemanticsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!is_root()) GTEST_SKIP() << "needs root: containers use mount/pid/net namespaces";
    ASSERT_FALSE(home_.import_busybox("localhost/busybox:test").empty()) << "image import failed";
  }
  // A repository holding `workflow` as .github/workflows/ci.yml, with
  // `remote` as origin (none when empty).
  fs::path repo(const std::string& workflow, const std::string& remote) {
    fs::path dir = home_.root() / "proj";
    home_.write("proj/.github/workflows/ci.yml", workflow);
    EXPECT_EQ(git(dir, {"init", "-q", "-b", "main"}), 0);
    if (!remote.empty()) {
      EXPECT_EQ(git(dir, {"remote", "add", "origin", remote}), 0);
    }
    EXPECT_EQ(git(dir, {"add", "-A"}), 0);
    EXPECT_EQ(git(dir, {"commit", "-q", "-m", "ci"}), 0);
    return dir;
  }
  ProcessOutput in(const fs::path& dir, std::vector<std::string> args) {
    args.insert(args.begin(), LOCKSTEP_BINARY);
    return run_process(args, {"LOCKSTEP_HOME=" + home_.home().string()}, dir);
  }
  Json latest_record() {
    auto text = read_file(home_.latest_record());
    EXPECT_TRUE(text);
    return text ? Json::parse(*text) : Json();
  }
  LockstepHome home_;
};

// The image is named from the github context: `lock` resolves the same name
// `run` does (repository from the remote, actor and run number too), and a
// frozen run finds it pinned.
TEST_F(SemanticsTest, LockAndRunShareTheGithubContext) {
  auto r = home_.lockstep({"image", "import", (home_.root() / "busybox-rootfs").string(), "--tag",
                           "localhost/octo-org/tool:lockstep-1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  fs::path dir = repo(R"(on: push
jobs:
  build:
    runs-on: x
    container: localhost/${{ github.repository }}:${{ github.actor }}-${{ github.run_number }}
    steps:
      - run: echo "repository=$GITHUB_REPOSITORY owner=$GITHUB_REPOSITORY_OWNER"
)",
                      "git@github.com:octo-org/tool.git");
  r = in(dir, {"lock"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto lock = read_file(dir / "lockstep.lock");
  ASSERT_TRUE(lock);
  auto doc = Json::parse(*lock);
  ASSERT_EQ(doc["images"].size(), 1u) << *lock;
  EXPECT_EQ(doc["images"][0]["reference"], "localhost/octo-org/tool:lockstep-1");
  r = in(dir, {"run", "--frozen"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "repository=octo-org/tool owner=octo-org")) << r.out;
  // The record keeps the identity, for a replay on a host whose clone differs.
  auto rec = latest_record();
  EXPECT_EQ(rec["run_identity"]["repository"], "octo-org/tool");
  EXPECT_EQ(rec["run_identity"]["server_url"], "https://github.com");
}

// A service whose image is empty is not locked (and the lock does not fail).
TEST_F(SemanticsTest, LockLeavesOutServicesWithAnEmptyImage) {
  fs::path dir = repo(R"(on: push
jobs:
  test:
    runs-on: x
    container: localhost/busybox:test
    strategy:
      matrix:
        db: ['', busybox]
    services:
      db:
        image: ${{ matrix.db && format('localhost/{0}:test', matrix.db) || '' }}
    steps:
      - run: "true"
)",
                      "");
  auto r = in(dir, {"lock"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto doc = Json::parse(*read_file(dir / "lockstep.lock"));
  ASSERT_EQ(doc["images"].size(), 1u) << doc.dump();
  EXPECT_EQ(doc["images"][0]["reference"], "localhost/busybox:test");
}

// Named volumes: in the environment hash by name, kept after the run, listed
// by `cache du`, removed by `cache gc` once unused for the given age.
TEST_F(SemanticsTest, NamedVolumesAreHashedKeptAndCollected) {
  auto wf = home_.write("vol.yml", R"(on: push
jobs:
  v:
    runs-on: x
    container:
      image: localhost/busybox:test
      volumes:
        - build_cache:/cache
        - /scratch
    steps:
      - run: echo data > /cache/f && echo data > /scratch/f
)");
  auto r = home_.lockstep({"run", wf.string()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto rec = latest_record();
  Json named, anonymous;
  for (const auto& m : rec["jobs"][0]["env_doc"]["container"]["mounts"]) {
    if (m["target"] == "/cache") named = m;
    if (m["target"] == "/scratch") anonymous = m;
  }
  EXPECT_EQ(named, Json::parse(R"({"target":"/cache","read_only":false,"kind":"named-volume",
                                   "name":"build_cache"})"));
  EXPECT_EQ(anonymous, Json::parse(R"({"target":"/scratch","read_only":false,
                                       "kind":"anonymous-volume"})"));
  // The named volume stays; the anonymous one went with the job.
  EXPECT_TRUE(fs::exists(home_.home() / "volumes/build_cache/data/f"));
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(home_.home() / "runs", ec);
       !ec && it != fs::end(it); it.increment(ec))
    EXPECT_NE(it->path().filename(), "volumes") << it->path();
  r = home_.lockstep({"cache", "du"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "volumes      1")) << r.out;
  r = home_.lockstep({"cache", "gc"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(has(r.out, "removed volume")) << r.out;  // used just now
  r = home_.lockstep({"cache", "gc", "--volume-max-age", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(has(r.out, "removed volume build_cache")) << r.out;
  EXPECT_FALSE(fs::exists(home_.home() / "volumes/build_cache"));
  r = home_.lockstep({"cache", "gc", "--volume-max-age", "soon"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(
      r.err,
      "lockstep: error: --volume-max-age 'soon': expected a duration such as 30d, 12h or 0\n");
}

TEST_F(SemanticsTest, VolumeErrorsNameTheEntry) {
  auto wf = home_.write("vol.yml", R"(on: push
jobs:
  v:
    runs-on: x
    container:
      image: localhost/busybox:test
      volumes: ['relative/dir:/data']
    steps:
      - run: "true"
)");
  auto r = home_.lockstep({"run", wf.string()});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(has(r.err,
                  "container volume 'relative/dir:/data': 'relative/dir' is neither an absolute "
                  "host path nor a volume name ([a-zA-Z0-9][a-zA-Z0-9_.-]+)"))
      << r.err;
}

// A multi-line secret from a dotenv file: masked line by line in the log,
// in no file of the run directory (record, logs, reports).
TEST_F(SemanticsTest, MultiLineSecretNeverReachesTheRecord) {
  home_.write("secrets.env",
              "KEY=\"-----BEGIN TEST KEY-----\nbGluZS10d28tb2YtdGhlLWtleQ==\n"
              "-----END TEST KEY-----\"\n");
  auto wf = home_.write("s.yml", R"WF(on: push
jobs:
  s:
    runs-on: x
    container: localhost/busybox:test
    outputs:
      leak: ${{ steps.o.outputs.line }}
    steps:
      - id: o
        env:
          KEY: ${{ secrets.KEY }}
        run: |
          echo "$KEY"
          echo "line=$(echo "$KEY" | sed -n 2p)" >> "$GITHUB_OUTPUT"
          echo "${{ secrets.KEY }}" | sed -n 2p
      - run: echo "::set-env name=X::$(echo '${{ secrets.KEY }}' | sed -n 2p)"
        continue-on-error: true
)WF");
  auto r = home_.lockstep(
      {"run", wf.string(), "--secret-file", (home_.root() / "secrets.env").string()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  for (const char* line :
       {"-----BEGIN TEST KEY-----", "bGluZS10d28tb2YtdGhlLWtleQ==", "-----END TEST KEY-----"}) {
    EXPECT_FALSE(has(r.out, line)) << r.out;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(home_.home() / "runs", ec);
         !ec && it != fs::end(it); it.increment(ec)) {
      if (!it->is_regular_file()) continue;
      auto text = read_file(it->path());
      ASSERT_TRUE(text);
      EXPECT_FALSE(has(*text, line)) << line << " in " << it->path();
    }
  }
  EXPECT_TRUE(has(r.out, "Skip output 'leak' since it may contain secret.")) << r.out;
}

// Nothing under $LOCKSTEP_HOME holds a secret after a run: not the step
// scripts, env and output files of _temp, the logs, the record, the reports
// or the step summary; nor the secret's lines or its base64 (both masked in
// the log, as GitHub's runner masks them).
TEST_F(SemanticsTest, NoSecretIsLeftAnywhereInTheStateDir) {
  const std::string token = "tok-9f3c1e7a-\"quoted\"-value";
  const std::string key_lines[] = {"-----BEGIN TEST KEY-----", "a2V5LWxpbmUtdHdvLW9mLWl0",
                                   "-----END TEST KEY-----"};
  home_.write("secrets.env", "KEY=\"" + key_lines[0] + "\n" + key_lines[1] + "\n" + key_lines[2] +
                                 "\"\nTOKEN='" + token + "'\n");
  auto json = home_.root() / "report.json";
  auto junit = home_.root() / "junit.xml";
  auto wf = home_.write("s.yml", R"WF(on: push
jobs:
  s:
    runs-on: x
    container: localhost/busybox:test
    env:
      JOB_TOKEN: ${{ secrets.TOKEN }}
    steps:
      - env:
          KEY: ${{ secrets.KEY }}
        run: |
          echo 'token ${{ secrets.TOKEN }}'
          printf '%s' "$JOB_TOKEN" | base64
          printf 'xy%s' "$JOB_TOKEN" | base64
          echo "$KEY" | base64
          echo "T=$JOB_TOKEN" >> "$GITHUB_ENV"
          echo "out=$JOB_TOKEN" >> "$GITHUB_OUTPUT"
          echo "summary $JOB_TOKEN" >> "$GITHUB_STEP_SUMMARY"
          echo "$KEY" > key.pem
      - run: |
          echo "again $T"
          cat key.pem
          rm key.pem
)WF");
  auto r =
      home_.lockstep({"run", wf.string(), "--secret-file", (home_.root() / "secrets.env").string(),
                      "--report", "junit=" + junit.string(), "--report", "json=" + json.string()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto b64 = [](const std::string& v) {
    auto p = run_process({"/bin/sh", "-c", "printf '%s' \"$V\" | base64 -w0"}, {"V=" + v});
    return p.out;
  };
  std::vector<std::string> forms = {token, b64(token), b64("xy" + token).substr(4, 20)};
  for (const auto& l : key_lines) forms.push_back(l);
  forms.push_back(
      b64(key_lines[0] + "\n" + key_lines[1] + "\n" + key_lines[2] + "\n").substr(0, 40));
  EXPECT_TRUE(has(r.out, "token ***")) << r.out;
  EXPECT_TRUE(has(r.out, "again ***")) << r.out;
  int files = 0;
  for (const auto& form : forms) {
    ASSERT_GE(form.size(), 8u) << form;
    EXPECT_FALSE(has(r.out + r.err, form)) << form << " in the output:\n" << r.out;
    // The state dir, the reports and everything else the test made but the
    // secrets file itself.
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(home_.root(), ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      if (!it->is_regular_file(ec) || it->path() == home_.root() / "secrets.env") continue;
      ++files;
      auto text = read_file(it->path());
      ASSERT_TRUE(text) << it->path();
      EXPECT_FALSE(has(*text, form)) << form << " in " << it->path();
    }
    ASSERT_FALSE(ec) << ec.message();
  }
  EXPECT_GT(files, 0);
}

TEST_F(SemanticsTest, BadEnvFileIsOneLineNamingFileAndLine) {
  auto wf = home_.write("e.yml",
                        "on: push\njobs:\n  e:\n    runs-on: x\n    container: "
                        "localhost/busybox:test\n    steps: [{run: 'true'}]\n");
  auto env = home_.write("vars.env", "A=1\nB=\"open\n\n");
  auto r = home_.lockstep({"run", wf.string(), "--env-file", env.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "lockstep: error: " + env.string() +
                       ":2: the value of B opens a double-quoted string that never closes\n");
  r = home_.lockstep({"run", wf.string(), "--env-file", (home_.root() / "none.env").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(has(r.err, "--env-file")) << r.err;
}

}  // namespace
}  // namespace lockstep::testing
