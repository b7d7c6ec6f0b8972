#include "common/json.hpp"

#include <gtest/gtest.h>

namespace lockstep {
namespace {

TEST(CanonicalJson, SortsKeysWithoutWhitespace) {
  Json a = Json::parse(R"({"b": 1, "a": {"z": [1, "x"], "c": null}})");
  EXPECT_EQ(*canonical_json(a), R"({"a":{"c":null,"z":[1,"x"]},"b":1})");
  Json b = Json::parse(R"({"a": {"c": null, "z": [1, "x"]}, "b": 1})");
  EXPECT_EQ(*canonical_json(a), *canonical_json(b));
}

TEST(CanonicalJson, RefusesFloats) {
  auto r = canonical_json(Json::parse(R"({"limits": {"cpus": 0.5}})"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "canonical JSON cannot hold a floating-point number (at /limits/cpus)");
}

TEST(CanonicalJson, KeepsUtf8) {
  EXPECT_EQ(*canonical_json(Json{{"k", "h\xc3\xa9"}}), "{\"k\":\"h\xc3\xa9\"}");
}

}  // namespace
}  // namespace lockstep
