#pragma once
// The local-store image verbs. Each takes the arguments after its subcommand
// ("lockstep image import ..." passes what follows "import"), prints its usage
// on --help, reports errors as one "lockstep: error: ..." line and returns
// 0 on success, 1 on failure, 2 on a usage error.
#include <string>
#include <vector>

namespace lockstep::runner {

// <rootfs-dir|rootfs.tar|docker-save.tar|oci-layout-dir|oci.tar> [--tag NAME]:
// prints each imported manifest digest alone on a line of stdout.
int cmd_image_import(const std::vector<std::string>& args);
// [--quiet]: tag, manifest digest and size of every local image.
int cmd_image_ls(const std::vector<std::string>& args);
// REF: the image's record (manifest, config, layers, unpacked or not) as JSON.
int cmd_image_inspect(const std::vector<std::string>& args);
// REF...: removes tags (or, by digest, the image with all its tags); blobs
// and layers are freed by `lockstep cache gc`.
int cmd_image_rm(const std::vector<std::string>& args);
// REF (--oci DIR | --tar FILE)
int cmd_image_export(const std::vector<std::string>& args);

}  // namespace lockstep::runner
