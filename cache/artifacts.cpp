#include "cache/artifacts.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <system_error>

#include "common/fd.hpp"
#include "common/fs.hpp"
#include "common/json.hpp"
#include "common/time.hpp"

namespace lockstep::cache {
namespace fs = std::filesystem;

namespace {

Status check_name(const std::string& name, std::string_view what) {
  if (name.empty() || name == "." || name == ".." ||
      name.find_first_of("\":<>|*?\r\n\\/") != std::string::npos)
    return fail("invalid " + std::string(what) + " '" + name +
                    "': it must not be empty or contain any of \" : < > | * ? \\ / or a newline",
                ErrorKind::kUsage);
  return {};
}

// Copies `from` to the open `to`, hashing what is copied.
Result<std::pair<Digest, uint64_t>> copy_hashing(int from, int to, const fs::path& what) {
  Sha256 h;
  uint64_t total = 0;
  std::vector<char> buf(1 << 16);
  for (;;) {
    ssize_t n = ::read(from, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("read " + what.string());
    }
    if (n == 0) break;
    size_t off = 0;
    while (off < static_cast<size_t>(n)) {
      ssize_t w = ::write(to, buf.data() + off, static_cast<size_t>(n) - off);
      if (w < 0) {
        if (errno == EINTR) continue;
        return fail_errno("write copy of " + what.string());
      }
      off += static_cast<size_t>(w);
    }
    h.update(buf.data(), static_cast<size_t>(n));
    total += static_cast<uint64_t>(n);
  }
  return std::make_pair(h.finish(), total);
}

Json to_json(const ArtifactInfo& a) {
  Json files = Json::array();
  for (const auto& f : a.files)
    files.push_back(
        {{"path", f.path}, {"mode", f.mode}, {"size", f.size}, {"digest", f.digest.str()}});
  return Json{{"run_id", a.run_id},
              {"name", a.name},
              {"job", a.job},
              {"digest", a.digest.str()},
              {"size", a.size},
              {"created_ms", a.created_ms},
              {"retention_days", a.retention_days},
              {"expires_ms", a.expires_ms},
              {"files", std::move(files)}};
}

Result<ArtifactInfo> parse_manifest(std::string_view text, const std::string& what);

Result<ArtifactInfo> read_manifest(const fs::path& path) {
  LS_TRY_ASSIGN(std::string text, read_file(path));
  return parse_manifest(text, path.string());
}

Result<ArtifactInfo> parse_manifest(std::string_view text, const std::string& what) {
  const fs::path path = what;
  LS_TRY_ASSIGN(Json j, parse_json(text, what));
  ArtifactInfo a;
  try {
    a.run_id = j.at("run_id").get<std::string>();
    a.name = j.at("name").get<std::string>();
    a.job = j.at("job").get<std::string>();
    LS_TRY_ASSIGN(a.digest, Digest::parse(j.at("digest").get<std::string>()));
    a.size = j.at("size").get<uint64_t>();
    a.created_ms = j.at("created_ms").get<int64_t>();
    a.retention_days = j.at("retention_days").get<int>();
    a.expires_ms = j.at("expires_ms").get<int64_t>();
    for (const auto& f : j.at("files")) {
      ArtifactFile af;
      af.path = f.at("path").get<std::string>();
      af.mode = f.at("mode").get<uint32_t>();
      af.size = f.at("size").get<uint64_t>();
      LS_TRY_ASSIGN(af.digest, Digest::parse(f.at("digest").get<std::string>()));
      a.files.push_back(std::move(af));
    }
  } catch (const Json::exception& ex) {
    return fail(path.string() + ": malformed artifact manifest: " + ex.what(),
                ErrorKind::kIntegrity);
  }
  return a;
}

// The least common ancestor of the patterns' literal parts (see the header).
fs::path common_root(const std::vector<PathPattern>& patterns) {
  std::optional<std::vector<fs::path>> common;
  std::error_code ec;
  for (const auto& p : patterns) {
    if (p.exclude) continue;
    fs::path base =
        p.has_glob ? p.base : (fs::is_directory(p.abs, ec) ? p.abs : p.abs.parent_path());
    std::vector<fs::path> parts(base.begin(), base.end());
    if (!common) {
      common = parts;
      continue;
    }
    size_t n = 0;
    while (n < common->size() && n < parts.size() && (*common)[n] == parts[n]) ++n;
    common->resize(n);
  }
  fs::path out;
  if (common)
    for (const auto& c : *common) out /= c;
  return out.empty() ? fs::path("/") : out;
}

// Publishes `info` as run_dir/<name>.json with link(): exactly one of
// several publishers of a name succeeds (a staged name unique to this call:
// threads share the pid and the clock). false: the name was taken.
Result<bool> publish_manifest(const fs::path& run_dir, const ArtifactInfo& info) {
  static std::atomic<uint64_t> published{0};
  const fs::path manifest = run_dir / (info.name + ".json");
  const fs::path staged = run_dir / ("." + info.name + ".json.tmp-" + std::to_string(::getpid()) +
                                     "-" + std::to_string(published.fetch_add(1)));
  LS_TRY(write_file_atomic(staged, pretty_json(to_json(info))));
  const int rc = ::link(staged.c_str(), manifest.c_str());
  const int err = errno;
  ::unlink(staged.c_str());
  if (rc != 0) {
    if (err == EEXIST) return false;
    return fail(Error::from_errno("publish " + manifest.string(), err));
  }
  LS_TRY(fsync_dir(run_dir));
  return true;
}

bool safe_relpath(const std::string& rel) {
  if (rel.empty() || rel[0] == '/') return false;
  for (const auto& c : fs::path(rel))
    if (c == "..") return false;
  return true;
}

}  // namespace

Digest artifact_digest(std::vector<ArtifactFile> files) {
  std::sort(files.begin(), files.end(),
            [](const ArtifactFile& a, const ArtifactFile& b) { return a.path < b.path; });
  Sha256 h;
  char mode[16];
  for (const auto& f : files) {
    std::snprintf(mode, sizeof mode, "%o", f.mode);
    h.update(f.path);
    h.update(std::string_view("\0", 1));
    h.update(mode);
    h.update(std::string_view("\0", 1));
    h.update(f.digest.hex());
    h.update("\n");
  }
  return h.finish();
}

ArtifactStore::ArtifactStore(fs::path state_dir) : root_(std::move(state_dir) / "artifacts") {}

fs::path ArtifactStore::file_path(const Digest& d) const {
  return root_ / "files" / d.hex();
}

Result<ArtifactInfo> ArtifactStore::get(const std::string& run_id, const std::string& name) const {
  LS_TRY(check_name(run_id, "run id"));
  LS_TRY(check_name(name, "artifact name"));
  const fs::path manifest = root_ / "runs" / run_id / (name + ".json");
  std::error_code ec;
  if (!fs::exists(manifest, ec)) {
    LS_TRY_ASSIGN(auto all, list(run_id));
    std::string avail;
    for (const auto& a : all) avail += (avail.empty() ? "" : ", ") + a.name;
    return fail(
        "artifact '" + name + "' not found in run '" + run_id + "' (" +
            (avail.empty() ? std::string("no artifacts were uploaded") : "available: " + avail) +
            ")",
        ErrorKind::kNotFound);
  }
  return read_manifest(manifest);
}

Result<std::vector<ArtifactInfo>> ArtifactStore::list(const std::string& run_id) const {
  LS_TRY(check_name(run_id, "run id"));
  std::vector<ArtifactInfo> out;
  std::error_code ec;
  const fs::path dir = root_ / "runs" / run_id;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().extension() != ".json" || e.path().filename().string()[0] == '.') continue;
    LS_TRY_ASSIGN(ArtifactInfo a, read_manifest(e.path()));
    out.push_back(std::move(a));
  }
  if (ec) return fail(Error("list " + dir.string() + ": " + ec.message(), ec.value()));
  std::sort(out.begin(), out.end(),
            [](const ArtifactInfo& a, const ArtifactInfo& b) { return a.name < b.name; });
  return out;
}

