#pragma once
// Resolving a container user ("", "uid", "uid:gid", "name", "name:group") the
// way Docker does, against the image's own /etc/passwd and /etc/group.
#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace lockstep::executor {

struct Credentials {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary, sorted, without duplicates
  std::string home = "/";
};

// Pure: resolves `user` against the given file contents. A name must exist;
// a numeric uid need not (its gid is then 0, or the passwd entry's gid).
// Supplementary groups: every group in `group_file` listing the user's name,
// plus `extra`.
Result<Credentials> resolve_user(std::string_view user, std::string_view passwd_file,
                                 std::string_view group_file, const std::vector<gid_t>& extra);

// Reads etc/passwd and etc/group below `root_fd` (a directory fd of the
// container's root) without letting a symlink lead out of it. Missing files
// count as empty.
Result<Credentials> resolve_user_in_root(int root_fd, std::string_view user,
                                         const std::vector<gid_t>& extra);

}  // namespace lockstep::executor
