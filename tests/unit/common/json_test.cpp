#include "common/json.hpp"
#include "common/utf8.hpp"

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

TEST(CanonicalJson, RefusesTextThatIsNotUtf8) {
  auto value = canonical_json(Json{{"env", {{"A", "ok"}, {"B", "x\xC1"}}}});
  ASSERT_FALSE(value);
  EXPECT_EQ(value.error().message(),
            "canonical JSON cannot hold text that is not UTF-8 (at /env/B)");
  auto key = canonical_json(Json{{"o\xC1s", 1}});
  ASSERT_FALSE(key);
  EXPECT_EQ(key.error().message(),
            "canonical JSON cannot hold text that is not UTF-8 (at /o\xEF\xBF\xBDs)");
}

TEST(ParseJson, MessagesAreTextWhateverTheInputHeld) {
  // Found by fuzzing: nlohmann's message quotes the bytes it read last.
  auto r = parse_json("{\"siz\xC1\": 1}", "manifest");
  ASSERT_FALSE(r);
  EXPECT_TRUE(is_valid_utf8(r.error().message())) << r.error().message();
  EXPECT_EQ(r.error().message().rfind("manifest: invalid JSON: ", 0), 0u) << r.error().message();
  EXPECT_NE(r.error().message().find("\xEF\xBF\xBD"), std::string::npos) << r.error().message();
}

TEST(ParseJson, ANumberTooLargeIsAnErrorNotAnException) {
  // Found by fuzzing: nlohmann throws out_of_range, not parse_error, for it.
  auto r = parse_json("{\"size\": 4E00002082961640}", "manifest");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message().rfind("manifest: invalid JSON: ", 0), 0u) << r.error().message();
  EXPECT_NE(r.error().message().find("number overflow"), std::string::npos) << r.error().message();
}

TEST(PrettyJson, WritesInvalidBytesAsReplacementCharacters) {
  EXPECT_EQ(pretty_json(Json{{"k", "a\xC1"}}), "{\n  \"k\": \"a\xEF\xBF\xBD\"\n}\n");
}

TEST(JsonDifferences, ShowsValuesThatAreNotUtf8) {
  auto d = json_differences(Json{{"k", "a"}}, Json{{"k", "a\xC1"}});
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0], "k: \"a\" -> \"a\xEF\xBF\xBD\"");
}

}  // namespace
}  // namespace lockstep
