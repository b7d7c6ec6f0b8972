// A job's environment hash from what it covers (runner/engine/job_record.hpp): what
// the document says of the container and its secrets, and when the hash moves.
#include <gtest/gtest.h>

#include "pipeline/env_hash.hpp"
#include "runner/engine/job_record.hpp"

namespace lockstep::runner {
namespace {

struct Job {
  Job() {
    spec.env = {"PATH=/usr/bin", "API=token-0123456789"};
    spec.workdir = "/__w/repo/repo";
    spec.mounts = {{"/host/w", "/__w", false},
                   {"/host/home", "/github/home", false},
                   {"/srv/data", "/data", true},
                   {"/var/lib/v", "/cache", false}};
    in.workflow_name = "ci";
    in.job_id = "build";
    in.display_name = "build";
    in.image = "localhost/img:1";
    in.manifest_digest = "sha256:" + std::string(64, 'a');
    in.platform = "linux/amd64";
    in.spec = &spec;
    in.base_env = {{"SOURCE_DATE_EPOCH", "315532800"},
                   {"TZ", "UTC"},
                   {"LANG", "C.UTF-8"},
                   {"GREETING", "hello token-0123456789"}};
    in.secrets = {{"API", "token-0123456789"}};
    in.redact = in.secrets;
    in.secret_key = "key-one";
    in.mount_kinds = {{"/__w", {"workspace", ""}},
                      {"/github/home", {"home", ""}},
                      {"/cache", {"named-volume", "deps"}}};
    in.job_timeout = std::chrono::minutes(360);
    pipeline::EnvNeed need;
    need.result = "success";
    need.outputs = {{"echo", "token-0123456789"}};
    in.needs["setup"] = need;
  }
  EnvHash hash() const {
    auto h = job_env_hash(in);
    EXPECT_TRUE(h) << h.error().message();
    return h ? *h : EnvHash{};
  }
  executor::ContainerSpec spec;
  JobHashInput in;
};

TEST(JobEnvHash, SecretValuesNeverReachTheDocumentAndSecretsAreKeyedHashes) {
  Job job;
  EnvHash h = job.hash();
  const std::string text = h.doc.dump();
  EXPECT_EQ(text.find("token-0123456789"), std::string::npos) << text;
  EXPECT_EQ(h.doc["env"]["container:API"], "${{ secrets.API }}");
  EXPECT_EQ(h.doc["env"]["GREETING"], "hello ${{ secrets.API }}");
  EXPECT_EQ(h.doc["secrets"]["API"], pipeline::keyed_hash("key-one", "token-0123456789"));
  EXPECT_EQ(h.doc["reproducibility"]["tz"], "UTC");
  EXPECT_EQ(h.doc["reproducibility"]["source_date_epoch"], 315532800);
}

TEST(JobEnvHash, MountsAreNamedByWhatLockstepPutThereAndOthersAreVolumes) {
  Job job;
  EnvHash h = job.hash();
  const Json& mounts = h.doc["container"]["mounts"];
  ASSERT_EQ(mounts.size(), 4u) << mounts.dump();
  std::map<std::string, Json> by_target;
  for (const auto& m : mounts) by_target[m["target"]] = m;
  EXPECT_EQ(by_target["/__w"]["kind"], "workspace");
  EXPECT_EQ(by_target["/github/home"]["kind"], "home");
  EXPECT_EQ(by_target["/data"]["kind"], "volume");
  EXPECT_EQ(by_target["/data"]["read_only"], true);
  EXPECT_EQ(by_target["/cache"]["kind"], "named-volume");
  EXPECT_EQ(by_target["/cache"]["name"], "deps");
}

TEST(JobEnvHash, TheSameInputsHashAlikeAndWhatTheyCoverMovesTheHash) {
  Job a, b;
  EXPECT_EQ(a.hash().digest, b.hash().digest);
  b.in.secret_key = "key-two";
  EXPECT_NE(a.hash().digest, b.hash().digest);
  Job c;
  c.spec.limits.pids = 128;
  EXPECT_NE(a.hash().digest, c.hash().digest);
  Job d;
  d.in.mount_kinds.erase("/cache");
  EXPECT_NE(a.hash().digest, d.hash().digest);
}

TEST(JobEnvHash, AStepChainsFromTheOneBeforeAndAReplayNamesWhatDiffers) {
  Job job;
  EnvHash j = job.hash();
  pipeline::StepEnvInputs step;
  step.index = 0;
  step.kind = "run";
  step.script = "make";
  auto s1 = step_env_hash(step, j.digest);
  ASSERT_TRUE(s1) << s1.error().message();
  auto again = step_env_hash(step, s1->digest);
  ASSERT_TRUE(again);
  EXPECT_NE(s1->digest, again->digest);

  std::map<std::string, Json> expected = {{"build#1", s1->doc}};
  EXPECT_TRUE(check_expected_doc(&expected, "build#1", s1->doc));
  EXPECT_TRUE(check_expected_doc(&expected, "other#1", again->doc));
  EXPECT_TRUE(check_expected_doc(nullptr, "build#1", again->doc));
  auto refused = check_expected_doc(&expected, "build#1", again->doc);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind(), ErrorKind::kIntegrity);
  EXPECT_NE(refused.error().message().find(
                "replay: the environment of step 1 differs from the record (recorded -> now): "),
            std::string::npos)
      << refused.error().message();
}

}  // namespace
}  // namespace lockstep::runner
