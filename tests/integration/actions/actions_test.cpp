// Actions from git as GitHub runs them: JavaScript actions on lockstep's own
// Node.js runtime (in an image without node, busybox, and in a glibc image),
// composite actions, Docker actions, local actions, bad input, pinning and
// replay without the network. Every repository is a real git repository the
// test makes in a forge directory that --actions-url points at.
#include <unistd.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "tests/integration/actions/forge.hpp"

namespace lockstep::testing {
namespace {

namespace fs = std::filesystem;

class ActionsIt : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!is_root()) GTEST_SKIP() << "needs root: containers use mount/pid/net namespaces";
    if (!Forge::have_npm_modules())
      GTEST_SKIP() << "needs @actions/core in " << LOCKSTEP_NPM_DIR
                   << " (scripts/setup.sh installs it from the npm registry)";
    ASSERT_FALSE(home_.import_busybox("localhost/busybox:test").empty());
  }

  ProcessOutput run(const std::string& yaml, std::vector<std::string> extra = {},
                    const std::string& file = "wf/ci.yml") {
    auto wf = home_.write(file, yaml);
    extra.insert(extra.begin(), {"run", wf.string(), "--actions-url", forge_.root().string()});
    return home_.lockstep(extra);
  }

  nlohmann::json record() const {
    auto text = read_file(home_.latest_record());
    return text ? nlohmann::json::parse(*text) : nlohmann::json();
  }

  std::string import_glibc() {
    auto fsdir = home_.root() / "glibc-rootfs";
    auto r = run_process({"/bin/bash",
                          std::string(LOCKSTEP_SOURCE_DIR) + "/tests/support/glibc-rootfs.sh",
                          fsdir.string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto i = home_.lockstep({"image", "import", fsdir.string(), "--tag", "localhost/glibc:test"});
    EXPECT_EQ(i.exit_code, 0) << i.err;
    return "localhost/glibc:test";
  }

  LockstepHome home_;
  Forge forge_{home_.root() / "forge"};
};

const char* kHelloWorkflow = R"(on: push
jobs:
  a:
    runs-on: ubuntu-latest
    container: IMAGE
    steps:
      - run: if command -v node >/dev/null; then echo "image has node"; else echo "image has no node"; fi
      - id: hi
        uses: octo/hello@v1
        with:
          who-to-greet: Mona
      - run: echo "said=${{ steps.hi.outputs.said }} greeted=$GREETED"
)";

std::string with_image(std::string yaml, const std::string& image) {
  yaml.replace(yaml.find("IMAGE"), 5, image);
  return yaml;
}

void expect_hello_ran(const ProcessOutput& r) {
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "[a] image has no node")) << r.out;
  EXPECT_TRUE(has(r.out, "[a] pre: octo/hello@v1")) << r.out;
  EXPECT_TRUE(has(r.out, "[a] main: Hello, Mona (v1) state=pre-state")) << r.out;
  EXPECT_TRUE(has(r.out, "[a] main: INPUT_WHO-TO-GREET=Mona")) << r.out;
  EXPECT_TRUE(has(r.out, "[a] main: action_path=/__w/_actions/octo/hello/v1")) << r.out;
  EXPECT_TRUE(has(r.out, "[a] said=Hello, Mona (v1) greeted=Mona")) << r.out;
  EXPECT_TRUE(has(r.out, "[a] post: pre-state main-state")) << r.out;
  // pre before the first step, post after the last.
  EXPECT_LT(at(r.out, "[a] pre: "), at(r.out, "[a] image has no node")) << r.out;
  EXPECT_LT(at(r.out, "[a] said="), at(r.out, "[a] post: ")) << r.out;
}

