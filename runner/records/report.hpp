#pragma once
// The end of a run: the summary table on the console, and machine-readable
// reports (JUnit XML for Jenkins/GitLab, JSON). Everything passes the Masker.
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "runner/engine/job.hpp"
#include "runner/engine/output.hpp"

namespace lockstep::runner {

struct RunSummary {
  std::string run_id;
  std::string workflow_name;
  std::string workflow_file;
  const std::vector<JobReport>* jobs = nullptr;
  bool interrupted = false;
};

using MatrixFormatter = std::function<std::string(const pipeline::OrderedValue&)>;

void print_summary(Console& console, const RunSummary& run, const MatrixFormatter& matrix);
// A matrix combination as the summary shows it ("cc=gcc, opt=-O2"); "-" for
// an instance without one.
std::string matrix_text(const pipeline::OrderedValue& m);
std::string format_duration(std::chrono::milliseconds d);
// & < > " ' escaped; control characters XML 1.0 forbids (all below 0x20 but
// tab, newline and carriage return) become '?'; bytes that are not UTF-8
// become U+FFFD.
std::string xml_escape(std::string_view s);

// One testsuite per job, one testcase per job instance and per step; a
// failure carries the step's reason and the tail of its log.
Status write_junit(const std::filesystem::path& file, const RunSummary& run, const Masker& masker);
Status write_json(const std::filesystem::path& file, const RunSummary& run, const Masker& masker);

}  // namespace lockstep::runner
