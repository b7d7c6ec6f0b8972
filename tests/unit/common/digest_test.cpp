#include "common/digest.hpp"

#include <gtest/gtest.h>

namespace lockstep {
namespace {

TEST(Digest, KnownVectors) {
  EXPECT_EQ(sha256_of("").str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_of("abc").hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Digest, IncrementalEqualsOneShot) {
  Sha256 h;
  h.update("a");
  h.update("bc");
  EXPECT_EQ(h.finish(), sha256_of("abc"));
}

TEST(Digest, ParseRejectsBadInput) {
  EXPECT_TRUE(Digest::parse("sha256:" + std::string(64, 'a')));
  auto bad = Digest::parse("sha256:ABC");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message(), "invalid digest 'sha256:ABC' (expected sha256:<64 hex digits>)");
  EXPECT_FALSE(Digest::parse("md5:" + std::string(64, 'a')));
  EXPECT_FALSE(Digest::parse("sha256:" + std::string(64, 'A')));
}

}  // namespace
}  // namespace lockstep