TEST_F(ActionsIt, JavaScriptActionRunsInAnImageWithoutNodeWithPrePostStateAndOutputs) {
  std::string commit = forge_.commit("octo", "hello", hello_action(), "v1", true);
  auto r = run(with_image(kHelloWorkflow, "localhost/busybox:test"));
  expect_hello_ran(r);
  auto rec = record();
  const auto& job = rec["jobs"][0];
  bool action_input = false, runtime_input = false;
  for (const auto& in : job["inputs"]) {
    if (in["kind"] == "action" && in["reference"] == "octo/hello@v1" && in["resolved"] == commit)
      action_input = true;
    if (in["kind"] == "runtime" && in["resolved"].get<std::string>().rfind("sha256:", 0) == 0)
      runtime_input = true;
  }
  EXPECT_TRUE(action_input) << job["inputs"].dump();
  EXPECT_TRUE(runtime_input) << job["inputs"].dump();
  EXPECT_EQ(job["pre_steps"][0]["name"], "Pre octo/hello@v1");
  EXPECT_EQ(job["post_steps"][0]["name"], "Post octo/hello@v1");
  EXPECT_EQ(job["post_steps"][0]["outcome"], "success");
  // The environment hashes cover the action's commit and the runtime.
  EXPECT_EQ(job["env_doc"]["actions"]["octo/hello@v1"], commit);
  EXPECT_EQ(job["steps"][1]["env_doc"]["action"]["commit"], commit);
  EXPECT_EQ(job["steps"][1]["env_doc"]["action"]["kind"], "node");

  // Warm: the mirror is current, nothing else changes, and the hashes agree.
  auto again = run(with_image(kHelloWorkflow, "localhost/busybox:test"));
  expect_hello_ran(again);
  EXPECT_EQ(record()["jobs"][0]["env_hash"], job["env_hash"]);
}

TEST_F(ActionsIt, JavaScriptActionRunsInAGlibcImage) {
  forge_.commit("octo", "hello", hello_action(), "v1", true);
  auto r = run(with_image(kHelloWorkflow, import_glibc()));
  expect_hello_ran(r);
}

TEST_F(ActionsIt, PostStagesRunInReverseOrderAfterAFailure) {
  forge_.commit("octo", "hello", hello_action(), "v1", true);
  forge_.commit("octo", "bye",
                {{"action.yml", "name: Bye\nruns:\n  using: node20\n  main: m.js\n  post: p.js\n"},
                 {"m.js", "console.log('bye main')\n"},
                 {"p.js", "console.log('bye post')\n"}},
                "v1");
  auto r = run(R"(on: push
jobs:
  a:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - uses: octo/hello@v1
      - uses: octo/bye@v1
      - run: exit 3
      - run: echo never
)");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_FALSE(has(r.out, "[a] never")) << r.out;
  ASSERT_TRUE(has(r.out, "[a] bye post")) << r.out;
  ASSERT_TRUE(has(r.out, "[a] post: pre-state main-state")) << r.out;
  EXPECT_LT(at(r.out, "[a] bye post"), at(r.out, "[a] post: pre-state")) << r.out;
}

TEST_F(ActionsIt, CompositeActionWithInputsOutputsEnvAndANestedJavaScriptAction) {
  forge_.commit("octo", "hello", hello_action(), "v1", true);
  forge_.commit("octo", "combo", {{"action.yml", R"(name: Combo
inputs:
  who:
    required: true
  punctuation:
    default: '!'
outputs:
  final:
    value: ${{ steps.greet.outputs.said }}${{ inputs.punctuation }}
runs:
  using: composite
  steps:
    - run: echo "inner who=${{ inputs.who }} path=${{ github.action_path }} env=$OUTER actionpath=$GITHUB_ACTION_PATH"
      shell: sh
    - id: greet
      uses: octo/hello@v1
      with:
        who-to-greet: ${{ inputs.who }}
    - run: echo "inner sees ${{ steps.greet.outputs.said }}"
      shell: sh
    - if: ${{ failure() }}
      run: echo "inner failure branch"
      shell: sh
)"}},
                "v1");
  auto r = run(R"(on: push
jobs:
  a:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - id: c
        uses: octo/combo@v1
        with:
          who: Lisa
        env:
          OUTER: outer-env
      - run: echo "final=${{ steps.c.outputs.final }} outer=${OUTER:-unset}"
)");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out,
                  "[a] inner who=Lisa path=/__w/_actions/octo/combo/v1 env=outer-env "
                  "actionpath=/__w/_actions/octo/combo/v1"))
      << r.out;
  EXPECT_TRUE(has(r.out, "[a] main: Hello, Lisa (v1) state=")) << r.out;
  EXPECT_TRUE(has(r.out, "[a] inner sees Hello, Lisa (v1)")) << r.out;
  EXPECT_FALSE(has(r.out, "inner failure branch")) << r.out;
  EXPECT_TRUE(has(r.out, "[a] final=Hello, Lisa (v1)! outer=unset")) << r.out;
  // The nested action was resolved before the job started and is hashed.
  auto job = record()["jobs"][0];
  EXPECT_TRUE(job["env_doc"]["actions"].contains("octo/hello@v1")) << job["env_doc"].dump();
  EXPECT_TRUE(job["env_doc"]["actions"].contains("octo/combo@v1")) << job["env_doc"].dump();
}

