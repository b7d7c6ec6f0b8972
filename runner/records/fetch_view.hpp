#pragma once
// A job's fetch record (`egress` in record.json, docs/network.md) for people:
// lines for `runs show`, a table for the HTML report, and what changed
// between two runs for `diff`.
#include <string>
#include <vector>

#include "pipeline/lockfile.hpp"
#include "runner/records/record_read.hpp"

namespace lockstep::runner {

// One line per fetch and connection ("GET http://... 200 sha256:... 1.0 MiB"),
// refused ones marked; empty for a job without a fetch record.
std::vector<std::string> fetch_lines(const RecordJson& job);

// The "Network" section of a job in the HTML report; "" without a record.
std::string render_fetches_html(const RecordJson& job);

// Differences of two jobs' fetches, one line each, prefixed by `who`: a URL
// whose content (sha256) or status changed, fetches and destinations on one
// side only, refusals.
void diff_fetches(const std::string& who, const RecordJson& a, const RecordJson& b,
                  std::vector<std::string>& out);

// Every plain-HTTP download a record's jobs received whole (status 200, a
// sha256), as lockstep.lock pins: URL -> sha256, with the jobs that fetched
// it. A URL that two jobs received with different bytes is an error naming
// both digests.
Result<std::vector<pipeline::LockedFetch>> pinned_fetches(const RecordJson& record);

// What a record's jobs fetched that no pin vouched for: plain-HTTP downloads
// not served by a pin, HTTPS tunnels, direct connections (refused ones do
// not count). Sorted, each once ("http://...", "CONNECT host:443",
// "tcp host:80").
std::vector<std::string> unpinned_fetches(const RecordJson& record);

}  // namespace lockstep::runner
