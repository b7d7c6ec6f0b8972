// lockstep.lock: round trip, determinism, schema refusal and located errors.
#include <gtest/gtest.h>

#include "pipeline/lock_inputs.hpp"
#include "pipeline/lockfile.hpp"
#include "pipeline/parse.hpp"

namespace lockstep::pipeline {
namespace {

const std::string kD1 = "sha256:" + std::string(64, '1');
const std::string kD2 = "sha256:" + std::string(64, '2');
const std::string kD3 = "sha256:" + std::string(64, '3');
const std::string kC1 = std::string(40, 'a');
const std::string kC2 = std::string(40, 'b');

Lockfile sample() {
  Lockfile l;
  l.lockstep_version = "0.1.0";
  l.workflow_path = ".github/workflows/ci.yml";
  l.workflow_digest = kD1;
  LockedImage b{"registry.example/b:1", "registry", kD2, {{"linux/amd64", kD3}}, {"z", "a"}};
  LockedImage a{"localhost/busybox:1.35", "local", "", {{"linux/amd64", kD1}}, {"build"}};
  l.images = {b, a};
  l.sources = {{"https://example.com/x.git", "v1", kC2, false, {"build"}},
               {"/src/repo", "HEAD", kC1, true, {}}};
  l.unlockable = {{"image", "${{ needs.a.outputs.img }}", "deploy", "reads 'needs'"}};
  return l;
}

std::string parse_error(const std::string& text) {
  auto r = parse_lockfile(text, "lockstep.lock");
  EXPECT_FALSE(r) << text;
  if (r) return "";
  EXPECT_EQ(r.error().message().find('\n'), std::string::npos) << r.error().message();
  return r.error().message();
}

TEST(Lockfile, RoundTripKeepsEverything) {
  std::string text = serialize_lockfile(sample());
  auto back = parse_lockfile(text, "lockstep.lock");
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(back->lockstep_version, "0.1.0");
  EXPECT_EQ(back->workflow_path, ".github/workflows/ci.yml");
  EXPECT_EQ(back->workflow_digest, kD1);
  ASSERT_EQ(back->images.size(), 2u);
  const LockedImage* b = back->find_image("registry.example/b:1");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->index, kD2);
  EXPECT_EQ(b->manifests.at("linux/amd64"), kD3);
  EXPECT_EQ(b->jobs, (std::vector<std::string>{"a", "z"}));
  const LockedImage* a = back->find_image("localhost/busybox:1.35");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->source, "local");
  EXPECT_EQ(a->index, "");
  ASSERT_NE(back->find_source("https://example.com/x.git", "v1"), nullptr);
  EXPECT_EQ(back->find_source("https://example.com/x.git", "v1")->commit, kC2);
  ASSERT_NE(back->workflow_source(), nullptr);
  EXPECT_EQ(back->workflow_source()->commit, kC1);
  ASSERT_EQ(back->unlockable.size(), 1u);
  EXPECT_EQ(back->unlockable[0].job, "deploy");
  // Serialising what was read gives the same bytes.
  EXPECT_EQ(serialize_lockfile(*back), text);
}

TEST(Lockfile, OutputIsSortedAndIndependentOfInputOrder) {
  Lockfile x = sample();
  Lockfile y = sample();
  std::swap(y.images[0], y.images[1]);
  std::swap(y.sources[0], y.sources[1]);
  std::swap(y.images[1].jobs[0], y.images[1].jobs[1]);
  std::string text = serialize_lockfile(x);
  EXPECT_EQ(text, serialize_lockfile(y));
  // Schema first, images in reference order, one key per line.
  EXPECT_EQ(text.rfind("{\n  \"schema\": \"lockstep.lock/v2\",\n  \"lockstep\": \"0.1.0\",", 0), 0u)
      << text;
  EXPECT_LT(text.find("localhost/busybox:1.35"), text.find("registry.example/b:1"));
  EXPECT_LT(text.find("\"/src/repo\""), text.find("https://example.com/x.git"));
  EXPECT_EQ(text.back(), '\n');
}

TEST(Lockfile, NewerSchemaIsRefused) {
  std::string text = serialize_lockfile(sample());
  auto pos = text.find("lockstep.lock/v2");
  text.replace(pos, 16, "lockstep.lock/v3");
  EXPECT_EQ(parse_error(text),
            "lockstep.lock:2:13: schema 'lockstep.lock/v3' is newer than this lockstep reads "
            "(lockstep.lock/v2): upgrade lockstep or run 'lockstep lock' again");
  EXPECT_EQ(parse_error("{\"schema\": \"other/v1\"}"),
            "lockstep.lock:1:12: unknown schema 'other/v1' (expected lockstep.lock/v2)");
}