TEST_F(ActionsIt, CompositeStepFailureFailsTheStepNamingIt) {
  forge_.commit("octo", "breaks", {{"action.yml", R"(name: Breaks
runs:
  using: composite
  steps:
    - name: first
      run: echo one
      shell: sh
    - name: boom
      run: exit 4
      shell: sh
    - name: third
      run: echo three
      shell: sh
    - name: cleanup
      if: failure()
      run: echo cleaning up
      shell: sh
)"}},
                "v1");
  auto r = run(R"(on: push
jobs:
  a:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - uses: octo/breaks@v1
)");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "[a] one")) << r.out;
  EXPECT_FALSE(has(r.out, "[a] three")) << r.out;
  EXPECT_TRUE(has(r.out, "[a] cleaning up")) << r.out;
  EXPECT_TRUE(has(r.err, "step 'boom' of octo/breaks@v1 failed: exit code 4")) << r.err;
}

TEST_F(ActionsIt, DockerStepAndDockerActionShareTheWorkspaceAndFiles) {
  forge_.commit("octo", "dock", {{"action.yml", R"yaml(name: Dock
inputs:
  name:
    required: true
runs:
  using: docker
  image: docker://localhost/busybox:test
  entrypoint: /bin/sh
  args:
    - -c
    - 'echo "in docker: $INPUT_NAME $MODE $0 ws=$GITHUB_WORKSPACE home=$HOME"; cat made.txt; echo "out=hi-$INPUT_NAME" >> "$GITHUB_OUTPUT"'
    - ${{ inputs.name }}
  env:
    MODE: mode-${{ inputs.name }}
)yaml"}},
                "v1");
  auto r = run(R"yaml(on: push
jobs:
  a:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - uses: docker://localhost/busybox:test
        with:
          entrypoint: /bin/sh
          args: -c "echo from-docker-step > /github/workspace/made.txt; echo wd=$(pwd)"
      - run: echo "job sees $(cat made.txt)"
      - id: d
        uses: octo/dock@v1
        with:
          name: Ada
      - run: echo "docker said ${{ steps.d.outputs.out }}"
)yaml");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "[a] wd=/github/workspace")) << r.out;
  EXPECT_TRUE(has(r.out, "[a] job sees from-docker-step")) << r.out;
  EXPECT_TRUE(has(r.out, "[a] in docker: Ada mode-Ada Ada ws=/github/workspace home=/github/home"))
      << r.out;
  EXPECT_TRUE(has(r.out, "[a] from-docker-step")) << r.out;
  EXPECT_TRUE(has(r.out, "[a] docker said hi-Ada")) << r.out;
  auto job = record()["jobs"][0];
  EXPECT_EQ(job["steps"][0]["env_doc"]["action"]["kind"], "docker");
}

TEST_F(ActionsIt, DockerActionPreAndPostEntrypoints) {
  forge_.commit("octo", "staged", {{"action.yml", R"(name: Staged
runs:
  using: docker
  image: docker://localhost/busybox:test
  pre-entrypoint: /bin/pwd
  entrypoint: /bin/echo
  args: [main-stage]
  post-entrypoint: /usr/bin/dirname
)"}},
                "v1");
  auto r = run(R"(on: push
jobs:
  a:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - run: echo first-step
      - uses: octo/staged@v1
      - run: echo last-step
)");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // Every stage gets the same args, as on GitHub: pre is `pwd main-stage`,
  // main `echo main-stage`, post `dirname main-stage`.
  ASSERT_TRUE(has(r.out, "[a] /github/workspace\n")) << r.out;
  ASSERT_TRUE(has(r.out, "[a] main-stage\n")) << r.out;
  ASSERT_TRUE(has(r.out, "[a] .\n")) << r.out;
  EXPECT_LT(at(r.out, "[a] /github/workspace\n"), at(r.out, "[a] first-step")) << r.out;
  EXPECT_LT(at(r.out, "[a] last-step"), at(r.out, "[a] .\n")) << r.out;
  auto job = record()["jobs"][0];
  EXPECT_EQ(job["pre_steps"][0]["name"], "Pre octo/staged@v1");
  EXPECT_EQ(job["post_steps"][0]["name"], "Post octo/staged@v1");
}

TEST_F(ActionsIt, DockerfileActionIsBuiltOnceFromItsBaseAndRuns) {
  if (::access("/usr/bin/buildah", X_OK) != 0)
    GTEST_SKIP() << "needs buildah (scripts/setup.sh installs it)";
  forge_.commit("octo", "built",
                {{"action.yml", R"(name: Built
inputs:
  who: {default: nobody}
runs:
  using: docker
  image: Dockerfile
  args: ['${{ inputs.who }}']
)"},
                 {"Dockerfile",
                  "FROM localhost/busybox:test AS base\n"
                  "RUN echo made-at-build > /made.txt\n"
                  "COPY entry.sh /entry.sh\n"
                  "ENTRYPOINT [\"/bin/sh\", \"/entry.sh\"]\n"},
                 {"entry.sh", "echo \"built image says $(cat /made.txt) to $1\"\n"}},
                "v1");
  const char* yaml = R"(on: push
jobs:
  a:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - uses: octo/built@v1
        with:
          who: Grace
)";
  auto r = run(yaml);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "[a] built image says made-at-build to Grace")) << r.out;
  EXPECT_TRUE(has(r.out, "[a] built localhost/lockstep-actions/octo/built:")) << r.out;
  auto job = record()["jobs"][0];
  std::string digest = job["steps"][0]["env_doc"]["action"]["image_digest"];
  EXPECT_EQ(digest.rfind("sha256:", 0), 0u) << job.dump();
  // The second run finds the image it built: same inputs, same image.
  r = run(yaml);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "[a] using localhost/lockstep-actions/octo/built:")) << r.out;
  EXPECT_EQ(record()["jobs"][0]["steps"][0]["env_doc"]["action"]["image_digest"], digest);
}

