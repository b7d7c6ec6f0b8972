#include "cache/blob_store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <system_error>

#include "common/fs.hpp"

namespace lockstep::cache {
namespace fs = std::filesystem;

namespace {

Status make_dirs(const fs::path& p) {
  std::error_code ec;
  fs::create_directories(p, ec);
  if (ec) return fail(Error("create " + p.string() + ": " + ec.message(), ec.value()));
  return {};
}

}  // namespace

// The bytes go to an unnamed O_TMPFILE in <root>/tmp (so a crashed or abandoned
// writer leaves nothing at all); commit() verifies, fsyncs and links the inode
// to its final name. linkat() never replaces: when another writer committed
// the same digest first, the existing (already verified, identical) blob wins.
// Filesystems without O_TMPFILE fall back to a named temp file + rename.
struct BlobWriter::Impl {
  fs::path root;
  fs::path tmp_name;  // only for the named-temp-file fallback
  UniqueFd fd;
  Sha256 hash;
  uint64_t size = 0;
  std::optional<Digest> expected;
  std::optional<Digest> digest;  // once writing ended
  bool done = false;

  ~Impl() {
    if (!done && !tmp_name.empty()) ::unlink(tmp_name.c_str());
  }
};

BlobWriter::BlobWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BlobWriter::BlobWriter(BlobWriter&&) noexcept = default;
BlobWriter& BlobWriter::operator=(BlobWriter&&) noexcept = default;
BlobWriter::~BlobWriter() = default;

uint64_t BlobWriter::size() const {
  return impl_->size;
}

Status BlobWriter::write(const void* data, size_t len) {
  if (impl_->done) return fail("write to a committed blob");
  if (impl_->digest) return fail("write to a blob whose digest was taken");
  const char* p = static_cast<const char*>(data);
  size_t off = 0;
  while (off < len) {
    ssize_t n = ::write(impl_->fd.get(), p + off, len - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("write blob in " + (impl_->root / "tmp").string());
    }
    off += static_cast<size_t>(n);
  }
  impl_->hash.update(data, len);
  impl_->size += len;
  return {};
}

Digest BlobWriter::digest() {
  if (!impl_->digest) impl_->digest = impl_->hash.finish();
  return *impl_->digest;
}

Result<Digest> BlobWriter::commit() {
  Impl& m = *impl_;
  if (m.done) return fail("blob already committed");
  Digest got = digest();
  m.done = true;  // from here on, every path leaves no temp file behind
  auto drop_tmp = [&] {
    if (!m.tmp_name.empty()) ::unlink(m.tmp_name.c_str());
  };
  if (m.expected && *m.expected != got) {
    drop_tmp();
    return fail(Error("blob " + m.expected->str() + ": digest mismatch: content is " + got.str(), 0,
                      ErrorKind::kIntegrity));
  }
  fs::path dir = m.root / "blobs" / "sha256";
  fs::path final_path = dir / got.hex();
  // Stored already (a blob is in place only once synced): this copy is
  // dropped without syncing it, which for a large body is most of the cost
  // of keeping it.
  struct stat st {};
  if (::stat(final_path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
    drop_tmp();
    m.fd.reset();
    return got;
  }
  if (::fchmod(m.fd.get(), 0444) != 0 || ::fsync(m.fd.get()) != 0) {
    auto e = fail_errno("sync blob " + got.str());
    drop_tmp();
    return e;
  }
  if (m.tmp_name.empty()) {
    std::string proc = "/proc/self/fd/" + std::to_string(m.fd.get());
    if (::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, final_path.c_str(), AT_SYMLINK_FOLLOW) != 0 &&
        errno != EEXIST)
      return fail_errno("store blob " + got.str() + " at " + final_path.string());
  } else if (::rename(m.tmp_name.c_str(), final_path.c_str()) != 0) {
    auto e = fail_errno("store blob " + got.str() + " at " + final_path.string());
    drop_tmp();
    return e;
  }
  m.fd.reset();
  LS_TRY(fsync_dir(dir));
  return got;
}

BlobStore::BlobStore(fs::path root) : root_(std::move(root)) {}

fs::path BlobStore::path(const Digest& d) const {
  return root_ / "blobs" / "sha256" / d.hex();
}

bool BlobStore::has(const Digest& d) const {
  struct stat st {};
  return !d.empty() && ::stat(path(d).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

Result<BlobWriter> BlobStore::writer(std::optional<Digest> expected) const {
  fs::path tmp = root_ / "tmp";
  LS_TRY(make_dirs(tmp));
  LS_TRY(make_dirs(root_ / "blobs" / "sha256"));
  auto impl = std::make_unique<BlobWriter::Impl>();
  impl->root = root_;
  impl->expected = std::move(expected);
  impl->fd = UniqueFd(::open(tmp.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (!impl->fd) {
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
      return fail_errno("create blob temp file in " + tmp.string());
    std::string tmpl = (tmp / "blob-XXXXXX").string();
    impl->fd = UniqueFd(::mkostemp(tmpl.data(), O_CLOEXEC));
    if (!impl->fd) return fail_errno("create blob temp file in " + tmp.string());
    impl->tmp_name = tmpl;
  }
  return BlobWriter(std::move(impl));
}

Result<Digest> BlobStore::put(std::string_view bytes) const {
  LS_TRY_ASSIGN(auto w, writer());
  LS_TRY(w.write(bytes));
  return w.commit();
}

Result<std::string> BlobStore::read(const Digest& d) const {
  auto r = read_file(path(d));
  if (!r) {
    if (r.error().errnum() == ENOENT)
      return fail(Error("blob " + d.str() + " is not in the store at " + root_.string(), ENOENT,
                        ErrorKind::kNotFound));
    return fail(std::move(r.error()).context("read blob " + d.str()));
  }
  return r;
}

Result<UniqueFd> BlobStore::open(const Digest& d) const {
  UniqueFd fd(::open(path(d).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    int e = errno;
    if (e == ENOENT)
      return fail(Error("blob " + d.str() + " is not in the store at " + root_.string(), e,
                        ErrorKind::kNotFound));
    return fail(Error::from_errno("open blob " + d.str(), e));
  }
  return fd;
}

Result<uint64_t> BlobStore::size(const Digest& d) const {
  struct stat st {};
  if (::stat(path(d).c_str(), &st) != 0) {
    int e = errno;
    return fail(Error::from_errno("stat blob " + d.str(), e)
                    .set_kind(e == ENOENT ? ErrorKind::kNotFound : ErrorKind::kGeneric));
  }
  return static_cast<uint64_t>(st.st_size);
}

Result<Digest> BlobStore::put_file(const fs::path& file, std::optional<Digest> expected) const {
  UniqueFd in(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) return fail_errno("open " + file.string());
  LS_TRY_ASSIGN(auto w, writer(std::move(expected)));
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(in.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("read " + file.string());
    }
    if (n == 0) break;
    LS_TRY(w.write(buf, static_cast<size_t>(n)));
  }
  auto d = w.commit();
  if (!d) return fail(std::move(d.error()).context(file.string()));
  return d;
}

Result<std::vector<Digest>> BlobStore::list() const {
  std::vector<Digest> out;
  std::error_code ec;
  fs::path dir = root_ / "blobs" / "sha256";
  if (!fs::exists(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    auto d = Digest::parse("sha256:" + e.path().filename().string());
    if (d) out.push_back(*d);
  }
  if (ec) return fail(Error("list " + dir.string() + ": " + ec.message(), ec.value()));
  std::sort(out.begin(), out.end());
  return out;
}

Status BlobStore::remove(const Digest& d) const {
  if (::unlink(path(d).c_str()) != 0 && errno != ENOENT)
    return fail_errno("remove blob " + d.str());
  return {};
}

}  // namespace lockstep::cache
