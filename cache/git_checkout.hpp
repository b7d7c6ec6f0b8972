#pragma once
// actions/checkout's engine: a commit of a mirrored repository written into a
// job's workspace as a normal git repository.
//
// How: the mirror is updated (skipped when `ref` is a full commit id the
// mirror already holds: a commit never changes), the ref is resolved, the
// destination gets a .git whose object store is the mirror's pack files
// hard-linked in (copied when the mirror is on another filesystem) - the
// same thing `git clone --local` does - and the commit's tree is written
// with git_checkout_tree. `origin` points at the original URL; a branch is
// checked out as a local branch (with refs/remotes/origin/<branch>), a tag or
// commit as a detached HEAD. `git log`, `git status`, `git diff` work in the
// job, and the working tree is clean.
//
// fetch_depth: the mirror is always complete (see git_mirror.hpp) and the
// checkout links all of its objects, so history is never truncated (a job
// running `git log` sees all of it, as after a full clone). What depth
// changes is the refs: with 0 every branch (as refs/remotes/origin/*) and
// every tag is written, as actions/checkout's fetch-depth: 0 gives; with
// any other value only the checked-out branch or tag.
//
// An existing destination that is a checkout of the same URL is reused
// (only changed files are written); anything else in it is removed first,
// as actions/checkout does. With `clean`, untracked and ignored files of a
// reused destination are removed and local changes discarded; without it
// they are kept where they do not conflict.
//
// Submodules (kTopLevel / kRecursive) are each fetched through their own
// mirror (relative URLs resolved against the parent's URL) and checked out
// at the commit recorded in the parent's tree, with their own .git directory.
#include <filesystem>
#include <string>
#include <vector>

#include "cache/git_mirror.hpp"
#include "common/error.hpp"

namespace lockstep::cache {

enum class SubmoduleMode { kNone, kTopLevel, kRecursive };

struct CheckoutRequest {
  std::string url;             // any URL libgit2 fetches from, or a local path
  std::string ref;             // branch, tag, commit (full or abbreviated); empty = HEAD
  std::filesystem::path path;  // destination directory (created if missing)
  int fetch_depth = 1;         // 0 = all; see above
  // The commit `ref` resolved to earlier (a run resolves its checkouts before
  // the job's environment hash). When set and the mirror holds it, nothing
  // is fetched and this commit is what gets checked out: under `ref`'s
  // branch or tag when the mirror's ref still names it, detached otherwise.
  std::string commit;
  SubmoduleMode submodules = SubmoduleMode::kNone;
  bool clean = true;
};

struct SubmoduleCheckout {
  std::string path;  // relative to the top-level checkout, nested ones joined with '/'
  std::string url;
  std::string commit;
};

struct CheckoutResult {
  std::string commit;  // 40 hex
  std::string tree;    // 40 hex
  ResolvedRef ref;
  MirrorInfo mirror;
  std::vector<SubmoduleCheckout> submodules;  // in checkout order
};

// Errors are one line and name the repository ("unknown ref 'v9' in ...",
// "cannot fetch repository '...': ...") or the destination.
Result<CheckoutResult> checkout(const GitMirrors& mirrors, const CheckoutRequest& req);

}  // namespace lockstep::cache
