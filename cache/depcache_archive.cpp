#include "cache/depcache_archive.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <system_error>

#include "common/fd.hpp"

namespace lockstep::cache {
namespace fs = std::filesystem;

namespace {

struct ArchiveWriteDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct ArchiveReadDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct EntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

std::string archive_name(const fs::path& p, const JobDirs& dirs) {
  // The more specific root wins when the workspace lies inside home.
  const fs::path ws = dirs.workspace.lexically_normal(), home = dirs.home.lexically_normal();
  const bool in_ws = is_within(p, ws);
  const bool in_home = !home.empty() && is_within(p, home);
  if (in_ws && (!in_home || ws.string().size() >= home.string().size()))
    return ("workspace" / p.lexically_relative(ws)).lexically_normal().string();
  if (in_home) return ("home" / p.lexically_relative(home)).lexically_normal().string();
  return {};
}

struct Sink {
  int fd;
  Sha256 hash;
  uint64_t size = 0;
  int err = 0;
};

la_ssize_t sink_write(archive*, void* client, const void* buf, size_t len) {
  auto* s = static_cast<Sink*>(client);
  const char* p = static_cast<const char*>(buf);
  size_t off = 0;
  while (off < len) {
    ssize_t n = ::write(s->fd, p + off, len - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      s->err = errno;
      return -1;
    }
    off += static_cast<size_t>(n);
  }
  s->hash.update(buf, len);
  s->size += len;
  return static_cast<la_ssize_t>(len);
}

Error archive_error(archive* a, std::string_view what) {
  const char* msg = archive_error_string(a);
  return Error(std::string(what) + ": " + (msg ? msg : "archive error"), archive_errno(a));
}

}  // namespace

std::vector<ArchiveMember> collect_members(const std::vector<fs::path>& matched,
                                           const std::vector<PathPattern>& patterns,
                                           const JobDirs& dirs) {
  std::map<std::string, fs::path> members;
  std::error_code ec;
  auto add = [&](const fs::path& p) {
    std::string name = archive_name(p, dirs);
    if (!name.empty() && !excluded(patterns, p)) members.emplace(std::move(name), p);
  };
  for (const auto& m : matched) {
    add(m);
    if (!fs::is_directory(fs::symlink_status(m, ec))) continue;
    for (auto it = fs::recursive_directory_iterator(m, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) break;
      if (excluded(patterns, it->path())) {
        if (it->is_directory(ec) && !it->is_symlink(ec)) it.disable_recursion_pending();
        continue;
      }
      add(it->path());
    }
  }
  std::vector<ArchiveMember> out;
  out.reserve(members.size());
  for (auto& [name, path] : members) out.push_back({name, path});
  return out;
}

Result<ArchiveInfo> write_archive(const std::vector<ArchiveMember>& members, const fs::path& out) {
  UniqueFd fd(::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return fail_errno("create " + out.string());
  Sink sink{fd.get(), Sha256()};
  std::unique_ptr<archive, ArchiveWriteDeleter> a(archive_write_new());
  archive_write_set_format_pax_restricted(a.get());
  archive_write_add_filter_zstd(a.get());
  archive_write_set_bytes_in_last_block(a.get(), 1);
  if (archive_write_open(a.get(), &sink, nullptr, sink_write, nullptr) != ARCHIVE_OK)
    return fail(archive_error(a.get(), "start archive " + out.string()));
  std::unique_ptr<archive_entry, EntryDeleter> e(archive_entry_new());
  std::vector<char> buf(1 << 16);
  for (const auto& m : members) {
    struct stat st {};
    if (::lstat(m.path.c_str(), &st) != 0) return fail_errno("stat " + m.path.string());
    archive_entry_clear(e.get());
    archive_entry_set_pathname(e.get(), m.name.c_str());
    archive_entry_set_perm(e.get(), st.st_mode & 07777);
    archive_entry_set_mtime(e.get(), st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    UniqueFd in;
    std::string target;
    if (S_ISREG(st.st_mode)) {
      in.reset(::open(m.path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      if (!in) return fail_errno("open " + m.path.string());
      archive_entry_set_filetype(e.get(), AE_IFREG);
      archive_entry_set_size(e.get(), st.st_size);
    } else if (S_ISDIR(st.st_mode)) {
      archive_entry_set_filetype(e.get(), AE_IFDIR);
    } else if (S_ISLNK(st.st_mode)) {
      std::error_code ec;
      target = fs::read_symlink(m.path, ec).string();
      if (ec) return fail(Error("readlink " + m.path.string() + ": " + ec.message(), ec.value()));
      archive_entry_set_filetype(e.get(), AE_IFLNK);
      archive_entry_set_symlink(e.get(), target.c_str());
    } else {
      continue;  // sockets, fifos, devices have no place in a cache
    }
    if (archive_write_header(a.get(), e.get()) != ARCHIVE_OK)
      return fail(archive_error(a.get(), "archive " + m.path.string()));
    if (!in) continue;
    for (;;) {
      ssize_t n = ::read(in.get(), buf.data(), buf.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return fail_errno("read " + m.path.string());
      }
      if (n == 0) break;
      if (archive_write_data(a.get(), buf.data(), static_cast<size_t>(n)) < 0)
        return fail(archive_error(a.get(), "archive " + m.path.string()));
    }
  }
  if (archive_write_close(a.get()) != ARCHIVE_OK)
    return fail(archive_error(a.get(), "finish archive " + out.string()));
  if (sink.err) return fail(Error::from_errno("write " + out.string(), sink.err));
  if (::fsync(fd.get()) != 0) return fail_errno("fsync " + out.string());
  return ArchiveInfo{sink.hash.finish(), sink.size};
}

Status extract_archive(const fs::path& path, const JobDirs& dirs) {
  std::unique_ptr<archive, ArchiveReadDeleter> in(archive_read_new());
  archive_read_support_filter_zstd(in.get());
  archive_read_support_format_tar(in.get());
  if (archive_read_open_filename(in.get(), path.c_str(), 1 << 16) != ARCHIVE_OK)
    return fail(archive_error(in.get(), "open cache archive " + path.string()));
  std::unique_ptr<archive, ArchiveWriteDeleter> out(archive_write_disk_new());
  archive_write_disk_set_options(
      out.get(), ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                     ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_UNLINK);
  archive_entry* e = nullptr;
  for (;;) {
    int rc = archive_read_next_header(in.get(), &e);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK) return fail(archive_error(in.get(), "read " + path.string()));
    const fs::path name = fs::path(archive_entry_pathname(e)).lexically_normal();
    auto it = name.begin();
    const std::string top = it == name.end() ? "" : it->string();
    fs::path rel;
    for (++it; it != name.end(); ++it) {
      if (it->string() == "..") return fail("refusing cache entry '" + name.string() + "'");
      rel /= *it;
    }
    fs::path dest;
    if (top == "workspace")
      dest = dirs.workspace / rel;
    else if (top == "home" && !dirs.home.empty())
      dest = dirs.home / rel;
    else
      return fail("refusing cache entry '" + name.string() + "' in " + path.string());
    archive_entry_set_pathname(e, dest.lexically_normal().c_str());
    if (archive_write_header(out.get(), e) != ARCHIVE_OK)
      return fail(archive_error(out.get(), "restore " + dest.string()));
    const void* block;
    size_t size;
    la_int64_t offset;
    while ((rc = archive_read_data_block(in.get(), &block, &size, &offset)) == ARCHIVE_OK) {
      if (archive_write_data_block(out.get(), block, size, offset) != ARCHIVE_OK)
        return fail(archive_error(out.get(), "restore " + dest.string()));
    }
    if (rc != ARCHIVE_EOF) return fail(archive_error(in.get(), "read " + path.string()));
    if (archive_write_finish_entry(out.get()) != ARCHIVE_OK)
      return fail(archive_error(out.get(), "restore " + dest.string()));
  }
  if (archive_write_close(out.get()) != ARCHIVE_OK)
    return fail(archive_error(out.get(), "finish restore from " + path.string()));
  return {};
}

}  // namespace lockstep::cache
