#include "cache/layer_unpack.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <memory>

#include "cache/gc_lock.hpp"
#include "cache/layer_fs.hpp"
#include "cache/layer_lower.hpp"
#include "common/fs.hpp"
#include "common/userns.hpp"
#include "common/utf8.hpp"

namespace lockstep::cache {
namespace fs = std::filesystem;

namespace {

struct ReadFree {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ReadPtr = std::unique_ptr<archive, ReadFree>;

constexpr std::string_view kWhiteout = ".wh.";

struct DeferredOwner {
  std::string path;  // relative to the layer root; "" is the root
  uid_t uid;
  gid_t gid;
  mode_t mode;
  bool symlink;
};
constexpr std::string_view kOpaque = ".wh..wh..opq";

std::string la_error(archive* a) {
  const char* m = archive_error_string(a);
  return m ? m : "unknown libarchive error";
}

// Two chained readers: `outer` undoes the compression (raw format, any
// filter) and `inner` parses the tar from outer's data, which passes through
// `hash` on the way, so the diff id costs no second read.
struct Pipeline {
  const StreamReader* in = nullptr;
  ReadPtr outer, inner;
  Sha256 hash;
  std::string error;  // from the StreamReader, kept for the message
  char inbuf[1 << 16];
  char midbuf[1 << 16];
  bool outer_eof = false;

  static la_ssize_t read_in(archive*, void* self, const void** buf) {
    auto* p = static_cast<Pipeline*>(self);
    auto n = (*p->in)(p->inbuf, sizeof p->inbuf);
    if (!n) {
      p->error = n.error().message();
      return -1;
    }
    *buf = p->inbuf;
    return static_cast<la_ssize_t>(*n);
  }
  static la_ssize_t read_mid(archive*, void* self, const void** buf) {
    auto* p = static_cast<Pipeline*>(self);
    return p->pull(buf);
  }
  la_ssize_t pull(const void** buf) {
    if (outer_eof) return 0;
    la_ssize_t n = archive_read_data(outer.get(), midbuf, sizeof midbuf);
    if (n < 0) return -1;
    if (n == 0) outer_eof = true;
    hash.update(midbuf, static_cast<size_t>(n));
    *buf = midbuf;
    return n;
  }
};

Error stream_error(const Pipeline& p, archive* a, const std::string& what) {
  if (!p.error.empty()) return Error(what + ": " + p.error);
  return Error(what + ": " + la_error(a), archive_errno(a), ErrorKind::kIntegrity);
}

EntryMeta meta_of(archive_entry* e, const std::string& what, bool* dropped) {
  EntryMeta m;
  m.mode = archive_entry_perm(e);
  m.uid = static_cast<uid_t>(archive_entry_uid(e));
  m.gid = static_cast<gid_t>(archive_entry_gid(e));
  if (archive_entry_mtime_is_set(e)) {
    m.mtime_sec = archive_entry_mtime(e);
    m.mtime_nsec = archive_entry_mtime_nsec(e);
  }
  archive_entry_xattr_reset(e);
  const char* name;
  const void* value;
  size_t size;
  while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    std::string_view n = name;
    // overlayfs reads trusted.overlay.* (user.overlay.* in a user namespace)
    // as instructions (redirects, opaque dirs); only lockstep's own whiteout
    // conversion may set them.
    if (n.starts_with("trusted.overlay.") || n.starts_with("user.overlay.")) {
      *dropped = true;
      spdlog::debug("{}: dropped xattr {}", what, n);
      continue;
    }
    m.xattrs.emplace_back(n, std::string(static_cast<const char*>(value), size));
  }
  return m;
}

class EntryWriter {
 public:
  EntryWriter(RootedWriter& w, const UnpackOptions& o, const LowerLayers& lower, UnpackResult& r)
      : w_(w), opts_(o), lower_(lower), res_(r) {}

