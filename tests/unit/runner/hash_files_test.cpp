#include "runner/engine/hash_files.hpp"

#include <fstream>

#include <gtest/gtest.h>

#include "common/digest.hpp"
#include "common/fs.hpp"

namespace lockstep::runner {
namespace {
namespace fs = std::filesystem;

// GitHub's definition: SHA-256 over the SHA-256 digests of the files.
std::string expected(const std::vector<std::string>& contents) {
  std::string digests;
  for (const auto& c : contents) {
    std::string hex = sha256_of(c).hex();
    for (size_t i = 0; i < hex.size(); i += 2)
      digests += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  return sha256_of(digests).hex();
}

class HashFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = TempDir::create(fs::temp_directory_path(), "ls-hashfiles-");
    ASSERT_TRUE(d);
    dir_ = std::make_unique<TempDir>(std::move(*d));
    ws_ = dir_->path() / "ws";
    put("src/a.txt", "hello\n");
    put("src/b.txt", "world\n");
    put("src/sub/c.txt", "deep\n");
    put("other.md", "other\n");
    put("../outside.txt", "outside\n");
  }
  void put(const std::string& rel, const std::string& text) {
    fs::create_directories((ws_ / rel).parent_path());
    std::ofstream(ws_ / rel) << text;
  }
  std::string hash(const std::vector<std::string>& patterns) {
    auto r = hash_workspace_files(ws_, patterns);
    EXPECT_TRUE(r) << r.error().message();
    return r ? *r : "(error)";
  }
  std::unique_ptr<TempDir> dir_;
  fs::path ws_;
};

TEST_F(HashFiles, OneFileAndAGlob) {
  EXPECT_EQ(hash({"src/a.txt"}), expected({"hello\n"}));
  EXPECT_EQ(hash({"src/*.txt"}), expected({"hello\n", "world\n"}));
}

TEST_F(HashFiles, DirectoriesStandForTheirFilesInPathOrder) {
  EXPECT_EQ(hash({"src"}), expected({"hello\n", "world\n", "deep\n"}));
  EXPECT_EQ(hash({"**/*.txt"}), expected({"hello\n", "world\n", "deep\n"}));
  // The order the runner's glob finds them: by pattern, then by path.
  EXPECT_EQ(hash({"src/**", "other.md"}), expected({"hello\n", "world\n", "deep\n", "other\n"}));
  EXPECT_EQ(hash({"other.md", "src/**"}), expected({"other\n", "hello\n", "world\n", "deep\n"}));
  EXPECT_EQ(hash({"src/sub/*.txt", "src"}), expected({"hello\n", "world\n", "deep\n"}));
}

TEST_F(HashFiles, ExclusionsAndFilesOutsideTheWorkspace) {
  EXPECT_EQ(hash({"src/**", "!src/sub/**"}), expected({"hello\n", "world\n"}));
  EXPECT_EQ(hash({"../outside.txt"}), "");
  EXPECT_EQ(hash({"nothing/**"}), "");
}

}  // namespace
}  // namespace lockstep::runner
