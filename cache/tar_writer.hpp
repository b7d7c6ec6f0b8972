#pragma once
// Deterministic tar output. Whatever the host, the same tree gives the same
// bytes: entries sorted by path (bytewise), mtime 0, uid/gid 0, no user or
// group names, no atime/ctime, pax headers only where ustar cannot say it
// (long names, xattrs), header charset BINARY (no locale conversion), and, when
// compressed, gzip without a timestamp or file name.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string_view>

#include "cache/blob_store.hpp"
#include "common/digest.hpp"
#include "common/error.hpp"

namespace lockstep::cache {

enum class TarCompression { kNone, kGzip };

class TarWriter {
 public:
  // Receives the (possibly compressed) output bytes in order.
  using Sink = std::function<Status(const void* data, size_t len)>;
  static Result<TarWriter> open(Sink sink, TarCompression compression);
  TarWriter(TarWriter&&) noexcept;
  TarWriter& operator=(TarWriter&&) noexcept;
  ~TarWriter();

  // Every entry below `dir` (not `dir` itself), sorted, normalised as above;
  // hardlinks, symlinks, device nodes, fifos, modes (incl. setuid) and xattrs
  // (except host-specific security.selinux) are kept; sockets are skipped.
  Status add_tree(const std::filesystem::path& dir);
  // A regular file entry (mode 0644 unless given) with the given bytes.
  Status add_bytes(std::string_view name, std::string_view bytes, int mode = 0644);
  // A regular file entry whose content is read from `file`.
  Status add_file(std::string_view name, const std::filesystem::path& file, int mode = 0644);
  Status add_dir(std::string_view name, int mode = 0755);

  // Writes the end-of-archive blocks and flushes. Returns the sha256 of the
  // uncompressed tar stream (an OCI layer's diff id).
  Result<Digest> finish();

 private:
  struct Impl;
  explicit TarWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct LayerBlob {
  Digest blob;     // digest of the stored (gzip) blob
  Digest diff_id;  // digest of the uncompressed tar
  uint64_t size = 0;
};

// The deterministic gzip layer of a rootfs directory, written into the store.
Result<LayerBlob> write_tree_layer(const BlobStore& blobs, const std::filesystem::path& dir);

}  // namespace lockstep::cache
