#include "cache/depcache.hpp"

#include <algorithm>
#include <chrono>
#include <map>
#include <system_error>

#include "cache/depcache_archive.hpp"
#include "common/fs.hpp"
#include "common/json.hpp"
#include "common/lock_file.hpp"
#include "common/time.hpp"

namespace lockstep::cache {
namespace fs = std::filesystem;

namespace {

struct Index {
  uint64_t next_seq = 1;
  std::map<std::string, DepCacheEntry> entries;  // by slot(scope, key)
};

// Where an entry sits in the index: its scope, a separator no key or scope
// holds, its key; the entries of one scope are then one range of the map,
// ordered by key, so a restore key's prefix is a range too.
std::string slot(const std::string& scope, const std::string& key) {
  return scope + '\x1f' + key;
}

Json to_json(const DepCacheEntry& e) {
  return Json{{"key", e.key},
              {"scope", e.scope},
              {"version", e.version},
              {"digest", e.digest.str()},
              {"size", e.size},
              {"files", e.files},
              {"created_ms", e.created_ms},
              {"last_used_ms", e.last_used_ms},
              {"seq", e.seq},
              {"used_seq", e.used_seq}};
}

Result<Index> read_index(const fs::path& path) {
  Index idx;
  std::error_code ec;
  if (!fs::exists(path, ec)) return idx;
  LS_TRY_ASSIGN(std::string text, read_file(path));
  LS_TRY_ASSIGN(Json doc, parse_json(text, path.string()));
  try {
    idx.next_seq = doc.at("next_seq").get<uint64_t>();
    for (const auto& j : doc.at("entries")) {
      DepCacheEntry e;
      e.key = j.at("key").get<std::string>();
      e.version = j.at("version").get<std::string>();
      LS_TRY_ASSIGN(e.digest, Digest::parse(j.at("digest").get<std::string>()));
      e.size = j.at("size").get<uint64_t>();
      e.files = j.at("files").get<uint64_t>();
      e.created_ms = j.at("created_ms").get<int64_t>();
      e.last_used_ms = j.at("last_used_ms").get<int64_t>();
      e.seq = j.at("seq").get<uint64_t>();
      e.used_seq = j.value("used_seq", e.seq);
      e.scope = j.value("scope", "");
      idx.entries[slot(e.scope, e.key)] = std::move(e);
    }
  } catch (const Json::exception& ex) {
    return fail(path.string() + ": malformed cache index: " + ex.what(), ErrorKind::kIntegrity);
  }
  return idx;
}

Status write_index(const fs::path& path, const Index& idx) {
  Json entries = Json::array();
  for (const auto& [key, e] : idx.entries) entries.push_back(to_json(e));
  Json doc{{"next_seq", idx.next_seq}, {"entries", std::move(entries)}};
  return write_file_atomic(path, pretty_json(doc));
}

// The newest of `candidates` (by creation, then save order).
const DepCacheEntry* newest(const std::vector<const DepCacheEntry*>& candidates) {
  const DepCacheEntry* best = nullptr;
  for (const auto* c : candidates)
    if (!best || std::tie(c->created_ms, c->seq) > std::tie(best->created_ms, best->seq)) best = c;
  return best;
}

bool digest_in_use(const Index& idx, const Digest& d) {
  for (const auto& [k, e] : idx.entries)
    if (e.digest == d) return true;
  return false;
}

}  // namespace

DepCache::DepCache(fs::path state_dir) : root_(std::move(state_dir) / "depcache") {}

fs::path DepCache::archive_path(const Digest& d) const {
  return root_ / "blobs" / (d.hex() + ".tar.zst");
}

std::string DepCache::version_of(const std::vector<std::string>& paths) {
  std::string joined;
  for (const auto& p : paths) joined += p + "\n";
  return sha256_of(joined).hex();
}

Result<CacheLookup> DepCache::lookup(const std::string& key,
                                     const std::vector<std::string>& restore_keys,
                                     const std::string& version,
                                     const std::vector<std::string>& scopes) const {
  LS_TRY_ASSIGN(Index idx, read_index(root_ / "index.json"));
  auto fits = [&](const DepCacheEntry& e) { return version.empty() || e.version == version; };
  CacheLookup out;
  for (const auto& scope : scopes) {
    if (auto it = idx.entries.find(slot(scope, key)); it != idx.entries.end() && fits(it->second)) {
      out.kind = CacheLookup::Kind::kExact;
      out.entry = it->second;
      return out;
    }
    for (const auto& restore : restore_keys) {
      if (restore.empty()) continue;
      const std::string prefix = slot(scope, restore);
      std::vector<const DepCacheEntry*> candidates;
      for (auto it = idx.entries.lower_bound(prefix);
           it != idx.entries.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it)
        if (fits(it->second)) candidates.push_back(&it->second);
      if (const DepCacheEntry* best = newest(candidates)) {
        out.kind = CacheLookup::Kind::kRestoreKey;
        out.entry = *best;
        return out;
      }
    }
  }
  return out;
}

Status DepCache::restore(const DepCacheEntry& entry, const std::vector<std::string>& paths,
                         const JobDirs& dirs) const {
  LS_TRY(resolve_patterns(paths, dirs, /*confine=*/true));
  const fs::path archive = archive_path(entry.digest);
  LS_TRY(extract_archive(archive, dirs).map_error([&](Error e) {
    return std::move(e).context("restore cache '" + entry.key + "'");
  }));
  LS_TRY_ASSIGN(LockFile lock, LockFile::acquire(root_ / "index.lock"));
  LS_TRY_ASSIGN(Index idx, read_index(root_ / "index.json"));
  if (auto it = idx.entries.find(slot(entry.scope, entry.key)); it != idx.entries.end()) {
    it->second.last_used_ms = unix_ms();
    it->second.used_seq = idx.next_seq++;
    LS_TRY(write_index(root_ / "index.json", idx));
  }
  return {};
}

Result<SaveResult> DepCache::save(const std::string& key, const std::vector<std::string>& paths,
                                  const JobDirs& dirs, const std::string& scope) const {
  if (key.empty()) return fail("cache key is empty", ErrorKind::kUsage);
  if (key.find('\x1f') != std::string::npos || scope.find('\x1f') != std::string::npos)
    return fail("cache key or scope holds the control character 0x1f", ErrorKind::kUsage);
  LS_TRY_ASSIGN(auto patterns, resolve_patterns(paths, dirs, /*confine=*/true));
  {
    LS_TRY_ASSIGN(Index idx, read_index(root_ / "index.json"));
    if (auto it = idx.entries.find(slot(scope, key)); it != idx.entries.end())
      return SaveResult{it->second, false};
  }
  auto members = collect_members(expand_patterns(patterns), patterns, dirs);
  if (members.empty()) {
    std::string list;
    for (const auto& p : paths) list += (list.empty() ? "" : ", ") + p;
    return fail(
        "no files match the cache paths (" + list + "); nothing saved for key '" + key + "'",
        ErrorKind::kNotFound);
  }

  // Archive into tmp/, then publish under the digest.
  LS_TRY_ASSIGN(TempDir tmp, TempDir::create(root_ / "tmp", "save-"));
  const fs::path staged = tmp.path() / "archive.tar.zst";
  LS_TRY_ASSIGN(ArchiveInfo info, write_archive(members, staged));
  std::error_code ec;
  fs::create_directories(root_ / "blobs", ec);
  if (ec)
    return fail(Error("create " + (root_ / "blobs").string() + ": " + ec.message(), ec.value()));
  const fs::path final_path = archive_path(info.digest);
  if (::rename(staged.c_str(), final_path.c_str()) != 0)
    return fail_errno("publish " + final_path.string());
  LS_TRY(fsync_dir(root_ / "blobs"));

  LS_TRY_ASSIGN(LockFile lock, LockFile::acquire(root_ / "index.lock"));
  LS_TRY_ASSIGN(Index idx, read_index(root_ / "index.json"));
  if (auto it = idx.entries.find(slot(scope, key)); it != idx.entries.end()) {
    // Another job saved the key while we archived; keys are immutable.
    if (!digest_in_use(idx, info.digest)) (void)::unlink(final_path.c_str());
    return SaveResult{it->second, false};
  }
  DepCacheEntry e;
  e.key = key;
  e.scope = scope;
  e.version = version_of(paths);
  e.digest = info.digest;
  e.size = info.size;
  e.files = members.size();
  e.created_ms = e.last_used_ms = unix_ms();
  e.seq = idx.next_seq++;
  e.used_seq = e.seq;
  idx.entries[slot(scope, key)] = e;
  LS_TRY(write_index(root_ / "index.json", idx));
  return SaveResult{e, true};
}

Status DepCache::adopt(const DepCacheEntry& entry, const fs::path& archive) const {
  if (entry.key.empty() || entry.key.find('\x1f') != std::string::npos ||
      entry.scope.find('\x1f') != std::string::npos)
    return fail("cache entry with an unusable key or scope", ErrorKind::kUsage);
  std::error_code ec;
  fs::create_directories(root_ / "blobs", ec);
  if (ec)
    return fail(Error("create " + (root_ / "blobs").string() + ": " + ec.message(), ec.value()));
  const fs::path final_path = archive_path(entry.digest);
  if (!archive.empty() && archive != final_path) {
    if (::rename(archive.c_str(), final_path.c_str()) != 0)
      return fail_errno("publish " + final_path.string());
    LS_TRY(fsync_dir(root_ / "blobs"));
  }
  LS_TRY_ASSIGN(LockFile lock, LockFile::acquire(root_ / "index.lock"));
  LS_TRY_ASSIGN(Index idx, read_index(root_ / "index.json"));
  if (idx.entries.count(slot(entry.scope, entry.key))) return {};
  DepCacheEntry e = entry;
  e.last_used_ms = unix_ms();
  e.seq = e.used_seq = idx.next_seq++;
  idx.entries[slot(e.scope, e.key)] = e;
  return write_index(root_ / "index.json", idx);
}

Result<std::vector<DepCacheEntry>> DepCache::list() const {
  LS_TRY_ASSIGN(Index idx, read_index(root_ / "index.json"));
  std::vector<DepCacheEntry> out;
  for (auto& [k, e] : idx.entries) out.push_back(e);
  std::sort(out.begin(), out.end(),
            [](const DepCacheEntry& a, const DepCacheEntry& b) { return a.used_seq < b.used_seq; });
  return out;
}

Result<size_t> DepCache::remove_where(
    const std::function<bool(const DepCacheEntry&)>& which) const {
  LS_TRY_ASSIGN(LockFile lock, LockFile::acquire(root_ / "index.lock"));
  LS_TRY_ASSIGN(Index idx, read_index(root_ / "index.json"));
  std::vector<Digest> digests;
  for (auto it = idx.entries.begin(); it != idx.entries.end();) {
    if (!which(it->second)) {
      ++it;
      continue;
    }
    digests.push_back(it->second.digest);
    it = idx.entries.erase(it);
  }
  if (digests.empty()) return size_t{0};
  LS_TRY(write_index(root_ / "index.json", idx));
  for (const auto& d : digests)
    if (!digest_in_use(idx, d) && ::unlink(archive_path(d).c_str()) != 0 && errno != ENOENT)
      return fail_errno("remove " + archive_path(d).string());
  return digests.size();
}

Status DepCache::remove(const std::string& key) const {
  LS_TRY_ASSIGN(size_t n, remove_where([&](const DepCacheEntry& e) { return e.key == key; }));
  if (n == 0) return fail("no cache entry with key '" + key + "'", ErrorKind::kNotFound);
  return {};
}

Result<std::vector<DepCacheEntry>> DepCache::evict_to(uint64_t max_bytes) const {
  LS_TRY_ASSIGN(auto entries, list());
  uint64_t total = 0;
  for (const auto& e : entries) total += e.size;
  std::vector<DepCacheEntry> removed;
  for (const auto& e : entries) {
    if (total <= max_bytes) break;
    LS_TRY_ASSIGN(size_t n, remove_where([&](const DepCacheEntry& x) {
                    return x.key == e.key && x.scope == e.scope;
                  }));
    (void)n;
    total -= e.size;
    removed.push_back(e);
  }
  return removed;
}

}  // namespace lockstep::cache
