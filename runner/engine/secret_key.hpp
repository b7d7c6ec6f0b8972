#pragma once
// The key secrets are hashed under in environment documents
// (docs/environment-hash.md): one per state dir, so a record's secret
// hashes can only be checked where it ran.
#include <filesystem>
#include <string>

#include "common/error.hpp"

namespace lockstep::runner {

// The per-state-dir key of secret hashes (created on first use, 0600), or
// LOCKSTEP_SECRET_HASH_KEY when set.
Result<std::string> secret_hash_key(const std::filesystem::path& state_dir);

}  // namespace lockstep::runner