Result<UploadResult> ArtifactStore::upload(const UploadRequest& req) const {
  LS_TRY(check_name(req.run_id, "run id"));
  LS_TRY(check_name(req.name, "artifact name"));
  const fs::path run_dir = root_ / "runs" / req.run_id;
  const fs::path manifest = run_dir / (req.name + ".json");
  auto clash = [&]() -> tl::unexpected<Error> {
    auto prev = read_manifest(manifest);
    const std::string by = prev ? prev->job : std::string("?");
    return fail("artifact '" + req.name + "' was already uploaded by job '" + by + "'",
                ErrorKind::kUsage);
  };
  std::error_code ec;
  if (fs::exists(manifest, ec)) return clash();

  LS_TRY_ASSIGN(auto patterns,
                resolve_patterns(req.paths, req.dirs, /*confine=*/false, "artifact path"));
  const fs::path base = common_root(patterns);
  std::map<std::string, fs::path> files;  // relpath -> source
  auto add = [&](const fs::path& p) {
    if (excluded(patterns, p)) return;
    if (!fs::is_regular_file(p, ec)) return;  // follows symlinks
    files.emplace(p.lexically_relative(base).generic_string(), p);
  };
  for (const auto& m : expand_patterns(patterns)) {
    if (!fs::is_directory(m, ec)) {
      add(m);
      continue;
    }
    for (auto it = fs::recursive_directory_iterator(m, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) break;
      add(it->path());
    }
  }
  if (files.empty()) {
    std::string list;
    for (const auto& p : req.paths) list += (list.empty() ? "" : ", ") + p;
    const std::string msg =
        "no files were found for artifact '" + req.name + "' with the provided path: " + list;
    if (req.if_no_files_found == IfNoFilesFound::kError) return fail(msg, ErrorKind::kNotFound);
    UploadResult r;
    if (req.if_no_files_found == IfNoFilesFound::kWarn) r.warning = msg + "; no artifact uploaded";
    return r;
  }

  fs::create_directories(root_ / "files", ec);
  fs::create_directories(root_ / "tmp", ec);
  fs::create_directories(run_dir, ec);
  if (ec) return fail(Error("create " + run_dir.string() + ": " + ec.message(), ec.value()));
  ArtifactInfo info;
  info.run_id = req.run_id;
  info.name = req.name;
  info.job = req.job;
  for (const auto& [rel, src] : files) {
    UniqueFd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in) return fail_errno("open " + src.string());
    struct stat st {};
    if (::fstat(in.get(), &st) != 0) return fail_errno("stat " + src.string());
    std::string tmpl = (root_ / "tmp" / "upload-XXXXXX").string();
    UniqueFd out(::mkostemp(tmpl.data(), O_CLOEXEC));
    if (!out) return fail_errno("create temp file in " + (root_ / "tmp").string());
    auto copied = copy_hashing(in.get(), out.get(), src);
    if (copied && ::fchmod(out.get(), 0444) != 0) copied = fail_errno("chmod " + tmpl);
    if (copied && ::fsync(out.get()) != 0) copied = fail_errno("fsync " + tmpl);
    if (!copied) {
      ::unlink(tmpl.c_str());
      return tl::unexpected(copied.error());
    }
    const fs::path dst = file_path(copied->first);
    if (fs::exists(dst, ec))
      ::unlink(tmpl.c_str());  // same bytes already stored
    else if (::rename(tmpl.c_str(), dst.c_str()) != 0)
      return fail_errno("publish " + dst.string());
    info.files.push_back({rel, (st.st_mode & 0111) ? 0755u : 0644u, copied->second, copied->first});
    info.size += copied->second;
  }
  LS_TRY(fsync_dir(root_ / "files"));
  info.digest = artifact_digest(info.files);
  info.created_ms = unix_ms();
  info.retention_days = req.retention_days;
  info.expires_ms =
      req.retention_days > 0 ? info.created_ms + int64_t{req.retention_days} * 86400000 : 0;

  // Exactly one upload of a name succeeds.
  LS_TRY_ASSIGN(bool published, publish_manifest(run_dir, info));
  if (!published) return clash();
  UploadResult r;
  r.artifact = std::move(info);
  return r;
}

