#include "cache/tar_writer.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "common/fd.hpp"

namespace lockstep::cache {
namespace fs = std::filesystem;

namespace {

struct ArchiveFree {
  void operator()(archive* a) const { archive_write_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveFree>;
struct EntryFree {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};
using EntryPtr = std::unique_ptr<archive_entry, EntryFree>;

Error archive_error(archive* a, std::string_view what) {
  const char* msg = archive_error_string(a);
  return Error(std::string(what) + ": " + (msg ? msg : "unknown libarchive error"),
               archive_errno(a));
}

struct Item {
  std::string rel;
  struct stat st;
};

Status walk(int dirfd, const std::string& prefix, std::vector<Item>& out) {
  int dup = ::dup(dirfd);
  if (dup < 0) return fail_errno("dup");
  DIR* d = ::fdopendir(dup);
  if (!d) {
    ::close(dup);
    return fail_errno("opendir " + prefix);
  }
  std::vector<std::string> names;
  errno = 0;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  int err = errno;
  ::closedir(d);
  if (err) return fail(Error::from_errno("read directory " + prefix, err));
  for (const auto& n : names) {
    Item it{prefix + n, {}};
    if (::fstatat(dirfd, n.c_str(), &it.st, AT_SYMLINK_NOFOLLOW) != 0)
      return fail_errno("stat " + it.rel);
    bool is_dir = S_ISDIR(it.st.st_mode);
    out.push_back(it);
    if (is_dir) {
      UniqueFd sub(::openat(dirfd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub) return fail_errno("open " + it.rel);
      LS_TRY(walk(sub.get(), prefix + n + "/", out));
    }
  }
  return {};
}

// Sorted xattrs of one path (not followed); security.selinux is host policy,
// not image content, so it is left out.
Result<std::map<std::string, std::string>> read_xattrs(const fs::path& p) {
  std::map<std::string, std::string> out;
  ssize_t len = ::llistxattr(p.c_str(), nullptr, 0);
  if (len < 0) {
    if (errno == ENOTSUP) return out;
    return fail_errno("list xattrs of " + p.string());
  }
  std::string names(static_cast<size_t>(len), '\0');
  len = ::llistxattr(p.c_str(), names.data(), names.size());
  if (len < 0) return fail_errno("list xattrs of " + p.string());
  names.resize(static_cast<size_t>(len));
  for (size_t i = 0; i < names.size();) {
    std::string name = names.c_str() + i;
    i += name.size() + 1;
    if (name.empty() || name == "security.selinux") continue;
    ssize_t vl = ::lgetxattr(p.c_str(), name.c_str(), nullptr, 0);
    if (vl < 0) return fail_errno("read xattr " + name + " of " + p.string());
    std::string v(static_cast<size_t>(vl), '\0');
    vl = ::lgetxattr(p.c_str(), name.c_str(), v.data(), v.size());
    if (vl < 0) return fail_errno("read xattr " + name + " of " + p.string());
    v.resize(static_cast<size_t>(vl));
    out.emplace(name, std::move(v));
  }
  return out;
}

}  // namespace

struct TarWriter::Impl {
  Sink sink;
  ArchivePtr tar;
  ArchivePtr gz;  // raw-format gzip stage, or null
  Sha256 tar_hash;
  Status status;  // first error of a callback

  static la_ssize_t tar_out(archive*, void* self, const void* buf, size_t len) {
    auto* m = static_cast<Impl*>(self);
    m->tar_hash.update(buf, len);
    if (m->gz) {
      la_ssize_t n = archive_write_data(m->gz.get(), buf, len);
      if (n < 0) {
        if (m->status) m->status = fail(archive_error(m->gz.get(), "gzip"));
        return -1;
      }
      return static_cast<la_ssize_t>(len);
    }
    return sink_out(nullptr, self, buf, len);
  }
  static la_ssize_t sink_out(archive*, void* self, const void* buf, size_t len) {
    auto* m = static_cast<Impl*>(self);
    auto s = m->sink(buf, len);
    if (!s) {
      if (m->status) m->status = s;
      return -1;
    }
    return static_cast<la_ssize_t>(len);
  }

  Status check(int r, archive* a, std::string_view what) {
    if (r >= ARCHIVE_WARN && r != ARCHIVE_WARN) return {};
    if (!status) return status;
    if (r == ARCHIVE_WARN) return fail(archive_error(a, what));
    return fail(archive_error(a, what));
  }

  EntryPtr base_entry(std::string_view name) {
    EntryPtr e(archive_entry_new());
    archive_entry_copy_pathname(e.get(), std::string(name).c_str());
    archive_entry_set_uid(e.get(), 0);
    archive_entry_set_gid(e.get(), 0);
    archive_entry_set_mtime(e.get(), 0, 0);
    return e;
  }

  Status write_data_from(int fd, int64_t size, const std::string& what) {
    char buf[1 << 16];
    int64_t done = 0;
    while (done < size) {
      ssize_t n = ::read(fd, buf, static_cast<size_t>(std::min<int64_t>(sizeof buf, size - done)));
      if (n < 0) {
        if (errno == EINTR) continue;
        return fail_errno("read " + what);
      }
      if (n == 0) return fail("read " + what + ": file shrank while it was archived");
      if (archive_write_data(tar.get(), buf, static_cast<size_t>(n)) < 0)
        return status ? fail(archive_error(tar.get(), "write " + what)) : status;
      done += n;
    }
    return {};
  }
};

TarWriter::TarWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TarWriter::TarWriter(TarWriter&&) noexcept = default;
TarWriter& TarWriter::operator=(TarWriter&&) noexcept = default;
TarWriter::~TarWriter() = default;

Result<TarWriter> TarWriter::open(Sink sink, TarCompression compression) {
  auto m = std::make_unique<Impl>();
  m->sink = std::move(sink);
  if (compression == TarCompression::kGzip) {
    m->gz.reset(archive_write_new());
    archive* g = m->gz.get();
    // "!timestamp": the gzip header's mtime is 0; libarchive writes no name.
    if (archive_write_add_filter_gzip(g) != ARCHIVE_OK ||
        archive_write_set_filter_option(g, "gzip", "timestamp", nullptr) != ARCHIVE_OK ||
        archive_write_set_format_raw(g) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(g, 1) != ARCHIVE_OK)
      return fail(archive_error(g, "set up gzip"));
    if (archive_write_open2(g, m.get(), nullptr, &Impl::sink_out, nullptr, nullptr) != ARCHIVE_OK)
      return fail(archive_error(g, "open gzip stream"));
    EntryPtr e(archive_entry_new());
    archive_entry_copy_pathname(e.get(), "layer.tar");
    archive_entry_set_filetype(e.get(), AE_IFREG);
    if (archive_write_header(g, e.get()) != ARCHIVE_OK)
      return fail(archive_error(g, "start gzip stream"));
  }
  m->tar.reset(archive_write_new());
  archive* t = m->tar.get();
  if (archive_write_set_format_pax_restricted(t) != ARCHIVE_OK ||
      archive_write_set_format_option(t, "pax", "hdrcharset", "BINARY") != ARCHIVE_OK)
    return fail(archive_error(t, "set up tar format"));
  if (archive_write_open2(t, m.get(), nullptr, &Impl::tar_out, nullptr, nullptr) != ARCHIVE_OK)
    return fail(archive_error(t, "open tar stream"));
  return TarWriter(std::move(m));
}

Status TarWriter::add_tree(const fs::path& dir) {
  Impl& m = *impl_;
  UniqueFd root(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root) return fail_errno("open " + dir.string());
  std::vector<Item> items;
  LS_TRY(walk(root.get(), "", items));
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.rel < b.rel; });
  // The first path (in sorted order) of a multiply linked inode carries the
  // data; later ones are hardlinks to it, so the choice is host-independent.
  std::map<std::pair<dev_t, ino_t>, std::string> first_link;
  for (const Item& it : items) {
    const struct stat& st = it.st;
    if (S_ISSOCK(st.st_mode)) continue;
    fs::path full = dir / it.rel;
    EntryPtr e = m.base_entry(it.rel);
    archive_entry_set_perm(e.get(), st.st_mode & 07777);
    bool data = false;
    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
      auto [pos, fresh] = first_link.emplace(std::pair(st.st_dev, st.st_ino), it.rel);
      if (!fresh) {
        archive_entry_set_filetype(e.get(), AE_IFREG);
        archive_entry_copy_hardlink(e.get(), pos->second.c_str());
        archive_entry_set_size(e.get(), 0);
        LS_TRY(m.check(archive_write_header(m.tar.get(), e.get()), m.tar.get(),
                       "write tar entry " + it.rel));
        continue;
      }
    }
    if (S_ISREG(st.st_mode)) {
      archive_entry_set_filetype(e.get(), AE_IFREG);
      archive_entry_set_size(e.get(), st.st_size);
      data = st.st_size > 0;
    } else if (S_ISDIR(st.st_mode)) {
      archive_entry_set_filetype(e.get(), AE_IFDIR);
    } else if (S_ISLNK(st.st_mode)) {
      archive_entry_set_filetype(e.get(), AE_IFLNK);
      std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
      ssize_t n = ::readlink(full.c_str(), target.data(), target.size());
      if (n < 0) return fail_errno("readlink " + full.string());
      target.resize(static_cast<size_t>(n));
      archive_entry_copy_symlink(e.get(), target.c_str());
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      archive_entry_set_filetype(e.get(), S_ISCHR(st.st_mode) ? AE_IFCHR : AE_IFBLK);
      archive_entry_set_rdevmajor(e.get(), major(st.st_rdev));
      archive_entry_set_rdevminor(e.get(), minor(st.st_rdev));
    } else if (S_ISFIFO(st.st_mode)) {
      archive_entry_set_filetype(e.get(), AE_IFIFO);
    }
    LS_TRY_ASSIGN(auto xattrs, read_xattrs(full));
    for (const auto& [k, v] : xattrs)
      archive_entry_xattr_add_entry(e.get(), k.c_str(), v.data(), v.size());
    if (data) {
      UniqueFd fd(::open(full.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      if (!fd) return fail_errno("open " + full.string());
      LS_TRY(m.check(archive_write_header(m.tar.get(), e.get()), m.tar.get(),
                     "write tar entry " + it.rel));
      LS_TRY(m.write_data_from(fd.get(), st.st_size, full.string()));
    } else {
      LS_TRY(m.check(archive_write_header(m.tar.get(), e.get()), m.tar.get(),
                     "write tar entry " + it.rel));
    }
  }
  return {};
}

Status TarWriter::add_bytes(std::string_view name, std::string_view bytes, int mode) {
  Impl& m = *impl_;
  EntryPtr e = m.base_entry(name);
  archive_entry_set_filetype(e.get(), AE_IFREG);
  archive_entry_set_perm(e.get(), static_cast<mode_t>(mode));
  archive_entry_set_size(e.get(), static_cast<la_int64_t>(bytes.size()));
  LS_TRY(m.check(archive_write_header(m.tar.get(), e.get()), m.tar.get(),
                 "write tar entry " + std::string(name)));
  if (!bytes.empty() && archive_write_data(m.tar.get(), bytes.data(), bytes.size()) < 0)
    return m.status ? fail(archive_error(m.tar.get(), "write " + std::string(name))) : m.status;
  return {};
}

Status TarWriter::add_file(std::string_view name, const fs::path& file, int mode) {
  Impl& m = *impl_;
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail_errno("open " + file.string());
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail_errno("stat " + file.string());
  EntryPtr e = m.base_entry(name);
  archive_entry_set_filetype(e.get(), AE_IFREG);
  archive_entry_set_perm(e.get(), static_cast<mode_t>(mode));
  archive_entry_set_size(e.get(), st.st_size);
  LS_TRY(m.check(archive_write_header(m.tar.get(), e.get()), m.tar.get(),
                 "write tar entry " + std::string(name)));
  return m.write_data_from(fd.get(), st.st_size, file.string());
}

Status TarWriter::add_dir(std::string_view name, int mode) {
  Impl& m = *impl_;
  EntryPtr e = m.base_entry(name);
  archive_entry_set_filetype(e.get(), AE_IFDIR);
  archive_entry_set_perm(e.get(), static_cast<mode_t>(mode));
  return m.check(archive_write_header(m.tar.get(), e.get()), m.tar.get(),
                 "write tar entry " + std::string(name));
}

Result<Digest> TarWriter::finish() {
  Impl& m = *impl_;
  if (archive_write_close(m.tar.get()) != ARCHIVE_OK)
    return m.status ? fail(archive_error(m.tar.get(), "finish tar")) : fail(m.status.error());
  if (m.gz && archive_write_close(m.gz.get()) != ARCHIVE_OK)
    return m.status ? fail(archive_error(m.gz.get(), "finish gzip")) : fail(m.status.error());
  if (!m.status) return fail(m.status.error());
  return m.tar_hash.finish();
}

Result<LayerBlob> write_tree_layer(const BlobStore& blobs, const fs::path& dir) {
  LS_TRY_ASSIGN(auto writer, blobs.writer());
  LS_TRY_ASSIGN(auto tar,
                TarWriter::open([&](const void* p, size_t n) { return writer.write(p, n); },
                                TarCompression::kGzip));
  LS_TRY(tar.add_tree(dir));
  LS_TRY_ASSIGN(Digest diff_id, tar.finish());
  uint64_t size = writer.size();
  LS_TRY_ASSIGN(Digest blob, writer.commit());
  return LayerBlob{blob, diff_id, size};
}

}  // namespace lockstep::cache
