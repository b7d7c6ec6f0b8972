#pragma once
// `lockstep verify`'s pieces: which variations a build applies, and the
// comparison of the artifacts N builds uploaded.
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/json.hpp"
#include "runner/engine/job.hpp"
#include "runner/records/artifact_compare.hpp"

namespace lockstep::runner {

// build-path, hostname (and domain), umask, tz, locale, uid, home, cpus,
// dir-order (disorderfs), clock.
const std::vector<std::string>& variation_names();
// The default set changed by "+name"/"name" (add) and "-name" (remove),
// comma-separated; an unknown name is a usage error naming the known ones.
Result<std::vector<std::string>> parse_vary(const std::vector<std::string>& specs);

struct BuildVariation {
  JobVariation shared;
  std::map<std::string, std::string> env;  // TZ, LANG
  Json description = Json::object();       // what was varied, for the record
};
// Build 0 is not varied; build n >= 1 varies everything in `vary`.
BuildVariation variation_for(size_t build, const std::vector<std::string>& vary);

struct VerifyOutcome {
  std::string verdict;  // reproducible | not-reproducible | failed
  // The verdict, then every differing file with its first difference.
  std::vector<std::string> lines;
  Json differences = Json::array();
  // The differing files diffoscope can compare: where each is in
  // `differences`, the line that names it, and the pair of files.
  struct Detail {
    size_t index = 0;
    std::string heading;
    FileDifference file;
  };
  std::vector<Detail> details;
};
// Compares the artifacts of the same jobs across the builds' records: fast,
// no diffoscope (see add_diffoscope_details).
Result<VerifyOutcome> compare_builds(const std::filesystem::path& state,
                                     const std::vector<Json>& records);

// Runs diffoscope on every detail of `outcome` within `budget` per file, one
// after the other, and puts each report into its entry of
// `outcome.differences` ("diffoscope", "diffoscope_cut",
// "diffoscope_timed_out"); `print` gets the heading and report of each as
// soon as it is done. Nothing happens when diffoscope is not on PATH.
Status add_diffoscope_details(const std::filesystem::path& state, VerifyOutcome& outcome,
                              const DiffoscopeBudget& budget,
                              const std::function<void(const std::string&)>& print);

}  // namespace lockstep::runner
