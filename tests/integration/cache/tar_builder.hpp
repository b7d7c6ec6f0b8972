#pragma once
// Builds layer tarballs in memory with libarchive, entry by entry, so tests
// can say exactly what a (possibly hostile) layer contains.
#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include <string>
#include <utility>
#include <vector>

namespace lockstep::cache::testing {

struct TarEntry {
  std::string path;
  mode_t type = S_IFREG;  // S_IFREG, S_IFDIR, S_IFLNK, S_IFCHR, ...
  std::string data;       // file content
  std::string link;       // symlink target
  std::string hardlink;   // hardlink target (type ignored)
  mode_t mode = 0644;
  int uid = 0, gid = 0;
  long mtime = 1700000000;
  unsigned rdev_major = 0, rdev_minor = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
};

inline TarEntry file(std::string p, std::string data, mode_t mode = 0644) {
  TarEntry e;
  e.path = std::move(p);
  e.data = std::move(data);
  e.mode = mode;
  return e;
}
inline TarEntry directory(std::string p, mode_t mode = 0755) {
  TarEntry e;
  e.path = std::move(p);
  e.type = S_IFDIR;
  e.mode = mode;
  return e;
}
inline TarEntry symlink(std::string p, std::string target) {
  TarEntry e;
  e.path = std::move(p);
  e.type = S_IFLNK;
  e.link = std::move(target);
  e.mode = 0777;
  return e;
}
inline TarEntry hardlink(std::string p, std::string target) {
  TarEntry e;
  e.path = std::move(p);
  e.hardlink = std::move(target);
  return e;
}

enum class Filter { kNone, kGzip, kZstd };

// The uncompressed tar (for diff ids) and the layer blob (compressed as asked).
struct BuiltTar {
  std::string tar;
  std::string blob;
};

inline std::string write_archive(const std::vector<TarEntry>& entries, Filter f) {
  std::string out;
  archive* a = archive_write_new();
  if (f == Filter::kGzip) archive_write_add_filter_gzip(a);
  if (f == Filter::kZstd) archive_write_add_filter_zstd(a);
  archive_write_set_format_pax_restricted(a);
  archive_write_set_bytes_in_last_block(a, 1);
  archive_write_open2(
      a, &out, nullptr,
      [](archive*, void* s, const void* b, size_t n) -> la_ssize_t {
        static_cast<std::string*>(s)->append(static_cast<const char*>(b), n);
        return static_cast<la_ssize_t>(n);
      },
      nullptr, nullptr);
  for (const auto& t : entries) {
    archive_entry* e = archive_entry_new();
    archive_entry_copy_pathname(e, t.path.c_str());
    archive_entry_set_uid(e, t.uid);
    archive_entry_set_gid(e, t.gid);
    archive_entry_set_mtime(e, t.mtime, 0);
    archive_entry_set_perm(e, t.mode);
    if (!t.hardlink.empty()) {
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_copy_hardlink(e, t.hardlink.c_str());
      archive_entry_set_size(e, 0);
    } else {
      archive_entry_set_filetype(e, t.type);
      if (t.type == S_IFLNK) archive_entry_copy_symlink(e, t.link.c_str());
      if (t.type == S_IFREG) archive_entry_set_size(e, static_cast<la_int64_t>(t.data.size()));
      if (t.type == S_IFCHR || t.type == S_IFBLK) {
        archive_entry_set_rdevmajor(e, t.rdev_major);
        archive_entry_set_rdevminor(e, t.rdev_minor);
      }
    }
    for (const auto& [k, v] : t.xattrs)
      archive_entry_xattr_add_entry(e, k.c_str(), v.data(), v.size());
    archive_write_header(a, e);
    if (t.type == S_IFREG && t.hardlink.empty() && !t.data.empty())
      archive_write_data(a, t.data.data(), t.data.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

inline BuiltTar build_tar(const std::vector<TarEntry>& entries, Filter f) {
  return BuiltTar{write_archive(entries, Filter::kNone), write_archive(entries, f)};
}

}  // namespace lockstep::cache::testing