TEST(Lockfile, ActionsAndRuntimeRoundTripAndDiffer) {
  Lockfile l = sample();
  l.actions = {{"octo/hello", "v1", kC2, "https://github.com/octo/hello", {"build"}},
               {"actions/setup-node", "v4", kC1, "", {"build", "test"}}};
  l.node_runtime = kD3;
  std::string text = serialize_lockfile(l);
  // Sorted by repository.
  EXPECT_LT(text.find("actions/setup-node"), text.find("octo/hello")) << text;
  auto back = parse_lockfile(text, "lockstep.lock");
  ASSERT_TRUE(back) << back.error().message();
  ASSERT_NE(back->find_action("octo/hello", "v1"), nullptr);
  EXPECT_EQ(back->find_action("octo/hello", "v1")->commit, kC2);
  EXPECT_EQ(back->node_runtime, kD3);
  EXPECT_EQ(serialize_lockfile(*back), text);

  Lockfile moved = l;
  moved.actions[0].commit = kC1;
  auto diff = lock_differences(l, moved);
  ASSERT_EQ(diff.size(), 1u);
  EXPECT_EQ(diff[0], "action 'octo/hello@v1' now " + kC1 + " (locked " + kC2 + ")");

  std::string bad = text;
  bad.replace(bad.find("\"octo/hello\""), 12, "\"octo-hello\"");
  EXPECT_NE(parse_error(bad).find("action repository 'octo-hello' is not OWNER/REPO"),
            std::string::npos)
      << parse_error(bad);
}

TEST(Lockfile, VersionOneIsStillRead) {
  std::string text = serialize_lockfile(sample());
  text.replace(text.find("lockstep.lock/v2"), 16, "lockstep.lock/v1");
  text.erase(text.find(",\n  \"actions\": []"), std::string(",\n  \"actions\": []").size());
  auto back = parse_lockfile(text, "lockstep.lock");
  ASSERT_TRUE(back) << back.error().message() << text;
  EXPECT_EQ(back->schema, 1);
  // ... and v1 has no actions.
  std::string with_actions = serialize_lockfile(sample());
  with_actions.replace(with_actions.find("lockstep.lock/v2"), 16, "lockstep.lock/v1");
  EXPECT_NE(parse_error(with_actions).find("unknown key 'actions' in the lock"), std::string::npos);
}

TEST(Lockfile, TruncatedAndGarbageInputIsLocated) {
  std::string text = serialize_lockfile(sample());
  // Cut after the line holding the first image's reference.
  std::string cut = text.substr(0, text.find("\"source\""));
  std::string err = parse_error(cut);
  EXPECT_EQ(err.rfind("lockstep.lock:", 0), 0u) << err;
  EXPECT_NE(err.find("not valid lockstep.lock JSON"), std::string::npos) << err;
  EXPECT_NE(err.find("run 'lockstep lock'"), std::string::npos) << err;

  EXPECT_EQ(parse_error(""), "lockstep.lock:1:1: empty lock file");
  EXPECT_EQ(parse_error("hello: world\n"), "lockstep.lock:1:1: expected a JSON object");
  err = parse_error("{\n  \"schema\": \"lockstep.lock/v1\",\n  ]]]\n");
  EXPECT_EQ(err.rfind("lockstep.lock:3:", 0), 0u) << err;
}

TEST(Lockfile, BadValuesNameTheirLine) {
  std::string text = serialize_lockfile(sample());
  std::string bad = text;
  bad.replace(bad.find(kC2), 40, "main");
  EXPECT_EQ(parse_error(bad).substr(0, 14), "lockstep.lock:");
  EXPECT_NE(parse_error(bad).find("commit 'main' is not 40 lowercase hex digits"),
            std::string::npos);

  bad = text;
  bad.replace(bad.find("\"lockstep\":"), 11, "\"lokstep\":");
  EXPECT_EQ(parse_error(bad),
            "lockstep.lock:3:3: unknown key 'lokstep' in the lock (did you mean 'lockstep'?)");

  bad = text;
  bad.replace(bad.find(kD3), kD3.size(), "sha256:abc");
  std::string err = parse_error(bad);
  EXPECT_NE(err.find("manifest digest 'sha256:abc' is not a sha256:<64 hex> digest"),
            std::string::npos)
      << err;
}

