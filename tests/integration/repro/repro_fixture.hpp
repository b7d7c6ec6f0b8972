#pragma once
// What the examples/reproducible-c tests share: the compiler image (an OCI
// tar written once per build directory by scripts/compiler-image.sh) and a
// clone-like git repository holding the example at its place in this one.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/lockstep_process.hpp"

namespace lockstep::testing {

// Builds the image tar if needed (parallel tests wait on its lock) and
// imports it into `home` as localhost/cc:debian12.
inline void import_compiler_image(const LockstepHome& home) {
  auto image =
      run_process({"/bin/bash", std::string(LOCKSTEP_SOURCE_DIR) + "/scripts/compiler-image.sh",
                   "--oci", LOCKSTEP_CC_IMAGE_TAR, "--lockstep", LOCKSTEP_BINARY});
  ASSERT_EQ(image.exit_code, 0) << image.out << image.err;
  auto imported =
      home.lockstep({"image", "import", LOCKSTEP_CC_IMAGE_TAR, "--tag", "localhost/cc:debian12"});
  ASSERT_EQ(imported.exit_code, 0) << imported.err;
}

// A git repository `repo` with examples/reproducible-c as committed files,
// as in a clone of lockstep (built files are left out by the example's
// .gitignore), committed at a fixed date.
inline void make_example_repo(const std::filesystem::path& repo) {
  namespace fs = std::filesystem;
  fs::create_directories(repo / "examples");
  fs::copy(fs::path(LOCKSTEP_SOURCE_DIR) / "examples/reproducible-c",
           repo / "examples/reproducible-c", fs::copy_options::recursive);
  for (std::vector<std::string> args : {std::vector<std::string>{"init", "-q", "-b", "main"},
                                        {"add", "-A"},
                                        {"commit", "-q", "-m", "example"}}) {
    args.insert(args.begin(), {"/usr/bin/git", "-C", repo.string()});
    auto r = run_process(args, {"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@e", "GIT_COMMITTER_NAME=t",
                                "GIT_COMMITTER_EMAIL=t@e", "GIT_AUTHOR_DATE=2026-01-01T00:00:00Z",
                                "GIT_COMMITTER_DATE=2026-01-01T00:00:00Z"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
}

}  // namespace lockstep::testing
