#pragma once
// Writing untrusted archive entries under one directory, and nowhere else.
//
// Every path is resolved against the root's directory fd with
// openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV): a symlink
// met on the way (absolute or with "..") is followed as if the root were "/",
// so it can never lead outside. The last component is then created with *at()
// calls on the parent fd that never follow it (O_EXCL|O_NOFOLLOW after
// removing what was there), so nothing is ever written through a symlink.
#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "common/fd.hpp"

namespace lockstep::cache {

// Splits an archive entry path into components: a leading "/" is dropped
// (absolute paths are taken relative to the root), "" and "." components are
// skipped, ".." is refused. An empty result names the root itself.
Result<std::vector<std::string>> split_entry_path(std::string_view path);

struct EntryMeta {
  mode_t mode = 0;  // permission bits incl. setuid/setgid/sticky
  uid_t uid = 0;
  gid_t gid = 0;
  int64_t mtime_sec = 0;
  long mtime_nsec = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
};

class RootedWriter {
 public:
  // `root` must be an existing directory that this writer owns.
  static Result<RootedWriter> open(const std::string& root);

  // Opens (creating missing directories, mode 0755, owned by root) the parent
  // directory of `comps`. The fd is a real O_RDONLY directory fd.
  Result<UniqueFd> parent_dir(const std::vector<std::string>& comps, bool create);
  // Opens an existing directory (the root for an empty path), never creating it.
  Result<UniqueFd> dir(const std::vector<std::string>& comps);

  // What is at `comps` (symlinks on the way resolved inside the root, the last
  // component not followed), or nullopt when nothing is, or a component on
  // the way is missing or not a directory.
  Result<std::optional<struct stat>> lookup(const std::vector<std::string>& comps);

  // Removes whatever is at parent/name (a whole tree for a directory).
  Status remove_at(int parent, const std::string& name);

  // Each creates the entry in place of what was there (a directory stays a
  // directory and gets the new metadata). Regular files return the open fd.
  Result<UniqueFd> create_file(int parent, const std::string& name);
  Status make_dir(int parent, const std::string& name, const EntryMeta& m);
  Status make_symlink(int parent, const std::string& name, const std::string& target,
                      const EntryMeta& m);
  Status make_hardlink(int parent, const std::string& name, const std::vector<std::string>& target);
  // errno-carrying error when not permitted (the caller decides to skip).
  Status make_node(int parent, const std::string& name, mode_t type, dev_t rdev,
                   const EntryMeta& m);

  // Ownership, mode, xattrs and mtime of an open file or directory (order
  // matters: chown clears setuid bits, so chmod comes after it).
  Status apply_meta(int fd, const EntryMeta& m, std::string_view what);
  // Directory mtimes change as children are added: they are set at the end.
  void defer_dir_mtime(std::vector<std::string> comps, int64_t sec, long nsec);
  Status finish_dir_mtimes();

  int root_fd() const { return root_.get(); }
  // Off: ownership from the archive is ignored (files stay the caller's), for
  // unpacking a user's rootfs tar whose ownership is normalised anyway.
  void set_keep_owner(bool on) { keep_owner_ = on; }

 private:
  explicit RootedWriter(UniqueFd root) : root_(std::move(root)) {}
  Result<UniqueFd> resolve(const std::string& rel, int flags);
  UniqueFd root_;
  bool keep_owner_ = true;
  std::map<std::vector<std::string>, std::pair<int64_t, long>> dir_mtimes_;
};

std::string join_path(const std::vector<std::string>& comps, size_t n);

}  // namespace lockstep::cache
