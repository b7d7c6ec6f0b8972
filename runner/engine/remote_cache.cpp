#include "runner/engine/remote_cache.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/digest.hpp"
#include "common/fd.hpp"
#include "common/fs.hpp"
#include "registry-mirror/http.hpp"

namespace lockstep::runner {
namespace fs = std::filesystem;

namespace {

constexpr long kCallTimeoutMs = 30'000;
constexpr size_t kChunk = 8u << 20;

// The server's reason: its {"error": "..."}, else the body, else the status.
std::string reason(const registry::HttpResponse& r) {
  auto j = Json::parse(r.body, nullptr, false);
  std::string why = j.is_object() && j.contains("error") && j["error"].is_string()
                        ? j["error"].get<std::string>()
                        : r.body;
  while (!why.empty() && (why.back() == '\n' || why.back() == '\r')) why.pop_back();
  return "HTTP " + std::to_string(r.status) + (why.empty() ? "" : " " + why);
}

}  // namespace

Result<std::shared_ptr<const RemoteCache>> RemoteCache::load(const fs::path& file) {
  const std::string where = "--cache-server " + file.string();
  auto text = read_file(file);
  if (!text) return fail(where + ": " + text.error().message(), ErrorKind::kUsage);
  auto j = parse_json(*text, where);
  if (!j) return fail(j.error().message(), ErrorKind::kUsage);
  auto str = [&](const char* k) {
    return j->is_object() && j->contains(k) && (*j)[k].is_string() ? (*j)[k].get<std::string>()
                                                                   : std::string();
  };
  auto num = [&](const char* k) {
    return j->is_object() && j->contains(k) && (*j)[k].is_number_integer() ? (*j)[k].get<int64_t>()
                                                                           : int64_t{0};
  };
  std::shared_ptr<RemoteCache> rc(new RemoteCache());
  rc->url_ = str("url");
  rc->token_ = str("token");
  rc->job_ = num("job");
  rc->attempt_ = static_cast<int>(num("attempt"));
  while (!rc->url_.empty() && rc->url_.back() == '/') rc->url_.pop_back();
  if (rc->url_.rfind("http://", 0) != 0 && rc->url_.rfind("https://", 0) != 0)
    return fail(where + ": 'url' must be an http:// or https:// URL", ErrorKind::kUsage);
  if (rc->token_.empty() || rc->token_.find_first_of("\r\n") != std::string::npos)
    return fail(where + ": 'token' must be the agent's token", ErrorKind::kUsage);
  if (rc->job_ <= 0 || rc->attempt_ <= 0)
    return fail(where + ": 'job' and 'attempt' must be positive numbers", ErrorKind::kUsage);
  return std::shared_ptr<const RemoteCache>(std::move(rc));
}

std::string RemoteCache::at() const {
  return "job=" + std::to_string(job_) + "&attempt=" + std::to_string(attempt_);
}

Result<Json> RemoteCache::post(const std::string& what, Json body) const {
  body["job"] = job_;
  body["attempt"] = attempt_;
  const std::string text = body.dump();
  registry::HttpRequest req;
  req.method = "POST";
  req.url = url_ + "/api/agent/" + what;
  req.headers = {"Authorization: Bearer " + token_, "Content-Type: application/json"};
  req.body = text;
  req.timeout_ms = kCallTimeoutMs;
  registry::HttpSession http;
  auto r = http.perform(req);
  if (!r)
    return fail("lockstep server " + url_ + ": " + r.error().message(), ErrorKind::kUnreachable);
  if (r->status != 200) return fail("lockstep server " + url_ + ": " + what + ": " + reason(*r));
  auto j = Json::parse(r->body, nullptr, false);
  if (!j.is_object())
    return fail("lockstep server " + url_ + ": " + what + ": the answer is not a JSON object");
  return j;
}

Result<cache::CacheLookup> RemoteCache::lookup(const std::string& key,
                                               const std::vector<std::string>& restore_keys,
                                               const std::string& version) const {
  LS_TRY_ASSIGN(Json a, post("cache-lookup",
                             {{"key", key}, {"restore_keys", restore_keys}, {"version", version}}));
  cache::CacheLookup out;
  const std::string kind = a.value("kind", "");
  if (kind == "miss") return out;
  if (kind != "exact" && kind != "restore-key")
    return fail("lockstep server " + url_ + ": cache-lookup: unknown kind '" + kind + "'");
  const Json e = a.value("entry", Json::object());
  cache::DepCacheEntry entry;
  try {
    entry.key = e.at("key").get<std::string>();
    entry.scope = e.at("scope").get<std::string>();
    entry.version = e.at("version").get<std::string>();
    LS_TRY_ASSIGN(entry.digest, Digest::parse(e.at("digest").get<std::string>()));
    entry.size = e.at("size").get<uint64_t>();
    entry.files = e.at("files").get<uint64_t>();
    entry.created_ms = e.at("created_ms").get<int64_t>();
  } catch (const Json::exception& ex) {
    return fail("lockstep server " + url_ + ": cache-lookup: malformed entry: " + ex.what());
  }
  out.kind =
      kind == "exact" ? cache::CacheLookup::Kind::kExact : cache::CacheLookup::Kind::kRestoreKey;
  out.entry = std::move(entry);
  return out;
}

Status RemoteCache::fetch(const cache::DepCache& store, const cache::DepCacheEntry& entry) const {
  std::error_code ec;
  if (fs::exists(store.archive_path(entry.digest), ec)) return store.adopt(entry, {});
  fs::create_directories(store.root() / "tmp", ec);
  LS_TRY_ASSIGN(TempDir tmp, TempDir::create(store.root() / "tmp", "fetch-"));
  const fs::path part = tmp.path() / "archive.tar.zst";
  UniqueFd fd(::open(part.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) return fail_errno("create " + part.string());
  Sha256 sha;
  uint64_t got = 0;
  registry::HttpRequest req;
  req.method = "POST";
  req.url = url_ + "/api/agent/blob-get?sha=" + entry.digest.hex();
  req.headers = {"Authorization: Bearer " + token_};
  req.on_data = [&](const char* p, size_t n) -> Status {
    sha.update(p, n);
    got += n;
    while (n > 0) {
      ssize_t w = ::write(fd.get(), p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return fail_errno("write " + part.string());
      p += w;
      n -= static_cast<size_t>(w);
    }
    return {};
  };
  registry::HttpSession http;
  auto r = http.perform(req);
  if (!r)
    return fail("lockstep server " + url_ + ": fetch cache archive " + entry.digest.str() + ": " +
                r.error().message());
  if (r->status != 200)
    return fail("lockstep server " + url_ + ": fetch cache archive " + entry.digest.str() + ": " +
                reason(*r));
  if (Digest d = sha.finish(); d != entry.digest || got != entry.size)
    return fail("lockstep server " + url_ + ": cache archive " + entry.digest.str() +
                    " arrived as " + d.str() + " (" + std::to_string(got) + " bytes)",
                ErrorKind::kIntegrity);
  if (::fsync(fd.get()) != 0) return fail_errno("sync " + part.string());
  fd.reset();
  return store.adopt(entry, part);
}

Result<bool> RemoteCache::save(const cache::DepCache& store,
                               const cache::DepCacheEntry& entry) const {
  const std::string hex = entry.digest.hex();
  LS_TRY_ASSIGN(Json missing, post("blobs-missing", {{"shas", Json::array({hex})}}));
  if (!missing.value("missing", Json::array()).empty()) {
    const fs::path file = store.archive_path(entry.digest);
    UniqueFd in(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!in) return fail_errno("open " + file.string());
    std::string chunk(kChunk, '\0');
    registry::HttpSession http;
    for (int64_t off = 0;;) {
      ssize_t n = ::pread(in.get(), chunk.data(), chunk.size(), off);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return fail_errno("read " + file.string());
      const bool last = static_cast<size_t>(n) < chunk.size();
      registry::HttpRequest req;
      req.method = "POST";
      req.url = url_ + "/api/agent/blob?" + at() + "&sha=" + hex +
                "&offset=" + std::to_string(off) + (last ? "&last=1" : "");
      req.headers = {"Authorization: Bearer " + token_, "Content-Type: application/octet-stream"};
      req.body = std::string_view(chunk.data(), static_cast<size_t>(n));
      auto r = http.perform(req);
      if (!r)
        return fail("lockstep server " + url_ + ": send cache archive: " + r.error().message(),
                    ErrorKind::kUnreachable);
      if (r->status != 200)
        return fail("lockstep server " + url_ + ": send cache archive: " + reason(*r));
      off += n;
      if (last) break;
    }
  }
  LS_TRY_ASSIGN(Json a, post("cache-save", {{"key", entry.key},
                                            {"version", entry.version},
                                            {"digest", entry.digest.str()},
                                            {"size", entry.size},
                                            {"files", entry.files}}));
  return a.value("created", false);
}

}  // namespace lockstep::runner
