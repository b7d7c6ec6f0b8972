#pragma once
// The layers below the one being unpacked, read the way overlayfs merges
// them, for a hard link whose target the layer itself does not hold.
//
// OCI layers are changesets applied onto their parents, so a layer may
// hard-link a file that a lower layer added (containerd, Docker and umoci
// accept it). Such a target is copied up into the layer being written, with
// its metadata and that of the directories on its way, and linked there, as
// overlayfs does when a container links a lower file: both names are then one
// inode in the container. The layer directory then depends on the layers
// below; the cache keys it by ChainID (layer_unpack.hpp).
//
// Reading the lower layers is confined like writing: each path component is
// opened with O_NOFOLLOW from the layer's directory fd, never by path, so a
// symlink in a lower layer is never followed (a target path through one is
// refused) and nothing outside the layer directories is read.
#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <vector>

#include "cache/layer_fs.hpp"
#include "common/error.hpp"
#include "common/fd.hpp"

namespace lockstep::cache {

class LowerLayers {
 public:
  LowerLayers() = default;
  // `lowest_first`: unpacked layer directories (overlayfs whiteouts as 0/0
  // char devices, opaque directories marked by trusted.overlay.opaque).
  static Result<LowerLayers> open(const std::vector<std::filesystem::path>& lowest_first);
  bool empty() const { return top_first_.empty(); }

  // Makes the file at `target` as the merged view of `layer` on top of these
  // layers shows it present in `layer`: copies a regular file (data, owner,
  // mode, xattrs, mtime) or a symlink (the link itself) from the topmost lower
  // layer that holds it, creating missing directories on the way with the
  // metadata the merged view gives them. Fails, naming `what`, when a whiteout
  // or an opaque directory hides the target, when its path goes through a
  // symlink or a non-directory, when it is a directory or a device node, and
  // when no layer holds it. trusted.overlay.* xattrs are never copied.
  Status copy_up(RootedWriter& layer, const std::vector<std::string>& target,
                 const std::string& what) const;

 private:
  std::vector<UniqueFd> top_first_;
};

// Whether `st` is an overlayfs whiteout (a 0/0 character device).
bool is_whiteout(const struct stat& st);

}  // namespace lockstep::cache
