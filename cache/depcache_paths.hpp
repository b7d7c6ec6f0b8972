#pragma once
// Paths of actions/cache and upload-artifact inputs: several patterns, `~`
// for the job's home, relative to the workspace, globs (`*`, `?`, `[...]`
// within one component, `**` across any number), `!pattern` to exclude.
#include <filesystem>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace lockstep::cache {

// Where a job's relative and `~` paths point.
struct JobDirs {
  std::filesystem::path workspace;
  std::filesystem::path home;
};

// One input pattern made absolute and normal. `exclude` for "!pattern".
struct PathPattern {
  std::string text;            // as the user wrote it
  std::filesystem::path abs;   // absolute, lexically normal, may hold wildcards
  std::filesystem::path base;  // the longest leading part without wildcards
  bool exclude = false;
  bool has_glob = false;
};

bool has_wildcard(const std::string& s);

// Makes patterns absolute. With `confine`, a pattern whose literal part is
// outside both the workspace and home is an error:
// "cache path '/etc' is outside the workspace and home".
Result<std::vector<PathPattern>> resolve_patterns(const std::vector<std::string>& patterns,
                                                  const JobDirs& dirs, bool confine,
                                                  std::string_view what = "cache path");

// Whether `path` (absolute, normal) matches the pattern `abs`.
bool glob_match(const std::filesystem::path& pattern, const std::filesystem::path& path);

// Existing paths matched by the include patterns and not by an exclude
// pattern, sorted, without duplicates. A matched directory stands for
// itself; callers descend into it. Symlinks are matched, never followed.
std::vector<std::filesystem::path> expand_patterns(const std::vector<PathPattern>& patterns);

// Whether `path` is excluded by one of the "!" patterns.
bool excluded(const std::vector<PathPattern>& patterns, const std::filesystem::path& path);

// `path` inside `dir` (both normal)?
bool is_within(const std::filesystem::path& path, const std::filesystem::path& dir);

}  // namespace lockstep::cache