TEST_F(ActionsIt, DockerfileWithABuildArgumentInFromIsAOneLineError) {
  forge_.commit("octo", "argful",
                {{"action.yml", "name: A\nruns:\n  using: docker\n  image: Dockerfile\n"},
                 {"Dockerfile", "ARG V=1\nFROM busybox:${V}\n"}},
                "v1");
  auto r = run(R"(on: push
jobs:
  a:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - uses: octo/argful@v1
)");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(has(r.err,
                  "step 'octo/argful@v1': action 'octo/argful@v1': Dockerfile line 2: "
                  "FROM busybox:${V} uses a build argument, which lockstep does not "
                  "support in action Dockerfiles"))
      << r.err;
}

TEST_F(ActionsIt, LocalActionFromTheCheckedOutRepository) {
  // The workflow's own repository holds the action.
  fs::path repo = home_.root() / "project";
  home_.write("project/.github/actions/greet/action.yml", R"(name: Greet
inputs:
  who:
    default: ${{ github.job }}
runs:
  using: node20
  main: index.js
)");
  home_.write(
      "project/.github/actions/greet/index.js",
      "console.log(`local action greets ${process.env.INPUT_WHO} from ${process.cwd()}`)\n");
  home_.write("project/.github/workflows/ci.yml", R"(on: push
jobs:
  build:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - uses: actions/checkout@v4
      - uses: ./.github/actions/greet
)");
  Forge::git(repo, {"init", "-q", "-b", "main"});
  Forge::git(repo, {"add", "-A"});
  Forge::git(repo, {"commit", "-q", "-m", "project"});
  auto r = home_.lockstep({"run", (repo / ".github/workflows/ci.yml").string()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "[build] local action greets build from /__w/project/project")) << r.out;
}

struct BadAction {
  const char* name;
  const char* uses;
  const char* with;  // YAML for `with:` or ""
  const char* expected;
};

