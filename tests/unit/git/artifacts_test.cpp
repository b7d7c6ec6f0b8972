// Artifacts: content-addressed upload, download, listing and errors.
#include "cache/artifacts.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "common/fd.hpp"
#include "common/fs.hpp"
#include "common/json.hpp"

namespace lockstep::cache {
namespace {
namespace fs = std::filesystem;

void write(const fs::path& p, const std::string& content) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class ArtifactsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = TempDir::create(fs::temp_directory_path(), "lockstep-artifacts-");
    ASSERT_TRUE(t) << t.error().message();
    tmp_ = std::move(*t);
    ws_ = tmp_.path() / "ws";
    write(ws_ / "dist/app.tar.gz", std::string("\x1f\x8b\0binary\xff", 10));
    write(ws_ / "dist/bin/tool", "#!/bin/sh\necho hi\n");
    ::chmod((ws_ / "dist/bin/tool").c_str(), 0755);
    write(ws_ / "dist/bin/tool.debug", "debug info");
    write(ws_ / "README.md", "readme\n");
  }
  UploadRequest request(const std::string& name, std::vector<std::string> paths,
                        const std::string& job = "build (gcc)") {
    UploadRequest r;
    r.run_id = "run-1";
    r.job = job;
    r.name = name;
    r.paths = std::move(paths);
    r.dirs = {ws_, tmp_.path() / "home"};
    return r;
  }
  TempDir tmp_;
  fs::path ws_;
};

TEST_F(ArtifactsTest, UploadDownloadBytesIdentical) {
  ArtifactStore store(tmp_.path() / "state");
  auto up = store.upload(request("dist", {"dist/", "!dist/**/*.debug"}));
  ASSERT_TRUE(up) << up.error().message();
  ASSERT_TRUE(up->artifact);
  const ArtifactInfo& a = *up->artifact;
  ASSERT_EQ(a.files.size(), 2u);
  EXPECT_EQ(a.files[0].path, "app.tar.gz");
  EXPECT_EQ(a.files[0].mode, 0644u);
  EXPECT_EQ(a.files[1].path, "bin/tool");
  EXPECT_EQ(a.files[1].mode, 0755u);
  EXPECT_EQ(a.files[1].digest, sha256_of("#!/bin/sh\necho hi\n"));
  EXPECT_EQ(a.size, 10u + 18u);
  EXPECT_EQ(a.digest, artifact_digest(a.files));
  EXPECT_TRUE(fs::exists(store.file_path(a.files[0].digest)));

  const fs::path out = tmp_.path() / "out";
  auto down = store.download("run-1", "dist", out);
  ASSERT_TRUE(down) << down.error().message();
  EXPECT_EQ(slurp(out / "app.tar.gz"), slurp(ws_ / "dist/app.tar.gz"));
  EXPECT_EQ(slurp(out / "bin/tool"), slurp(ws_ / "dist/bin/tool"));
  EXPECT_FALSE(fs::exists(out / "bin/tool.debug"));
  EXPECT_NE(fs::status(out / "bin/tool").permissions() & fs::perms::owner_exec, fs::perms::none);

  auto l = store.list("run-1");
  ASSERT_TRUE(l);
  ASSERT_EQ(l->size(), 1u);
  EXPECT_EQ((*l)[0].job, "build (gcc)");
  EXPECT_EQ((*l)[0].digest, a.digest);
}

TEST_F(ArtifactsTest, DigestDependsOnContentNotOnWhereOrWhen) {
  ArtifactStore store(tmp_.path() / "state");
  auto one = store.upload(request("one", {"dist"}));
  // The same files from another directory (a glob root) in another run.
  fs::create_directories(tmp_.path() / "copy");
  fs::copy(ws_ / "dist", tmp_.path() / "copy/dist", fs::copy_options::recursive);
  UploadRequest r = request("two", {tmp_.path().string() + "/copy/dist/**"});
  r.run_id = "run-2";
  auto two = store.upload(r);
  ASSERT_TRUE(one && two) << (one ? two.error().message() : one.error().message());
  EXPECT_EQ(one->artifact->digest, two->artifact->digest);
  write(tmp_.path() / "copy/dist/app.tar.gz", "changed");
  r.name = "three";
  auto three = store.upload(r);
  ASSERT_TRUE(three);
  EXPECT_NE(three->artifact->digest, one->artifact->digest);
}

