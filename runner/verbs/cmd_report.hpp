#pragma once
// `lockstep report <run|record.json> --html FILE`: writes the run's HTML
// report (runner/records/html_report.hpp) to FILE atomically, or to stdout with
// `--html -`. Exit codes: 0 written, 1 the file could not be written, 2 bad
// input (unknown run, unreadable record, missing --html).
#include <string>
#include <vector>

namespace lockstep::runner {

int cmd_report(const std::vector<std::string>& args);

}  // namespace lockstep::runner
