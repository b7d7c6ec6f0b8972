#include "server/retention.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "common/lock_file.hpp"

namespace lockstep::server {
namespace fs = std::filesystem;
using nlohmann::json;

fs::path blobs_lock(const fs::path& blobs) {
  return blobs / ".lock";
}

Result<CacheSweep> sweep_caches(pg::Pool& db, int max_days, int64_t max_bytes) {
  LS_TRY_ASSIGN(auto c, db.take());
  // Newest use first within each repository; what lies beyond the limit,
  // counted that way, goes.
  LS_TRY_ASSIGN(auto r,
                c->exec("WITH ranked AS (SELECT id, sum(size) OVER (PARTITION BY repo_id ORDER BY "
                        "last_used_at DESC, id DESC) AS running FROM caches) "
                        "DELETE FROM caches c USING ranked r WHERE c.id = r.id AND "
                        "(($2::bigint > 0 AND r.running > $2::bigint) OR ($1::int > 0 AND "
                        "c.last_used_at < now() - make_interval(days => $1::int))) "
                        "RETURNING c.size",
                        {pg::p(int64_t{max_days}), pg::p(max_bytes)}));
  CacheSweep out;
  out.removed = r.size();
  for (int i = 0; i < r.size(); ++i) out.bytes += r.i64(i, 0);
  return out;
}

Result<SweepResult> sweep_artifacts(pg::Pool& db, const fs::path& blobs, int max_days,
                                    std::chrono::seconds min_file_age) {
  SweepResult out;
  LS_TRY_ASSIGN(auto c, db.take());
  LS_TRY_ASSIGN(auto expired,
                c->exec("UPDATE artifacts SET expired_at = now() WHERE expired_at IS NULL AND "
                        "((expires_at IS NOT NULL AND expires_at <= now()) OR ($1::int > 0 AND "
                        "created_at <= now() - make_interval(days => $1::int))) RETURNING 1",
                        {pg::p(int64_t{max_days})}));
  out.expired = expired.size();
  std::error_code ec;
  if (!fs::exists(blobs, ec)) return out;
  // Under the lock: no file is published or taken up by a new artifact
  // while the live set is read and the rest removed.
  LS_TRY_ASSIGN(auto lock, LockFile::acquire(blobs_lock(blobs)));
  LS_TRY_ASSIGN(auto live, c->exec("SELECT f->>'digest' FROM artifacts, "
                                   "jsonb_array_elements(manifest->'files') AS f "
                                   "WHERE expired_at IS NULL"));
  LS_TRY_ASSIGN(auto cached, c->exec("SELECT digest FROM caches"));
  std::set<std::string> keep;
  for (const auto* rows : {&live, &cached})
    for (int i = 0; i < rows->size(); ++i) {
      std::string d = rows->str(i, 0);
      if (d.rfind("sha256:", 0) == 0) keep.insert(d.substr(7));
    }
  const auto now = std::chrono::system_clock::now();
  auto older_than = [&](const struct stat& st, std::chrono::seconds age) {
    auto mtime = std::chrono::system_clock::time_point(std::chrono::seconds(st.st_mtim.tv_sec));
    return now - mtime > age;
  };
  auto sweep_dir = [&](const fs::path& dir, bool partial) -> Status {
    DIR* d = ::opendir(dir.c_str());
    if (!d) return {};
    Status result;
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == ".." || name == ".lock" || name == "tmp") continue;
      struct stat st {};
      fs::path p = dir / name;
      if (::lstat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      bool remove = partial
                        ? older_than(st, std::chrono::hours(24))
                        : name.size() == 64 && !keep.count(name) && older_than(st, min_file_age);
      if (!remove) continue;
      if (::unlink(p.c_str()) != 0) {
        if (result) result = fail_errno("remove " + p.string());
        continue;
      }
      ++out.files_removed;
      out.bytes_removed += st.st_size;
    }
    ::closedir(d);
    return result;
  };
  LS_TRY(sweep_dir(blobs, false));
  LS_TRY(sweep_dir(blobs / "tmp", true));
  return out;
}

}  // namespace lockstep::server
