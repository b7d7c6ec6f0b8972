#include "pipeline/env_hash.hpp"

#include <gtest/gtest.h>

#include <functional>

#include "pipeline/parse.hpp"

namespace lockstep::pipeline {
namespace {

JobEnvInputs sample() {
  JobEnvInputs in;
  in.workflow_name = "ci";
  in.job_id = "build";
  in.job_name = "build (gcc, -O2)";
  in.matrix = {{"cc", "gcc"}, {"opt", "-O2"}};
  in.image = "localhost/cc:debian12";
  in.manifest_digest = "sha256:" + std::string(64, 'a');
  in.source_commit = std::string(40, '1');
  in.source_tree = std::string(40, '2');
  in.declared = {{"steps", Json::array({{{"run", "make"}}})}};
  in.env = {{"CC", "gcc"}, {"SOURCE_DATE_EPOCH", "1700000000"}, {"TZ", "UTC"}};
  in.secrets = {{"TOKEN", keyed_hash("k", "s3cret")}};
  in.workdir = "/__w/src/src";
  in.mounts = {{"/__w", false, "workspace"}, {"/etc/hosts", true, "hosts"}};
  in.user = "";
  in.hostname = "lockstep";
  in.network = "none";
  in.memory_bytes = 1ull << 30;
  in.cpus_milli = 2000;
  in.pids = 512;
  in.seccomp_profile_digest = "default";
  in.executor_protocol = 1;
  in.shell_default = "bash";
  in.source_date_epoch = 1700000000;
  in.tz = "UTC";
  in.locale = "C.UTF-8";
  in.job_timeout_ms = 21600000;
  return in;
}

std::string hash_of(const JobEnvInputs& in) {
  auto d = hash_document(job_document(in));
  EXPECT_TRUE(d) << d.error().message();
  return d ? d->str() : "";
}

TEST(EnvHash, SameInputsSameHashAndTheDocumentIsStable) {
  EXPECT_EQ(hash_of(sample()), hash_of(sample()));
  EXPECT_EQ(hash_of(sample()).size(), 71u);
  // Mount order as declared does not matter: the document sorts them.
  JobEnvInputs b = sample();
  std::swap(b.mounts[0], b.mounts[1]);
  EXPECT_EQ(hash_of(sample()), hash_of(b));
}

TEST(EnvHash, EverySingleInputChangesTheHashAndTheDifferenceNamesIt) {
  struct Case {
    const char* field;
    std::function<void(JobEnvInputs&)> change;
  };
  std::vector<Case> cases = {
      {"env.CC", [](JobEnvInputs& i) { i.env["CC"] = "clang"; }},
      {"image.manifest_digest",
       [](JobEnvInputs& i) { i.manifest_digest = "sha256:" + std::string(64, 'b'); }},
      {"source.commit", [](JobEnvInputs& i) { i.source_commit = std::string(40, '3'); }},
      {"container.limits.memory_bytes", [](JobEnvInputs& i) { i.memory_bytes = 1ull << 29; }},
      {"container.network", [](JobEnvInputs& i) { i.network = "host"; }},
      {"container.umask", [](JobEnvInputs& i) { i.umask = 0002; }},
      {"container.hostname", [](JobEnvInputs& i) { i.hostname = "other"; }},
      {"container.user", [](JobEnvInputs& i) { i.user = "1000"; }},
      {"container.seccomp_profile",
       [](JobEnvInputs& i) { i.seccomp_profile_digest = "unconfined"; }},
      {"container.executor_protocol", [](JobEnvInputs& i) { i.executor_protocol = 2; }},
      {"reproducibility.source_date_epoch", [](JobEnvInputs& i) { i.source_date_epoch = 1; }},
      {"reproducibility.tz", [](JobEnvInputs& i) { i.tz = "CET"; }},
      {"matrix.opt", [](JobEnvInputs& i) { i.matrix["opt"] = "-O3"; }},
      {"secrets.TOKEN", [](JobEnvInputs& i) { i.secrets["TOKEN"] = keyed_hash("k", "other"); }},
      {"timeouts.job_ms", [](JobEnvInputs& i) { i.job_timeout_ms = 60000; }},
      {"container.limits.cpus_milli", [](JobEnvInputs& i) { i.cpus_milli = 500; }},
      {"container.limits.pids", [](JobEnvInputs& i) { i.pids = 100; }},
  };
  const Json base = job_document(sample());
  for (const auto& c : cases) {
    JobEnvInputs in = sample();
    c.change(in);
    EXPECT_NE(hash_of(in), hash_of(sample())) << c.field;
    auto diffs = json_differences(base, job_document(in));
    ASSERT_EQ(diffs.size(), 1u) << c.field;
    EXPECT_EQ(diffs[0].substr(0, diffs[0].find(':')), c.field) << diffs[0];
  }
}

TEST(EnvHash, EgressJobsCarryTheirAllowListInAnyOrder) {
  JobEnvInputs a = sample();
  a.network = "egress";
  EXPECT_EQ(job_document(a)["container"]["egress_allow"], Json::array({"*"}));
  EXPECT_FALSE(job_document(sample())["container"].contains("egress_allow"));
  JobEnvInputs b = a, c = a;
  b.egress_allow = {"files.test", "10.1.0.0/16:5432"};
  c.egress_allow = {"10.1.0.0/16:5432", "files.test"};
  EXPECT_EQ(hash_of(b), hash_of(c));
  EXPECT_NE(hash_of(a), hash_of(b));
  auto diffs = json_differences(job_document(a), job_document(b));
  ASSERT_FALSE(diffs.empty());
  EXPECT_EQ(diffs[0].substr(0, diffs[0].find(':')).rfind("container.egress_allow", 0), 0u)
      << diffs[0];
}

TEST(EnvHash, RunIdentityValuesAreNotHashedButTheirNamesAre) {
  JobEnvInputs a = sample(), b = sample();
  a.env["GITHUB_RUN_ID"] = "20261128-100000-aaaa";
  b.env["GITHUB_RUN_ID"] = "20261128-110000-bbbb";
  EXPECT_EQ(hash_of(a), hash_of(b));
  EXPECT_NE(hash_of(a), hash_of(sample()));
}

TEST(EnvHash, StepsChainFromThePreviousHash) {
  StepEnvInputs s;
  s.index = 0;
  s.name = "make";
  s.kind = "run";
  s.script = "make";
  s.argv = {"bash", "-e", "/__w/_temp/step_1.sh"};
  s.env = {{"HOME", "/github/home"}};
  auto prev1 = Digest::parse("sha256:" + std::string(64, 'a'));
  auto prev2 = Digest::parse("sha256:" + std::string(64, 'b'));
  ASSERT_TRUE(prev1 && prev2);
  auto h1 = hash_document(step_document(s, *prev1));
  auto h2 = hash_document(step_document(s, *prev2));
  ASSERT_TRUE(h1 && h2);
  EXPECT_NE(h1->str(), h2->str());
  StepEnvInputs t = s;
  t.script = "make -j2";
  auto diffs = json_differences(step_document(s, *prev1), step_document(t, *prev1));
  ASSERT_EQ(diffs.size(), 1u);
  EXPECT_EQ(diffs[0], "script: \"make\" -> \"make -j2\"");
}

TEST(EnvHash, YamlLayoutCommentsKeyOrderAndEnvOrderDoNotChangeTheDeclaredJob) {
  const char* a =
      "name: ci\n"
      "jobs:\n"
      "  build:\n"
      "    runs-on: linux\n"
      "    env:\n"
      "      A: 1\n"
      "      B: 2\n"
      "    steps:\n"
      "      - name: make\n"
      "        run: make\n"
      "        env: {X: x, Y: y}\n";
  const char* b =
      "# the same job, written differently\n"
      "jobs:\n"
      "  build:\n"
      "    steps:\n"
      "      - env:\n"
      "          Y: y   # order swapped\n"
      "          X: x\n"
      "        run: make\n"
      "        name: make\n"
      "    env: {B: 2, A: 1}\n"
      "    runs-on: linux\n"
      "name: ci\n";
  auto wa = parse_workflow(a, "a.yml");
  auto wb = parse_workflow(b, "b.yml");
  ASSERT_TRUE(wa) << wa.error().message();
  ASSERT_TRUE(wb) << wb.error().message();
  Json da = declared_job(*wa, wa->jobs[0]);
  Json db = declared_job(*wb, wb->jobs[0]);
  EXPECT_EQ(da, db) << json_differences(da, db).front();
  auto ha = hash_document(da), hb = hash_document(db);
  ASSERT_TRUE(ha && hb);
  EXPECT_EQ(ha->str(), hb->str());
  // A changed command does change it.
  auto wc = parse_workflow(std::string(a) + "      - run: make test\n", "c.yml");
  ASSERT_TRUE(wc) << wc.error().message();
  EXPECT_NE(declared_job(*wc, wc->jobs[0]), da);
}

TEST(EnvHash, FloatsBecomeTextAndAreNeverHashedAsNumbers) {
  JobEnvInputs in = sample();
  in.matrix = {{"python", 3.10}};
  Json doc = job_document(in);
  EXPECT_TRUE(doc["matrix"]["python"].is_string());
  EXPECT_TRUE(hash_document(doc));
  Json bad = {{"x", 1.5}};
  EXPECT_FALSE(hash_document(bad));
}

TEST(EnvHash, SecretsAreKeyedHashesAndRedactedFromText) {
  EXPECT_EQ(keyed_hash("key", "value"), keyed_hash("key", "value"));
  EXPECT_NE(keyed_hash("key", "value"), keyed_hash("other", "value"));
  EXPECT_EQ(keyed_hash("key", "value").rfind("hmac-sha256:", 0), 0u);
  EXPECT_EQ(keyed_hash("key", "value").size(), 12u + 64u);
  std::map<std::string, std::string> secrets = {{"TOKEN", "abc123"}, {"LONG", "abc123xyz"}};
  EXPECT_EQ(redact_secrets("curl -H abc123xyz and abc123", secrets),
            "curl -H ${{ secrets.LONG }} and ${{ secrets.TOKEN }}");
  EXPECT_EQ(redact_secrets("nothing here", secrets), "nothing here");
}

}  // namespace
}  // namespace lockstep::pipeline
