#pragma once
// runs/<id>/provenance.json: an in-toto Statement v1 whose predicate is SLSA
// Provenance v1, built from a run record alone (docs/provenance.md):
// subjects are the artifacts, resolved dependencies the source commit and
// image digests, byproducts the environment hash of every job.
#include <filesystem>

#include "common/error.hpp"
#include "common/json.hpp"

namespace lockstep::runner {

inline constexpr const char* kStatementType = "https://in-toto.io/Statement/v1";
inline constexpr const char* kSlsaPredicateType = "https://slsa.dev/provenance/v1";
inline constexpr const char* kLockstepBuildType = "https://lockstep.dev/buildtypes/workflow/v1";

// The statement for `record` (a run record, schema v1). Deterministic: the
// same record gives the same bytes. Fails, naming the field, when a digest in
// the record is not "sha256:<64 hex>" (or a commit not 40 hex).
Result<Json> provenance_statement(const Json& record);

// Builds the statement and writes it to `path` atomically (pretty JSON).
Status write_provenance(const Json& record, const std::filesystem::path& path);

}  // namespace lockstep::runner