  Status write(archive* a, archive_entry* e) {
    const char* raw = archive_entry_pathname(e);
    std::string path = raw ? raw : "";
    LS_TRY_ASSIGN(auto comps, split_entry_path(path));
    ++res_.entries;
    bool dropped = false;
    EntryMeta m = meta_of(e, path, &dropped);
    if (opts_.rootless && opts_.keep_owner && (m.uid != 0 || m.gid != 0) &&
        !(opts_.whiteouts && !comps.empty() &&
          std::string_view(comps.back()).starts_with(kWhiteout)) &&
        !archive_entry_hardlink(e))
      owners_.push_back({join_path(comps, comps.size()), m.uid, m.gid,
                         static_cast<mode_t>(m.mode & 07777),
                         archive_entry_filetype(e) == AE_IFLNK});
    if (comps.empty()) {  // "./": the layer root itself
      if (archive_entry_filetype(e) != AE_IFDIR)
        return fail("entry '" + path + "' is not a directory");
      LS_TRY_ASSIGN(UniqueFd root, w_.dir({}));
      LS_TRY(w_.apply_meta(root.get(), m, "."));
      w_.defer_dir_mtime({}, m.mtime_sec, m.mtime_nsec);
      return {};
    }
    const std::string& base = comps.back();
    const bool is_whiteout_entry = opts_.whiteouts && std::string_view(base).starts_with(kWhiteout);
    const char* hl = archive_entry_hardlink(e);
    // Before the link's own directory is made: a target copied up from below
    // brings its directories with their metadata, which may be this one.
    if (hl && !is_whiteout_entry) LS_TRY(link_target(comps, hl));
    LS_TRY_ASSIGN(UniqueFd parent, w_.parent_dir(comps, true));
    if (is_whiteout_entry) return whiteout(parent.get(), comps, path);
    if (hl) {
      LS_TRY_ASSIGN(auto target, split_entry_path(hl));
      return w_.make_hardlink(parent.get(), base, target);
    }
    switch (archive_entry_filetype(e)) {
      case AE_IFREG: {
        LS_TRY_ASSIGN(UniqueFd fd, w_.create_file(parent.get(), base));
        LS_TRY(copy_data(a, fd.get(), path));
        return w_.apply_meta(fd.get(), m, path);
      }
      case AE_IFDIR:
        LS_TRY(w_.make_dir(parent.get(), base, m));
        w_.defer_dir_mtime(comps, m.mtime_sec, m.mtime_nsec);
        return {};
      case AE_IFLNK: {
        const char* t = archive_entry_symlink(e);
        return w_.make_symlink(parent.get(), base, t ? t : "", m);
      }
      case AE_IFCHR:
      case AE_IFBLK:
      case AE_IFIFO: {
        mode_t type = archive_entry_filetype(e) == AE_IFCHR   ? S_IFCHR
                      : archive_entry_filetype(e) == AE_IFBLK ? S_IFBLK
                                                              : S_IFIFO;
        dev_t rdev = makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
        auto s = w_.make_node(parent.get(), base, type, rdev, m);
        if (!s && s.error().errnum() == EPERM && type != S_IFIFO) {
          spdlog::info("{}: skipped device node '{}' (not permitted here)", opts_.name, path);
          ++res_.skipped_nodes;
          return {};
        }
        return s;
      }
      default:
        return fail("entry '" + path + "' has an unsupported file type");
    }
  }

 private:
  // Makes sure the target of a hard link is in this layer: it is there, or it
  // is copied up from the layers below; never a whiteout.
  Status link_target(const std::vector<std::string>& comps, const char* link) {
    LS_TRY_ASSIGN(auto target, split_entry_path(link));
    if (target.empty()) return {};  // make_hardlink refuses it
    const std::string what = "hardlink '" + join_path(comps, comps.size()) + "' to '" +
                             join_path(target, target.size()) + "'";
    LS_TRY_ASSIGN(auto here, w_.lookup(target));
    if (here) {
      if (opts_.whiteouts && is_whiteout(*here))
        return fail(Error(what + ": the target was removed by a whiteout earlier in this layer", 0,
                          ErrorKind::kIntegrity));
      return {};
    }
    if (lower_.empty())
      return fail(Error(what + ": no such file in this layer", ENOENT, ErrorKind::kIntegrity));
    LS_TRY(lower_.copy_up(w_, target, what));
    ++res_.copied_up;
    return {};
  }