TEST_F(ArtifactsTest, SingleFileIsStoredByItsName) {
  ArtifactStore store(tmp_.path() / "state");
  auto up = store.upload(request("readme", {"README.md"}));
  ASSERT_TRUE(up) << up.error().message();
  ASSERT_EQ(up->artifact->files.size(), 1u);
  EXPECT_EQ(up->artifact->files[0].path, "README.md");
}

TEST_F(ArtifactsTest, NameClashWithinARunNamesTheFirstJob) {
  ArtifactStore store(tmp_.path() / "state");
  ASSERT_TRUE(store.upload(request("dist", {"dist"}, "build (gcc)")));
  auto second = store.upload(request("dist", {"README.md"}, "build (clang)"));
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().message(), "artifact 'dist' was already uploaded by job 'build (gcc)'");
  EXPECT_EQ(second.error().kind(), ErrorKind::kUsage);
  // Another run may use the name.
  UploadRequest other = request("dist", {"README.md"}, "build (clang)");
  other.run_id = "run-2";
  EXPECT_TRUE(store.upload(other));
}

TEST_F(ArtifactsTest, ConcurrentUploadsOfOneNameExactlyOneWins) {
  ArtifactStore store(tmp_.path() / "state");
  std::vector<int> ok(4, 0);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < ok.size(); ++i)
    threads.emplace_back([&, i] {
      ok[i] = store.upload(request("dist", {"dist"}, "job " + std::to_string(i))) ? 1 : 0;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok[0] + ok[1] + ok[2] + ok[3], 1);
}

TEST_F(ArtifactsTest, MissingArtifactListsAvailableNames) {
  ArtifactStore store(tmp_.path() / "state");
  auto none = store.download("run-1", "dist", tmp_.path() / "out");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().message(),
            "artifact 'dist' not found in run 'run-1' (no artifacts were uploaded)");
  ASSERT_TRUE(store.upload(request("logs", {"README.md"})));
  ASSERT_TRUE(store.upload(request("dist", {"dist"})));
  auto missing = store.download("run-1", "coverage", tmp_.path() / "out");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message(),
            "artifact 'coverage' not found in run 'run-1' (available: dist, logs)");
  EXPECT_EQ(missing.error().kind(), ErrorKind::kNotFound);
}

TEST_F(ArtifactsTest, IfNoFilesFound) {
  ArtifactStore store(tmp_.path() / "state");
  UploadRequest r = request("nothing", {"missing/**"});
  r.if_no_files_found = IfNoFilesFound::kError;
  auto err = store.upload(r);
  ASSERT_FALSE(err);
  EXPECT_EQ(err.error().message(),
            "no files were found for artifact 'nothing' with the provided path: missing/**");
  r.if_no_files_found = IfNoFilesFound::kWarn;
  auto warn = store.upload(r);
  ASSERT_TRUE(warn);
  EXPECT_FALSE(warn->artifact);
  EXPECT_EQ(warn->warning,
            "no files were found for artifact 'nothing' with the provided path: missing/**; no "
            "artifact uploaded");
  r.if_no_files_found = IfNoFilesFound::kIgnore;
  auto ignore = store.upload(r);
  ASSERT_TRUE(ignore);
  EXPECT_EQ(ignore->warning, "");
  EXPECT_TRUE(store.list("run-1")->empty());
}

TEST_F(ArtifactsTest, InvalidNameAndCorruptionAreErrors) {
  ArtifactStore store(tmp_.path() / "state");
  auto bad = store.upload(request("../x", {"dist"}));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().kind(), ErrorKind::kUsage);
  auto up = store.upload(request("dist", {"dist"}));
  ASSERT_TRUE(up);
  const fs::path stored = store.file_path(up->artifact->files[0].digest);
  ::chmod(stored.c_str(), 0644);
  write(stored, "tampered");
  auto down = store.download("run-1", "dist", tmp_.path() / "out");
  ASSERT_FALSE(down);
  EXPECT_EQ(down.error().kind(), ErrorKind::kIntegrity);
}

