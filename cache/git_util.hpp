#pragma once
// Internal helpers shared by the git_*.cpp files: libgit2 initialisation,
// owning pointers for libgit2 objects and errors in lockstep's style. Only
// the cache's .cpp files include this (it pulls in <git2.h>).
#include <git2.h>

#include <memory>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace lockstep::cache::git {

// Initialises libgit2 once per process (never shut down: other threads may
// still hold objects at exit).
void ensure_init();

template <class T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using Repo = std::unique_ptr<git_repository, Deleter<git_repository, git_repository_free>>;
using Remote = std::unique_ptr<git_remote, Deleter<git_remote, git_remote_free>>;
using Object = std::unique_ptr<git_object, Deleter<git_object, git_object_free>>;
using Commit = std::unique_ptr<git_commit, Deleter<git_commit, git_commit_free>>;
using Tree = std::unique_ptr<git_tree, Deleter<git_tree, git_tree_free>>;
using Reference = std::unique_ptr<git_reference, Deleter<git_reference, git_reference_free>>;
using Diff = std::unique_ptr<git_diff, Deleter<git_diff, git_diff_free>>;
using StatusList = std::unique_ptr<git_status_list, Deleter<git_status_list, git_status_list_free>>;
using RefIter = std::unique_ptr<git_reference_iterator,
                                Deleter<git_reference_iterator, git_reference_iterator_free>>;
using Submodule = std::unique_ptr<git_submodule, Deleter<git_submodule, git_submodule_free>>;
using Config = std::unique_ptr<git_config, Deleter<git_config, git_config_free>>;
using TreeEntry = std::unique_ptr<git_tree_entry, Deleter<git_tree_entry, git_tree_entry_free>>;
using Blob = std::unique_ptr<git_blob, Deleter<git_blob, git_blob_free>>;
using Index = std::unique_ptr<git_index, Deleter<git_index, git_index_free>>;
using Signature = std::unique_ptr<git_signature, Deleter<git_signature, git_signature_free>>;

// A git_buf that is disposed of on scope exit.
struct Buf {
  git_buf b = GIT_BUF_INIT;
  Buf() = default;
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  ~Buf() { git_buf_dispose(&b); }
  std::string str() const { return b.ptr ? std::string(b.ptr, b.size) : std::string(); }
};

// "what: <libgit2's last error message>" on one line (newlines folded).
Error error(std::string_view what, int code);
inline tl::unexpected<Error> fail_git(std::string_view what, int code) {
  return tl::unexpected<Error>(error(what, code));
}

std::string oid_hex(const git_oid& oid);
Result<Repo> open_repo(const std::string& path);

}  // namespace lockstep::cache::git