  Status whiteout(int parent, const std::vector<std::string>& comps, const std::string& path) {
    const std::string& base = comps.back();
    if (base == kOpaque) {
      // Without root: the name overlayfs reads when mounted in a user
      // namespace (userxattr).
      const char* xattr = opts_.rootless ? "user.overlay.opaque" : "trusted.overlay.opaque";
      if (::fsetxattr(parent, xattr, "y", 1, 0) != 0)
        return fail_errno("mark directory of '" + path + "' opaque (" + xattr + ")");
      return {};
    }
    if (std::string_view(base).starts_with(".wh..wh.")) return {};  // aufs metadata
    std::string victim = base.substr(kWhiteout.size());
    if (victim.empty() || victim == "." || victim == "..")
      return fail(Error("whiteout '" + path + "' names no file in its directory", 0,
                        ErrorKind::kIntegrity));
    LS_TRY(w_.remove_at(parent, victim));
    if (::mknodat(parent, victim.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0)
      return fail_errno("create overlay whiteout for '" + path +
                        "' (a 0/0 char device; needs root)");
    return {};
  }

  static Status copy_data(archive* a, int fd, const std::string& path) {
    const void* buf;
    size_t size;
    la_int64_t offset;
    la_int64_t written = 0;
    for (;;) {
      int r = archive_read_data_block(a, &buf, &size, &offset);
      if (r == ARCHIVE_EOF) break;
      if (r < ARCHIVE_WARN) return fail("read '" + path + "': " + la_error(a));
      if (offset > written) {  // a sparse hole
        if (::lseek(fd, offset, SEEK_SET) < 0) return fail_errno("seek in '" + path + "'");
        written = offset;
      }
      const char* p = static_cast<const char*>(buf);
      size_t left = size;
      while (left > 0) {
        ssize_t n = ::write(fd, p, left);
        if (n < 0) {
          if (errno == EINTR) continue;
          return fail_errno("write '" + path + "'");
        }
        p += n;
        left -= static_cast<size_t>(n);
      }
      written += static_cast<la_int64_t>(size);
    }
    if (::ftruncate(fd, written) != 0) return fail_errno("truncate '" + path + "'");
    return {};
  }

 public:
  // Rootless: owners to set as root of the user namespace afterwards.
  std::vector<DeferredOwner> owners_;

 private:
  RootedWriter& w_;
  const UnpackOptions& opts_;
  const LowerLayers& lower_;
  UnpackResult& res_;
};

// Sets the owners the archive gives (ids inside the container) as root of
// the rootless user namespace, which maps them to the user's subordinate ids;
// ids outside the mapping stay the user's (root inside) and are counted.
Status apply_owners(const fs::path& dest, const std::vector<DeferredOwner>& owners,
                    uint64_t* unmapped) {
  LS_TRY_ASSIGN(RootlessMapping m, rootless_mapping());
  uint32_t mapped = 1;
  for (const auto& r : m.uid_map) mapped = std::max(mapped, r.inside + r.count);
  uint32_t mapped_g = 1;
  for (const auto& r : m.gid_map) mapped_g = std::max(mapped_g, r.inside + r.count);
  std::vector<const DeferredOwner*> todo;
  for (const auto& o : owners) {
    if (o.uid >= mapped || o.gid >= mapped_g) {
      ++*unmapped;
      continue;
    }
    todo.push_back(&o);
  }
  if (todo.empty()) return {};
  return run_as_userns_root(
      [&]() -> Status {
        UniqueFd root(::open(dest.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!root) return fail_errno("open " + dest.string());
        for (const DeferredOwner* o : todo) {
          const char* rel = o->path.empty() ? "." : o->path.c_str();
          if (::fchownat(root.get(), rel, o->uid, o->gid, AT_SYMLINK_NOFOLLOW) != 0)
            return fail_errno("chown '" + o->path + "'");
          // chown clears setuid and setgid bits.
          if (!o->symlink && (o->mode & 06000) && ::fchmodat(root.get(), rel, o->mode, 0) != 0)
            return fail_errno("chmod '" + o->path + "'");
        }
        return {};
      },
      "set the owners of " + dest.string());
}

Result<UnpackResult> unpack_tar_stream_raw(const StreamReader& in, const fs::path& dest,
                                           const UnpackOptions& opts) {
  auto p = std::make_unique<Pipeline>();
  p->in = &in;
  p->outer.reset(archive_read_new());
  archive* outer = p->outer.get();
  archive_read_support_filter_all(outer);
  archive_read_support_format_raw(outer);
  if (archive_read_open2(outer, p.get(), nullptr, &Pipeline::read_in, nullptr, nullptr) !=
      ARCHIVE_OK)
    return fail(stream_error(*p, outer, opts.name));
  archive_entry* ent = nullptr;
  int r = archive_read_next_header(outer, &ent);
  if (r == ARCHIVE_EOF) return fail(Error(opts.name + ": empty stream", 0, ErrorKind::kIntegrity));
  if (r < ARCHIVE_WARN) return fail(stream_error(*p, outer, opts.name));

  p->inner.reset(archive_read_new());
  archive* inner = p->inner.get();
  archive_read_support_format_tar(inner);
  archive_read_support_format_gnutar(inner);
  if (archive_read_open2(inner, p.get(), nullptr, &Pipeline::read_mid, nullptr, nullptr) !=
      ARCHIVE_OK)
    return fail(stream_error(*p, inner, opts.name));

  LS_TRY_ASSIGN(RootedWriter w, RootedWriter::open(dest.string()));
  // Without root, files are created as the user (root inside) and their
  // owners set afterwards in the user namespace (apply_owners).
  w.set_keep_owner(opts.keep_owner && !opts.rootless);
  if (::fchmod(w.root_fd(), 0755) != 0) return fail_errno("chmod " + dest.string());
  LS_TRY_ASSIGN(LowerLayers lower, LowerLayers::open(opts.lower_layers));
  UnpackResult res;
  EntryWriter writer(w, opts, lower, res);
  for (;;) {
    r = archive_read_next_header(inner, &ent);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) return fail(stream_error(*p, inner, opts.name));
    auto s = writer.write(inner, ent);
    if (!s) return fail(std::move(s.error()).context(opts.name));
  }
  // The tar reader stops at the end-of-archive blocks; the diff id covers
  // every byte of the uncompressed stream, padding included.
  const void* buf;
  for (;;) {
    la_ssize_t n = p->pull(&buf);
    if (n < 0) return fail(stream_error(*p, outer, opts.name));
    if (n == 0) break;
  }
  LS_TRY(w.finish_dir_mtimes());
  if (!writer.owners_.empty()) {
    auto s = apply_owners(dest, writer.owners_, &res.unmapped_owners);
    if (!s) return fail(std::move(s.error()).context(opts.name));
    if (res.unmapped_owners > 0)
      spdlog::info("{}: {} files owned by ids outside the user namespace belong to root inside",
                   opts.name, res.unmapped_owners);
  }
  res.diff_id = p->hash.finish();
  return res;
}

}  // namespace

Result<UnpackResult> unpack_tar_stream(const StreamReader& in, const fs::path& dest,
                                       const UnpackOptions& opts) {
  // Entry names and libarchive's messages quote what the archive holds:
  // the message says it as one line of text.
  auto r = unpack_tar_stream_raw(in, dest, opts);
  if (!r) return fail(Error(printable(r.error().message()), r.error().errnum(), r.error().kind()));
  return r;
}

Result<UnpackResult> unpack_tar_fd(int fd, const fs::path& dest, const UnpackOptions& opts) {
  StreamReader rd = [fd](void* buf, size_t len) -> Result<size_t> {
    for (;;) {
      ssize_t n = ::read(fd, buf, len);
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) return fail_errno("read");
    }
  };
  return unpack_tar_stream(rd, dest, opts);
}

fs::path layer_dir(const fs::path& state, const Digest& diff_id) {
  return state / "layers" / diff_id.hex();
}

fs::path chain_layer_dir(const fs::path& state, const Digest& chain_id) {
  return state / "layers" / ("chain-" + chain_id.hex());
}

std::vector<std::string> layer_dir_names(const Digest& diff_id, const Digest& chain_id) {
  return {diff_id.hex(), "chain-" + chain_id.hex()};
}

std::optional<fs::path> unpacked_layer_dir(const fs::path& state, const Digest& diff_id,
                                           const Digest& chain_id) {
  struct stat st {};
  for (fs::path p : {layer_dir(state, diff_id), chain_layer_dir(state, chain_id)})
    if (::stat(p.c_str(), &st) == 0) return p;
  return std::nullopt;
}

std::vector<Digest> chain_ids(const std::vector<Digest>& diff_ids) {
  std::vector<Digest> out;
  out.reserve(diff_ids.size());
  for (const auto& d : diff_ids)
    out.push_back(out.empty() ? d : sha256_of(out.back().str() + " " + d.str()));
  return out;
}

Result<fs::path> ensure_layer(const fs::path& state, const Digest& diff_id, const std::string& name,
                              const std::function<Result<StreamReader>()>& open,
                              const LayerParents* parents) {
  const bool below = parents && !parents->dirs.empty();
  const fs::path alone = layer_dir(state, diff_id);
  const fs::path chained = below ? chain_layer_dir(state, parents->chain_id) : fs::path();
  auto existing = [&]() -> std::optional<fs::path> {
    struct stat st {};
    if (::stat(alone.c_str(), &st) == 0) return alone;
    if (below && ::stat(chained.c_str(), &st) == 0) return chained;
    return std::nullopt;
  };
  if (auto d = existing()) return *d;
  LS_TRY_ASSIGN(UniqueFd lock, lock_file(state / "layers" / (".lock-" + diff_id.hex()), LOCK_EX));
  if (auto d = existing()) return *d;  // the other process won
  LS_TRY_ASSIGN(TempDir tmp, TempDir::create(state / "tmp", "layer-"));
  LS_TRY_ASSIGN(StreamReader in, open());
  UnpackOptions opts;
  opts.name = name;
  if (below) opts.lower_layers = parents->dirs;
  LS_TRY_ASSIGN(UnpackResult res, unpack_tar_stream(in, tmp.path(), opts));
  if (res.diff_id != diff_id)
    return fail(Error(name + ": diff id mismatch: the image config says " + diff_id.str() +
                          ", the content is " + res.diff_id.str(),
                      0, ErrorKind::kIntegrity));
  const fs::path& dest = res.copied_up > 0 ? chained : alone;
  UniqueFd dfd(::open(tmp.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dfd || ::syncfs(dfd.get()) != 0) return fail_errno("sync " + tmp.path().string());
  if (::rename(tmp.path().c_str(), dest.c_str()) != 0)
    return fail_errno("move layer into " + dest.string());
  tmp.release();
  LS_TRY(fsync_dir(dest.parent_path()));
  if (res.copied_up > 0)
    spdlog::debug("{}: {} hard-link target(s) copied up from the layers below; stored as {}", name,
                  res.copied_up, dest.filename().string());
  return dest;
}

Result<fs::path> ensure_layer_tee(const fs::path& state, const Digest& diff_id,
                                  const std::string& name, const StreamReader& in,
                                  BlobWriter& blob) {
  StreamReader tee = [&](void* buf, size_t len) -> Result<size_t> {
    LS_TRY_ASSIGN(size_t n, in(buf, len));
    LS_TRY(blob.write(buf, n));
    return n;
  };
  auto dir = ensure_layer(state, diff_id, name, [&]() -> Result<StreamReader> { return tee; });
  if (!dir) return dir;
  // Already unpacked (the stream was not read), or bytes after the compressed
  // stream's end that the decompressor never asked for: the blob gets them all.
  char buf[1 << 16];
  for (;;) {
    LS_TRY_ASSIGN(size_t n, tee(buf, sizeof buf));
    if (n == 0) break;
  }
  return dir;
}

Result<fs::path> ensure_layer_from_blob(const fs::path& state, const BlobStore& blobs,
                                        const Digest& blob, const Digest& diff_id,
                                        const LayerParents* parents) {
  auto fd = std::make_shared<UniqueFd>();
  return ensure_layer(
      state, diff_id, "layer " + blob.str(),
      [&]() -> Result<StreamReader> {
        LS_TRY_ASSIGN(*fd, blobs.open(blob));
        int raw = fd->get();
        return StreamReader([raw](void* buf, size_t len) -> Result<size_t> {
          for (;;) {
            ssize_t n = ::read(raw, buf, len);
            if (n >= 0) return static_cast<size_t>(n);
            if (errno != EINTR) return fail_errno("read");
          }
        });
      },
      parents);
}

}  // namespace lockstep::cache