TEST(Lockfile, PinnedFetchesRoundTripSortedAndRefuseADigestThatIsNotHex) {
  Lockfile l = sample();
  l.fetches = {{"http://files.test/b.tar", kD2, {"build"}}, {"http://files.test/a.tar", kD1, {}}};
  std::string text = serialize_lockfile(l);
  EXPECT_LT(text.find("a.tar"), text.find("b.tar"));
  auto back = parse_lockfile(text, "lockstep.lock");
  ASSERT_TRUE(back) << back.error().message();
  ASSERT_NE(back->find_fetch("http://files.test/b.tar"), nullptr);
  EXPECT_EQ(back->find_fetch("http://files.test/b.tar")->sha256, kD2);
  EXPECT_EQ(back->find_fetch("http://files.test/c.tar"), nullptr);
  // Without fetches the key is not written at all.
  EXPECT_EQ(serialize_lockfile(sample()).find("fetches"), std::string::npos);

  std::string bad = text;
  bad.replace(bad.find(kD2, bad.find("fetches")), kD2.size(), "sha256:" + std::string(64, 'z'));
  std::string err = parse_error(bad);
  EXPECT_NE(err.find("fetch sha256 'sha256:" + std::string(64, 'z') +
                     "' is not a sha256:<64 hex> digest"),
            std::string::npos)
      << err;
  EXPECT_EQ(err.substr(0, 14), "lockstep.lock:");
}

TEST(Lockfile, DifferencesOneLineEach) {
  Lockfile old = sample();
  Lockfile now = sample();
  EXPECT_TRUE(lock_differences(old, now).empty());
  now.sources[1].commit = kC2;  // the workflow's own repository moved: not stale
  EXPECT_TRUE(lock_differences(old, now).empty());
  now.images[0].manifests["linux/amd64"] = kD1;
  now.images.push_back({"new:1", "registry", "", {{"linux/amd64", kD1}}, {}});
  now.sources[0].commit = kC1;
  now.workflow_digest = kD2;
  auto diff = lock_differences(old, now);
  ASSERT_EQ(diff.size(), 4u);
  EXPECT_EQ(diff[0],
            "workflow .github/workflows/ci.yml changed (digest " + kD2 + ", locked " + kD1 + ")");
  EXPECT_EQ(diff[1],
            "image 'registry.example/b:1': linux/amd64 now " + kD1 + " (locked " + kD3 + ")");
  EXPECT_EQ(diff[2], "image 'new:1' is used but not locked");
  EXPECT_EQ(diff[3],
            "source 'https://example.com/x.git' ref 'v1' now " + kC1 + " (locked " + kC2 + ")");
}

TEST(LockInputs, MatrixImagesPerCombinationAndRunTimeOnes) {
  auto wf = parse_workflow(R"(on: push
jobs:
  build:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        image: ["alpine:3.18", "alpine:3.19"]
    container: ${{ matrix.image }}
    services:
      db:
        image: postgres:16
    steps:
      - uses: actions/checkout@v4
        with:
          repository: https://example.com/lib.git
          ref: v${{ strategy.job-total }}
  mapped:
    runs-on: [self-hosted, ubuntu-latest]
    steps:
      - run: true
  deploy:
    needs: build
    runs-on: x
    container: ${{ needs.build.outputs.image }}
    steps:
      - uses: actions/checkout@v4
        with:
          ref: ${{ steps.x.outputs.ref }}
  fan:
    needs: build
    runs-on: x
    strategy:
      matrix: ${{ fromJSON(needs.build.outputs.m) }}
    container: alpine:${{ matrix.v }}
    services:
      db:
        image: postgres:16
    steps:
      - run: true
)",
                           "ci.yml");
  ASSERT_TRUE(wf) << wf.error().message();
  EvalContext base;
  base.contexts["github"] = Value::object();
  auto uses = collect_inputs(*wf, base, {{"ubuntu-latest", "localhost/busybox:1.35"}});
  ASSERT_TRUE(uses) << uses.error().message();
  std::vector<std::string> got;
  for (const auto& u : *uses)
    got.push_back(u.instance + "|" + to_string(u.kind) + "|" + u.reference + "|" + u.ref + "|" +
                  u.unlockable);
  EXPECT_EQ(got, (std::vector<std::string>{
                     "build (alpine:3.18)|image|alpine:3.18||",
                     "build (alpine:3.18)|image|postgres:16||",
                     "build (alpine:3.18)|checkout|https://example.com/lib.git|v2|",
                     "build (alpine:3.19)|image|alpine:3.19||",
                     "build (alpine:3.19)|image|postgres:16||",
                     "build (alpine:3.19)|checkout|https://example.com/lib.git|v2|",
                     "mapped|image|localhost/busybox:1.35||",
                     "deploy|image|||reads 'needs', known only at run time",
                     "deploy|checkout|||reads 'steps', known only at run time",
                     "fan|image|||reads 'matrix', made from needs outputs at run time",
                     "fan|image|postgres:16||",
                 }));
}

}  // namespace
}  // namespace lockstep::pipeline
