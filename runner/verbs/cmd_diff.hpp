#pragma once
// `lockstep diff <run-a> <run-b>`: what differed between two runs, field by
// field. Inputs first (each job's env_doc, the document behind its
// environment hash, walked recursively; steps whose own documents differ;
// then the run's own inputs), never repeating a change already shown; then
// ambient host facts (never part of a hash); then outputs (job and step
// results, job outputs, artifact and file digests). Exit codes: 0 nothing
// differs, 1 something does, 2 bad input.
#include <string>
#include <vector>

#include "runner/records/record_read.hpp"

namespace lockstep::runner {

// One changed leaf: `path` as `env.CFLAGS`, `steps[1].run`, `env["a b"]`;
// `a`/`b` rendered as JSON (strings quoted), "(absent)" when missing.
struct FieldChange {
  std::string path;
  std::string a;
  std::string b;
  friend bool operator==(const FieldChange&, const FieldChange&) = default;
};

// Appends every difference between `a` and `b` below `prefix` (may be
// empty). Objects are compared key by key, arrays index by index; a value
// whose type differs, or that exists on one side only, is one change (shown
// compactly). Order: keys as they appear in `a`, then keys only in `b`.
void diff_json(const RecordJson& a, const RecordJson& b, const std::string& prefix,
               std::vector<FieldChange>& out);

// `prefix` + `.key` (or `["key"]` for keys that are not plain identifiers).
std::string json_path_key(const std::string& prefix, const std::string& key);

struct RecordDiff {
  std::vector<std::string> identical;  // "<job>: inputs identical (...)"
  std::vector<std::string> inputs;
  std::vector<std::string> ambient;
  std::vector<std::string> outputs;
  bool differs() const { return !inputs.empty() || !ambient.empty() || !outputs.empty(); }
};

// Job instances are matched by name and matrix; lines name the job first:
// `build (gcc, -O2): env.CFLAGS: "-O2" -> "-O3"`.
RecordDiff diff_records(const RecordJson& a, const RecordJson& b);

int cmd_diff(const std::vector<std::string>& args);

}  // namespace lockstep::runner