Result<std::string> ArtifactStore::manifest_json(const std::string& run_id,
                                                 const std::string& name) const {
  LS_TRY_ASSIGN(ArtifactInfo a, get(run_id, name));
  return to_json(a).dump();
}

Status ArtifactStore::put_file(const Digest& d, int fd) const {
  std::error_code ec;
  fs::create_directories(root_ / "files", ec);
  fs::create_directories(root_ / "tmp", ec);
  std::string tmpl = (root_ / "tmp" / "put-XXXXXX").string();
  UniqueFd out(::mkostemp(tmpl.data(), O_CLOEXEC));
  if (!out) return fail_errno("create temp file in " + (root_ / "tmp").string());
  auto copied = copy_hashing(fd, out.get(), "file " + d.str());
  if (copied && copied->first != d)
    copied =
        fail("file " + d.str() + " arrived with other bytes (sha256 " + copied->first.str() + ")",
             ErrorKind::kIntegrity);
  if (copied && ::fchmod(out.get(), 0444) != 0) copied = fail_errno("chmod " + tmpl);
  if (copied && ::fsync(out.get()) != 0) copied = fail_errno("fsync " + tmpl);
  if (!copied) {
    ::unlink(tmpl.c_str());
    return tl::unexpected(copied.error());
  }
  const fs::path dst = file_path(d);
  if (fs::exists(dst, ec))
    ::unlink(tmpl.c_str());
  else if (::rename(tmpl.c_str(), dst.c_str()) != 0)
    return fail_errno("publish " + dst.string());
  return fsync_dir(root_ / "files");
}