TEST_F(ArtifactsTest, PruneRemovesExpiredAndUnreferencedFiles) {
  ArtifactStore store(tmp_.path() / "state");
  UploadRequest keep = request("keep", {"README.md"});
  keep.retention_days = 0;
  UploadRequest old = request("old", {"dist"});
  old.retention_days = 1;
  ASSERT_TRUE(store.upload(keep));
  auto o = store.upload(old);
  ASSERT_TRUE(o);
  auto removed = store.prune(o->artifact->created_ms + 2 * 86400000LL);
  ASSERT_TRUE(removed) << removed.error().message();
  ASSERT_EQ(removed->size(), 1u);
  EXPECT_EQ((*removed)[0].name, "old");
  EXPECT_FALSE(fs::exists(store.file_path(o->artifact->files[0].digest)));
  EXPECT_EQ(store.list("run-1")->size(), 1u);
  EXPECT_TRUE(store.download("run-1", "keep", tmp_.path() / "out"));
}

}  // namespace
}  // namespace lockstep::cache

namespace lockstep::cache {
namespace {

// Another host's artifact: its files stored by digest (refused when the
// bytes do not match), its manifest adopted into a run of this host, then
// downloaded byte for byte; a manifest naming a missing file, lying about
// its digest or reaching outside the destination is refused.
TEST_F(ArtifactsTest, AManifestFromAnotherHostIsAdoptedOnceItsFilesAreHere) {
  ArtifactStore there(tmp_.path() / "there");
  auto up = there.upload(request("dist", {"dist/"}));
  ASSERT_TRUE(up && up->artifact) << (up ? "" : up.error().message());
  auto manifest = there.manifest_json("run-1", "dist");
  ASSERT_TRUE(manifest) << manifest.error().message();

  ArtifactStore here(tmp_.path() / "here");
  auto early = here.adopt("local-run", *manifest);
  ASSERT_FALSE(early);
  EXPECT_NE(early.error().message().find("is not in the store"), std::string::npos);

  // Wrong bytes for a digest are refused and leave nothing behind.
  write(tmp_.path() / "wrong", "not the file");
  {
    UniqueFd fd(::open((tmp_.path() / "wrong").c_str(), O_RDONLY | O_CLOEXEC));
    auto st = here.put_file(up->artifact->files[0].digest, fd.get());
    ASSERT_FALSE(st);
    EXPECT_NE(st.error().message().find("arrived with other bytes"), std::string::npos);
    EXPECT_FALSE(fs::exists(here.file_path(up->artifact->files[0].digest)));
  }
  for (const auto& f : up->artifact->files) {
    UniqueFd fd(::open(there.file_path(f.digest).c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(here.put_file(f.digest, fd.get()));
  }
  auto adopted = here.adopt("local-run", *manifest);
  ASSERT_TRUE(adopted) << adopted.error().message();
  EXPECT_EQ(adopted->run_id, "local-run");
  EXPECT_EQ(adopted->digest, up->artifact->digest);
  EXPECT_EQ(adopted->job, "build (gcc)");
  auto again = here.adopt("local-run", *manifest);
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().message().find("already exists"), std::string::npos);
  auto got = here.download("local-run", "dist", tmp_.path() / "out");
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(slurp(tmp_.path() / "out" / "bin/tool"), "#!/bin/sh\necho hi\n");

  auto j = Json::parse(*manifest);
  j["name"] = "liar";
  j["files"][0]["digest"] = j["files"][1]["digest"];
  j["files"][0]["size"] = j["files"][1]["size"];
  auto lie = here.adopt("local-run", j.dump());
  ASSERT_FALSE(lie);
  EXPECT_NE(lie.error().message().find("does not match its files"), std::string::npos);
  j = Json::parse(*manifest);
  j["name"] = "escape";
  j["files"][0]["path"] = "../../etc/x";
  auto escape = here.adopt("local-run", j.dump());
  ASSERT_FALSE(escape);
  EXPECT_NE(escape.error().message().find("unsafe path"), std::string::npos);
  EXPECT_FALSE(here.adopt("local-run", "{not json"));
}

}  // namespace
}  // namespace lockstep::cache
