#pragma once
// A run's report as one self-contained HTML page (docs/reports.md): inline
// CSS, no scripts, no external fetches. The run header, the matrix of every
// job as a grid coloured by result, and per job its environment hash, image
// digest, steps with their logs folded in <details>, and artifact digests.
// Every string from the record or a log is HTML-escaped.
#include <string>
#include <string_view>

#include "runner/records/record_read.hpp"

namespace lockstep::runner {

std::string html_escape(std::string_view s);

// Reads each job's log (relative to the record's directory); a missing log
// is shown as such, not an error.
std::string render_html_report(const LoadedRecord& record);

// The grid's layout for one job id, exposed for tests: rows are the values
// of the first matrix axis, columns those of the second, further axes are
// combined inside a cell. Values keep first-appearance order.
struct MatrixGrid {
  std::string row_axis, col_axis;       // "" when the job has fewer axes
  std::vector<std::string> rows, cols;  // rendered values
  // cells[r][c] = indexes into the record's jobs array
  std::vector<std::vector<std::vector<size_t>>> cells;
};
MatrixGrid matrix_grid(const RecordJson& jobs, const std::string& job_id);

}  // namespace lockstep::runner