Result<ArtifactInfo> ArtifactStore::adopt(const std::string& run_id,
                                          std::string_view manifest) const {
  LS_TRY(check_name(run_id, "run id"));
  LS_TRY_ASSIGN(ArtifactInfo a, parse_manifest(manifest, "artifact manifest"));
  LS_TRY(check_name(a.name, "artifact name"));
  uint64_t total = 0;
  for (const auto& f : a.files) {
    if (!safe_relpath(f.path))
      return fail("artifact '" + a.name + "': unsafe path '" + f.path + "'", ErrorKind::kIntegrity);
    std::error_code ec;
    auto size = fs::file_size(file_path(f.digest), ec);
    if (ec)
      return fail("artifact '" + a.name + "': file " + f.path + " (" + f.digest.str() +
                      ") is not in the store",
                  ErrorKind::kNotFound);
    if (size != f.size)
      return fail("artifact '" + a.name + "': file " + f.path + " has " + std::to_string(size) +
                      " bytes in the store, the manifest says " + std::to_string(f.size),
                  ErrorKind::kIntegrity);
    total += f.size;
  }
  if (artifact_digest(a.files) != a.digest || total != a.size)
    return fail("artifact '" + a.name + "': its digest or size does not match its files",
                ErrorKind::kIntegrity);
  const fs::path run_dir = root_ / "runs" / run_id;
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec) return fail(Error("create " + run_dir.string() + ": " + ec.message(), ec.value()));
  a.run_id = run_id;
  LS_TRY_ASSIGN(bool published, publish_manifest(run_dir, a));
  if (!published)
    return fail("artifact '" + a.name + "' already exists in run '" + run_id + "'",
                ErrorKind::kUsage);
  return a;
}

Result<ArtifactInfo> ArtifactStore::download(const std::string& run_id, const std::string& name,
                                             const fs::path& dest) const {
  LS_TRY_ASSIGN(ArtifactInfo a, get(run_id, name));
  std::error_code ec;
  for (const auto& f : a.files) {
    if (!safe_relpath(f.path))
      return fail("artifact '" + name + "' holds an unsafe path '" + f.path + "'",
                  ErrorKind::kIntegrity);
    const fs::path out = dest / f.path;
    fs::create_directories(out.parent_path(), ec);
    if (ec)
      return fail(Error("create " + out.parent_path().string() + ": " + ec.message(), ec.value()));
    UniqueFd in(::open(file_path(f.digest).c_str(), O_RDONLY | O_CLOEXEC));
    if (!in) return fail_errno("open stored file of " + f.path + " in artifact '" + name + "'");
    (void)::unlink(out.c_str());  // never write through an existing symlink
    UniqueFd o(::open(out.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!o) return fail_errno("create " + out.string());
    LS_TRY_ASSIGN(auto copied, copy_hashing(in.get(), o.get(), out));
    if (copied.first != f.digest)
      return fail("artifact '" + name + "': " + f.path + " has digest " + copied.first.str() +
                      ", expected " + f.digest.str(),
                  ErrorKind::kIntegrity);
    if (::fchmod(o.get(), static_cast<mode_t>(f.mode)) != 0)
      return fail_errno("chmod " + out.string());
  }
  return a;
}

Result<std::vector<ArtifactInfo>> ArtifactStore::download_all(const std::string& run_id,
                                                              const fs::path& dest) const {
  LS_TRY_ASSIGN(auto all, list(run_id));
  for (const auto& a : all) LS_TRY(download(run_id, a.name, dest / a.name));
  return all;
}

Result<std::vector<ArtifactInfo>> ArtifactStore::prune(int64_t now) const {
  std::vector<ArtifactInfo> removed;
  std::vector<Digest> live;
  std::error_code ec;
  const fs::path runs = root_ / "runs";
  if (fs::is_directory(runs, ec)) {
    for (const auto& run : fs::directory_iterator(runs, ec)) {
      for (const auto& m : fs::directory_iterator(run.path(), ec)) {
        if (m.path().extension() != ".json" || m.path().filename().string()[0] == '.') continue;
        LS_TRY_ASSIGN(ArtifactInfo a, read_manifest(m.path()));
        if (a.expires_ms != 0 && a.expires_ms < now) {
          if (::unlink(m.path().c_str()) != 0) return fail_errno("remove " + m.path().string());
          removed.push_back(std::move(a));
        } else {
          for (const auto& f : a.files) live.push_back(f.digest);
        }
      }
    }
  }
  std::sort(live.begin(), live.end());
  for (const auto& f : fs::directory_iterator(root_ / "files", ec)) {
    auto d = Digest::parse("sha256:" + f.path().filename().string());
    if (d && !std::binary_search(live.begin(), live.end(), *d)) (void)::unlink(f.path().c_str());
  }
  return removed;
}

}  // namespace lockstep::cache
