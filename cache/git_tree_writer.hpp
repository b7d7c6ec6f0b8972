#pragma once
// Fast path of a checkout into an empty working directory: writes a tree's
// files with openat() against directory fds and builds the index from the
// stat data of what was written, as git itself does. It exists because
// libgit2 1.5's git_checkout_tree resolves every path component of every
// file (about ten readlink calls per file) and is 2-3x slower than git on a
// 10,000-file tree.
//
// It writes bytes exactly as stored: callers must use git_checkout_tree
// instead when content filters could apply (tree_needs_filters()).
#include <git2.h>

#include <filesystem>

#include "common/error.hpp"

namespace lockstep::cache::git {

// True when checking `tree` out could transform content: a .gitattributes
// anywhere in it, core.autocrlf/core.eol/core.attributesFile in the
// repository's config, or a global attributes file.
Result<bool> tree_needs_filters(git_repository* repo, git_tree* tree);

// Writes `tree` into `workdir` (which must be empty apart from .git) and
// replaces the repository's index with the written entries. Gitlinks
// (submodules) become empty directories, as with git.
Status write_tree_fresh(git_repository* repo, git_tree* tree, const std::filesystem::path& workdir);

}  // namespace lockstep::cache::git
