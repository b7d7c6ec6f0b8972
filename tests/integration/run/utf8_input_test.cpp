// Files lockstep reads that hold bytes that are not UTF-8: each is refused
// with one line naming the file, line, column and byte (exit 2), never an
// abort. The workflow case is the one fuzzing found: a matrix key with a
// stray byte 0xC1 used to kill `run --list` with SIGABRT from inside
// nlohmann::json.
#include <gtest/gtest.h>

#include "tests/support/lockstep_process.hpp"

namespace lockstep::testing {
namespace {

const char* kWorkflow =
    "jobs:\n"
    "  build:\n"
    "    name: b ${{ matrix.o }}\n"
    "    runs-on: ubuntu-latest\n"
    "    strategy:\n"
    "      matrix:\n"
    "        o: [a, b]\n"
    "        o\xC1s: [a, b]\n"
    "    steps:\n"
    "      - run: echo hi\n";

const char* kGoodWorkflow =
    "jobs:\n"
    "  build:\n"
    "    runs-on: ubuntu-latest\n"
    "    steps:\n"
    "      - run: echo hi\n";

TEST(Utf8Input, WorkflowWithAnInvalidByteIsOneLineExitTwo) {
  LockstepHome h;
  h.write("ci.yml", kWorkflow);
  auto r = h.lockstep({"run", "ci.yml", "--list"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err, "lockstep: error: ci.yml:8:10: invalid UTF-8 (byte 0xC1)\n");
  EXPECT_EQ(r.out, "");
  // lock reads the workflow the same way.
  auto l = h.lockstep({"lock", "ci.yml"});
  EXPECT_EQ(l.exit_code, 2) << l.err;
  EXPECT_EQ(l.err, "lockstep: error: ci.yml:8:10: invalid UTF-8 (byte 0xC1)\n");
}

TEST(Utf8Input, ProjectConfigWithAnInvalidByteIsOneLineExitTwo) {
  LockstepHome h;
  h.write("ci.yml", kGoodWorkflow);
  auto cfg = h.write(".lockstep.yml", "runs-on:\n  ubuntu-latest: \"busybox\xC1\"\n");
  auto r = h.lockstep({"run", "ci.yml", "--list"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err, "lockstep: error: " + cfg.string() + ":2:26: invalid UTF-8 (byte 0xC1)\n");
}

TEST(Utf8Input, LockWithAnInvalidByteIsOneLineExitTwo) {
  LockstepHome h;
  h.write("ci.yml", kGoodWorkflow);
  auto lock = h.write("lockstep.lock",
                      "{\n  \"schema\": \"lockstep.lock/v1\",\n  \"lockstep\": \"0.1\xC1\",\n"
                      "  \"workflow\": {\"path\": \"ci.yml\", \"digest\": \"sha256:" +
                          std::string(64, 'a') + "\"}\n}\n");
  auto r = h.lockstep({"run", "ci.yml", "--list"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err, "lockstep: error: " + lock.string() + ":3:19: invalid UTF-8 (byte 0xC1)\n");
}

TEST(Utf8Input, RecordWithAnInvalidByteIsOneLineExitTwo) {
  LockstepHome h;
  h.write("rec.json",
          "{\"schema\": \"lockstep.run-record/v1\",\n \"run_id\": \"a\xC1\", \"jobs\": []}\n");
  auto r = h.lockstep({"diff", "rec.json", "rec.json"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  // Not nlohmann's message, which quotes the byte itself back.
  EXPECT_EQ(r.err, "lockstep: error: record rec.json:2:14: invalid UTF-8 (byte 0xC1)\n");
}

}  // namespace
}  // namespace lockstep::testing