TEST_F(ActionsIt, BadInputIsOneLineNamingTheStepAndTheAction) {
  forge_.commit("octo", "hello", hello_action(), "v1", true);
  forge_.commit("octo", "empty", {{"README", "nothing here\n"}}, "v1");
  forge_.commit("octo", "broken",
                {{"action.yml", "name: Broken\nruns:\n  using: node20\n  mian: x.js\n"}}, "v1");
  forge_.commit("octo", "weird",
                {{"action.yml", "name: Weird\nruns:\n  using: python3\n  main: x.py\n"}}, "v1");
  forge_.commit("octo", "needy",
                {{"action.yml",
                  "name: Needy\ninputs:\n  token:\n    required: true\nruns:\n  using: node20\n"
                  "  main: x.js\n"},
                 {"x.js", "\n"}},
                "v1");
  const BadAction cases[] = {
      {"missing repository", "octo/missing@v1", "",
       "step 'octo/missing@v1': action 'octo/missing@v1': cannot fetch repository"},
      {"missing ref", "octo/hello@v9", "",
       "step 'octo/hello@v9': action 'octo/hello@v9': unknown ref 'v9'"},
      {"no metadata", "octo/empty@v1", "",
       "step 'octo/empty@v1': action 'octo/empty@v1' has no action.yml or action.yaml"},
      {"invalid metadata", "octo/broken@v1", "",
       "step 'octo/broken@v1': octo/broken@v1/action.yml:4:3: unknown key 'mian' in 'runs' (did "
       "you mean 'main'?)"},
      {"unknown using", "octo/weird@v1", "",
       "step 'octo/weird@v1': octo/weird@v1/action.yml:3:10: unknown 'using: python3' (expected "
       "node16, node20, node24, composite or docker)"},
      {"missing required input", "octo/needy@v1", "",
       "step 'octo/needy@v1': input 'token' is required by action 'octo/needy@v1' and not given"},
  };
  for (const auto& c : cases) {
    std::string yaml = std::string(R"(on: push
jobs:
  a:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - run: echo first
      - uses: )") + c.uses +
                       "\n" + c.with;
    auto r = run(yaml);
    EXPECT_EQ(r.exit_code, 1) << c.name << "\n" << r.out << r.err;
    // One line on stderr carries it.
    std::string line;
    for (size_t pos = 0; pos < r.err.size();) {
      size_t nl = r.err.find('\n', pos);
      std::string l = r.err.substr(pos, nl - pos);
      if (l.rfind("lockstep: error: ", 0) == 0) line = l;
      pos = nl == std::string::npos ? r.err.size() : nl + 1;
    }
    EXPECT_TRUE(has(line, c.expected))
        << c.name << "\nexpected: " << c.expected << "\ngot: " << line;
    // Repository actions are resolved before the job starts: nothing ran,
    // except for the input check, which happens when the step runs.
    if (std::string(c.name) != "missing required input") {
      EXPECT_FALSE(has(r.out, "[a] first")) << c.name << "\n" << r.out;
    }
  }
}

TEST_F(ActionsIt, NewerNodeThanTheRuntimeRunsWithAWarning) {
  forge_.commit("octo", "future",
                {{"action.yml", "name: F\nruns:\n  using: node99\n  main: x.js\n"},
                 {"x.js", "console.log('ran on ' + process.version)\n"}},
                "v1");
  auto r = run(R"(on: push
jobs:
  a:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - uses: octo/future@v1
)");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out,
                  "[a] warning: step 'octo/future@v1': action 'octo/future@v1' declares "
                  "'using: node99'; lockstep's Node.js runtime is v"))
      << r.out;
  EXPECT_TRUE(has(r.out, "[a] ran on v")) << r.out;
}

