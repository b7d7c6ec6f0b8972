#pragma once
// `lockstep verify`'s pieces: which variations a build applies, and the
// comparison of the artifacts N builds uploaded.
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/json.hpp"
#include "runner/job.hpp"

namespace lockstep::runner {

// build-path, hostname (and domain), umask, tz, locale, uid, home, cpus,
// dir-order (disorderfs), clock.
const std::vector<std::string>& variation_names();
// The default set changed by "+name"/"name" (add) and "-name" (remove),
// comma-separated; an unknown name is a usage error naming the known ones.
Result<std::vector<std::string>> parse_vary(const std::vector<std::string>& specs);

struct BuildVariation {
  RunShared::Variation shared;
  std::map<std::string, std::string> env;  // TZ, LANG
  Json description = Json::object();       // what was varied, for the record
};
// Build 0 is not varied; build n >= 1 varies everything in `vary`.
BuildVariation variation_for(size_t build, const std::vector<std::string>& vary);

struct VerifyOutcome {
  std::string verdict;  // reproducible | not-reproducible | failed
  std::vector<std::string> lines;
  Json differences = Json::array();
};
// Compares the artifacts of the same jobs across the builds' records.
Result<VerifyOutcome> compare_builds(const std::filesystem::path& state,
                                     const std::vector<Json>& records, bool diffoscope);

}  // namespace lockstep::runner
