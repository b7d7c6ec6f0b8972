#pragma once
// Content-addressed blob store: <root>/blobs/sha256/<hex>. A blob appears under
// its final name only after its bytes were hashed while written, matched the
// expected digest, were fsynced and renamed into place. Two processes writing
// the same blob at once both succeed; the second rename replaces identical
// bytes.
#include <filesystem>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "common/digest.hpp"
#include "common/error.hpp"
#include "common/fd.hpp"

namespace lockstep::cache {

class BlobWriter;

class BlobStore {
 public:
  // root is the state dir; blobs live in root/blobs/sha256, temp files in root/tmp.
  explicit BlobStore(std::filesystem::path root);

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path path(const Digest& d) const;
  bool has(const Digest& d) const;

  // Starts writing a blob. With `expected`, commit() fails (and stores nothing)
  // when the bytes hash to anything else.
  Result<BlobWriter> writer(std::optional<Digest> expected = std::nullopt) const;
  Result<Digest> put(std::string_view bytes) const;
  Result<std::string> read(const Digest& d) const;

  // Opens a stored blob for reading (kNotFound when absent).
  Result<UniqueFd> open(const Digest& d) const;
  Result<uint64_t> size(const Digest& d) const;
  // Streams a file into the store; with `expected`, a mismatch stores nothing.
  Result<Digest> put_file(const std::filesystem::path& file,
                          std::optional<Digest> expected = std::nullopt) const;
  // Every stored digest, sorted.
  Result<std::vector<Digest>> list() const;
  // Removes a blob (used by gc only); a missing blob is success.
  Status remove(const Digest& d) const;

 private:
  std::filesystem::path root_;
};

class BlobWriter {
 public:
  BlobWriter(BlobWriter&&) noexcept;
  BlobWriter& operator=(BlobWriter&&) noexcept;
  ~BlobWriter();  // an uncommitted writer removes its temp file

  Status write(const void* data, size_t len);
  Status write(std::string_view s) { return write(s.data(), s.size()); }
  uint64_t size() const;
  // Ends writing: the digest of the bytes written (the same at every call,
  // and the one commit() stores them under). A caller that checks the bytes
  // before keeping them (a pinned download) reads it here instead of
  // hashing them again; a write() after it fails.
  Digest digest();
  // Verifies, fsyncs, renames into place; returns the digest.
  Result<Digest> commit();

 private:
  friend class BlobStore;
  struct Impl;
  explicit BlobWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace lockstep::cache