TEST_F(ActionsIt, LockPinsActionsMovedTagIsStaleFrozenRefusesWhatIsNotPinned) {
  std::string v1 = forge_.commit("octo", "hello", hello_action("first"), "v1", true);
  const std::string yaml = with_image(kHelloWorkflow, "localhost/busybox:test");
  auto wf = home_.write("wf/ci.yml", yaml);
  auto lock = home_.lockstep({"lock", wf.string(), "--actions-url", forge_.root().string()});
  ASSERT_EQ(lock.exit_code, 0) << lock.out << lock.err;
  auto text = read_file(home_.root() / "wf" / "lockstep.lock");
  ASSERT_TRUE(text);
  auto j = nlohmann::json::parse(*text);
  ASSERT_EQ(j["actions"].size(), 1u) << *text;
  EXPECT_EQ(j["actions"][0]["repository"], "octo/hello");
  EXPECT_EQ(j["actions"][0]["ref"], "v1");
  EXPECT_EQ(j["actions"][0]["commit"], v1);
  EXPECT_EQ(j["node-runtime"].get<std::string>().rfind("sha256:", 0), 0u);

  // The tag moves: the lock is stale, and a run with it keeps the old commit.
  std::string moved = forge_.commit("octo", "hello", hello_action("moved"), "v1", true);
  auto check =
      home_.lockstep({"lock", wf.string(), "--check", "--actions-url", forge_.root().string()});
  EXPECT_EQ(check.exit_code, 1) << check.out << check.err;
  EXPECT_TRUE(has(check.err, "stale: action 'octo/hello@v1' now " + moved + " (locked " + v1 + ")"))
      << check.err;
  auto r = run(yaml);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "main: Hello, Mona (first)")) << r.out;
  EXPECT_FALSE(has(r.out, "(moved)")) << r.out;

  // A lock that does not pin the action: --frozen refuses, naming it.
  auto unpinned = j;
  unpinned["actions"] = nlohmann::json::array();
  ASSERT_TRUE(write_file(home_.root() / "wf" / "lockstep.lock", unpinned.dump(2) + "\n"));
  auto frozen = run(yaml, {"--frozen"});
  EXPECT_EQ(frozen.exit_code, 2) << frozen.out << frozen.err;
  EXPECT_TRUE(has(frozen.err,
                  "--frozen: action 'octo/hello@v1' (job a) is not pinned by "
                  "lockstep.lock"))
      << frozen.err;
  EXPECT_FALSE(has(frozen.out, "[a]")) << frozen.out;
}

TEST_F(ActionsIt, ExportedRunReplaysOnAFreshStateDirWithoutTheActionRepositories) {
  forge_.commit("octo", "hello", hello_action(), "v1", true);
  auto r = run(with_image(kHelloWorkflow, "localhost/busybox:test"));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  std::string run_id = home_.run_ids().back();
  fs::path bundle = home_.root() / "bundle";
  auto ex = home_.lockstep({"runs", "export", run_id, bundle.string()});
  ASSERT_EQ(ex.exit_code, 0) << ex.out << ex.err;
  EXPECT_TRUE(has(ex.out, "1 action(s)")) << ex.out;
  // Another host: a new state dir, and no action repositories at all.
  fs::remove_all(forge_.root());
  LockstepHome other;
  auto replay = other.lockstep({"replay", (bundle / "record.json").string()});
  ASSERT_EQ(replay.exit_code, 0) << replay.out << replay.err;
  EXPECT_TRUE(has(replay.out, "replay: 1 of 1 environment hashes match the record")) << replay.out;
  EXPECT_TRUE(has(replay.out, "[a] main: Hello, Mona (v1) state=pre-state")) << replay.out;
}

TEST_F(ActionsIt, CacheRestoreAndSaveSubActionsAreBuiltIn) {
  // No forge repository: actions/cache/restore and actions/cache/save never
  // leave the host.
  auto r = run(R"yaml(on: push
jobs:
  first:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - id: r
        uses: actions/cache/restore@v4
        with:
          path: deps
          key: deps-1
      - run: echo "first hit=${{ steps.r.outputs.cache-hit }}"; mkdir -p deps; echo cached > deps/f
      - uses: actions/cache/save@v4
        with:
          path: deps
          key: deps-1
  second:
    needs: first
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    steps:
      - id: r
        uses: actions/cache/restore@v4
        with:
          path: deps
          key: deps-1
      - run: echo "second hit=${{ steps.r.outputs.cache-hit }} key=${{ steps.r.outputs.cache-matched-key }} $(cat deps/f)"
)yaml");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(has(r.out, "[first] first hit=false")) << r.out;
  EXPECT_TRUE(has(r.out, "[first] saved cache 'deps-1'")) << r.out;
  EXPECT_TRUE(has(r.out, "[second] second hit=true key=deps-1 cached")) << r.out;
}

}  // namespace
}  // namespace lockstep::testing
