#pragma once
// Reading a GitHub Actions workflow into the model (pipeline/model.hpp).
//
// Every error is ErrorKind::kWorkflow, located and rendered by
// pipeline/diagnostic.hpp:
//
//   ci.yml:12:5: unknown key 'step' in job 'build' (did you mean 'steps'?)
//      12 |     step:
//         |     ^
//
// Keys GitHub has but lockstep does not implement are errors ("'environment'
// in job 'deploy' is not supported by lockstep"); `on` is accepted and
// ignored, `permissions` and `concurrency` are accepted and listed in
// Workflow::ignored. Every ${{ }} is syntax-checked here.
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "pipeline/model.hpp"

namespace lockstep::pipeline {

// The actions lockstep implements itself (with any @version) because the
// real ones talk to GitHub's services; every other action is fetched.
inline const std::vector<std::string_view> kBuiltinActions = {
    "actions/checkout",   "actions/cache",           "actions/cache/restore",
    "actions/cache/save", "actions/upload-artifact", "actions/download-artifact"};

// `file` is used in messages (and stored in Workflow::file) as given. Text
// that is not UTF-8, or holds a control character YAML does not allow, is
// refused first: "ci.yml:7:5: invalid UTF-8 (byte 0xC1)".
Result<Workflow> parse_workflow(std::string_view yaml, const std::string& file);

// Reads the file and parses it; messages name the path as given.
Result<Workflow> load_workflow(const std::filesystem::path& path);

// GitHub's rule for job (and step) ids: a letter or '_' first, then letters,
// digits, '-' and '_'.
bool is_valid_id(std::string_view id);

}  // namespace lockstep::pipeline
