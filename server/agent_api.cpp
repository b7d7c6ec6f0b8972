// The agent protocol (docs/server.md, "Agent protocol"): claim (long poll),
// start, renew, log chunks and finish, each fenced by (job, attempt).
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "common/digest.hpp"
#include "common/fd.hpp"
#include "common/fs.hpp"
#include "common/lock_file.hpp"
#include "server/queue.hpp"
#include "server/retention.hpp"
#include "server/server_impl.hpp"

namespace lockstep::server {

using nlohmann::json;

namespace {

HttpResponse stale(int64_t job, int attempt) {
  return error_response(409, "attempt " + std::to_string(attempt) + " of job " +
                                 std::to_string(job) + " is no longer current");
}

// The secrets a job references and every variable of its repository; no
// secrets for a pull request from a fork.
Result<json> job_secrets(Server::Impl& s, const json& plan, json* vars) {
  json out = json::object();
  *vars = json::object();
  LS_TRY_ASSIGN(auto c, s.db->take());
  LS_TRY_ASSIGN(auto repo,
                c->exec("SELECT id FROM repos WHERE name = $1", {pg::p(plan.value("repo", ""))}));
  if (repo.empty()) return out;
  int64_t repo_id = repo.i64(0, 0);
  LS_TRY_ASSIGN(auto v, c->exec("SELECT name, value FROM secrets WHERE repo_id = $1 AND "
                                "kind = 'var' ORDER BY name",
                                {pg::p(repo_id)}));
  for (int i = 0; i < v.size(); ++i) (*vars)[v.str(i, 0)] = v.str(i, 1);
  if (plan.value("fork", false)) return out;
  for (const auto& name : plan.value("secrets", json::array())) {
    if (!name.is_string()) continue;
    LS_TRY_ASSIGN(auto r, c->exec("SELECT value_enc FROM secrets WHERE repo_id = $1 AND "
                                  "kind = 'secret' AND name = $2",
                                  {pg::p(repo_id), pg::p(name.get<std::string>())}));
    if (r.empty()) continue;
    LS_TRY_ASSIGN(std::string value,
                  s.box->open(r.bytes(0, 0),
                              "secret:" + std::to_string(repo_id) + ":" + name.get<std::string>()));
    out[name.get<std::string>()] = value;
  }
  return out;
}

HttpResponse do_claim(Server::Impl& s, int64_t agent, const json& body) {
  int64_t wait_ms =
      std::clamp<int64_t>(body.value("wait_ms", int64_t{25'000}), 0, s.cfg.claim_wait.count());
  {
    // At most once a second per agent (unless its slots or version changed):
    // an UPDATE that changes no row writes nothing, so a busy agent's claims
    // do not each wait for a commit of their own.
    auto c = s.db->take();
    if (c)
      (void)(*c)->exec(
          "UPDATE agents SET last_seen = now(), slots = $2, version = $3 WHERE id = $1 AND "
          "(last_seen IS NULL OR last_seen < now() - interval '1 second' OR slots <> $2 OR "
          "version <> $3)",
          {pg::p(agent), pg::p(body.value("slots", int64_t{1})), pg::p(body.value("version", ""))});
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  for (;;) {
    uint64_t gen = s.notifier.generation(Notifier::kJobs);
    auto got = claim(*s.db, agent);
    if (!got) return error_response(got.error());
    if (*got) {
      json vars;
      auto secrets = job_secrets(s, (*got)->plan, &vars);
      if (!secrets) return error_response(secrets.error());
      const auto& lt = s.cfg.lease;
      return json_response(200, {{"job", (*got)->job},
                                 {"attempt", (*got)->attempt},
                                 {"run", (*got)->run},
                                 {"plan", (*got)->plan},
                                 {"needs", (*got)->needs},
                                 {"artifacts", (*got)->artifacts},
                                 {"pins", (*got)->pins},
                                 {"secrets", *secrets},
                                 {"vars", vars},
                                 {"lease_ms", lt.lease.count()},
                                 {"renew_ms", lt.renew().count()},
                                 {"give_up_ms", lt.give_up().count()},
                                 {"max_log_bytes", s.cfg.max_log_bytes}});
    }
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return HttpResponse{204, "application/json", "", {}, {}};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    if (!s.notifier.wait(Notifier::kJobs, gen, left))
      return error_response(503, "server is shutting down");
  }
}

// Artifacts (docs/server.md, "Artifacts"): files by sha256 under
// <state>/server/blobs/, manifests in the artifacts table.
std::filesystem::path blobs_dir(const Server::Impl& s) {
  return s.cfg.state_dir / "server" / "blobs";
}

bool is_sha_hex(const std::string& h) {
  return h.size() == 64 && h.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// The attempt is this agent's and live (the fence of every artifact write).
Result<bool> live_attempt(Server::Impl& s, int64_t agent, int64_t job, int attempt) {
  LS_TRY_ASSIGN(auto c, s.db->take());
  LS_TRY_ASSIGN(auto r, c->exec("SELECT 1 FROM attempts a JOIN jobs j ON j.id = a.job_id WHERE "
                                "a.job_id = $1 AND a.attempt = $2 AND a.agent_id = $3 AND "
                                "a.state IN ('claimed', 'running') AND j.attempt = a.attempt",
                                {pg::p(job), pg::p(attempt), pg::p(agent)}));
  return !r.empty();
}

// A chunk of a file: appended at `offset` to the attempt's partial copy; the
// last chunk's file is checked against its sha256 and published.
HttpResponse put_blob(Server::Impl& s, int64_t agent, const HttpRequest& req) {
  auto job = parse_id(req.param("job"));
  auto attempt = parse_id(req.param("attempt"));
  auto offset = parse_id(req.param("offset"));
  const std::string sha = req.param("sha");
  if (!job || !attempt || !offset || !is_sha_hex(sha))
    return error_response(400, "blob needs job, attempt, offset and sha (64 hex digits)");
  auto live = live_attempt(s, agent, *job, static_cast<int>(*attempt));
  if (!live) return error_response(live.error());
  if (!*live) return stale(*job, static_cast<int>(*attempt));
  namespace fs = std::filesystem;
  const fs::path dir = blobs_dir(s);
  const fs::path done = dir / sha;
  std::error_code ec;
  fs::create_directories(dir / "tmp", ec);
  // Shared: the retention sweep removes files only while it holds it alone.
  auto lock = LockFile::acquire(blobs_lock(dir), true);
  if (!lock) return error_response(lock.error());
  if (fs::exists(done, ec)) {
    ::utimensat(AT_FDCWD, done.c_str(), nullptr, 0);  // taken up again: young
    return json_response(200, {{"stored", true}});
  }
  const fs::path part =
      dir / "tmp" / (sha + "-" + std::to_string(*job) + "-" + std::to_string(*attempt));
  UniqueFd fd(::open(part.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return error_response(500, "open " + part.string() + ": " + std::strerror(errno));
  // Offset 0 starts the file again (a resend after a failure).
  if (*offset == 0 && ::ftruncate(fd.get(), 0) != 0)
    return error_response(500, "truncate " + part.string() + ": " + std::strerror(errno));
  struct stat st {};
  ::fstat(fd.get(), &st);
  if (*offset != st.st_size)
    return json_response(400, {{"error", "gap in the file"}, {"bytes", st.st_size}});
  if (::pwrite(fd.get(), req.body.data(), req.body.size(), *offset) !=
      static_cast<ssize_t>(req.body.size()))
    return error_response(500, "write " + part.string() + ": " + std::strerror(errno));
  if (req.param("last") != "1")
    return json_response(200, {{"bytes", *offset + static_cast<int64_t>(req.body.size())}});
  // Checked whole before it is published.
  Sha256 h;
  {
    UniqueFd in(::open(part.c_str(), O_RDONLY | O_CLOEXEC));
    std::string buf(1 << 20, '\0');
    for (ssize_t n; in && (n = ::read(in.get(), buf.data(), buf.size())) > 0;)
      h.update(buf.data(), static_cast<size_t>(n));
  }
  if (h.finish().hex() != sha) {
    fs::remove(part, ec);
    return error_response(422, "file " + sha + " arrived with other bytes");
  }
  if (::fsync(fd.get()) != 0 || ::rename(part.c_str(), done.c_str()) != 0)
    return error_response(500, "store " + done.string() + ": " + std::strerror(errno));
  return json_response(200, {{"stored", true}});
}

// A stored file, streamed.
HttpResponse get_blob(Server::Impl& s, const HttpRequest& req) {
  const std::string sha = req.param("sha");
  if (!is_sha_hex(sha)) return error_response(400, "blob-get needs sha (64 hex digits)");
  auto path = blobs_dir(s) / sha;
  auto fd = std::make_shared<UniqueFd>(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!*fd) return error_response(404, "no file " + sha + " on the server");
  HttpResponse res;
  res.content_type = "application/octet-stream";
  res.stream = [fd](const StreamWrite& write) {
    std::string buf(1 << 20, '\0');
    for (;;) {
      ssize_t n = ::read(fd->get(), buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0 || !write(std::string_view(buf.data(), static_cast<size_t>(n)))) return;
    }
  };
  return res;
}

// Which of these files the server lacks. Those it has are touched: an
// artifact about to name them keeps them from the retention sweep.
HttpResponse missing_blobs(Server::Impl& s, const json& body) {
  json missing = json::array();
  std::error_code ec;
  std::filesystem::create_directories(blobs_dir(s), ec);
  auto lock = LockFile::acquire(blobs_lock(blobs_dir(s)), true);
  if (!lock) return error_response(lock.error());
  for (const auto& h : body.value("shas", json::array())) {
    if (!h.is_string() || !is_sha_hex(h.get<std::string>()))
      return error_response(400, "shas must be sha256 hex digests");
    const auto path = blobs_dir(s) / h.get<std::string>();
    if (::utimensat(AT_FDCWD, path.c_str(), nullptr, 0) != 0) missing.push_back(h);
  }
  return json_response(200, {{"missing", missing}});
}

// A job's artifact: its manifest, once every file it names is stored. A
// name is taken once per run; the same artifact again (a resent request)
// is fine.
HttpResponse put_artifact(Server::Impl& s, int64_t agent, int64_t job, int attempt,
                          const json& body) {
  auto live = live_attempt(s, agent, job, attempt);
  if (!live) return error_response(live.error());
  if (!*live) return stale(job, attempt);
  const json m = body.value("manifest", json());
  if (!m.is_object() || !m.contains("name") || !m["name"].is_string() || !m.contains("digest") ||
      !m["digest"].is_string() || !m.contains("files") || !m["files"].is_array())
    return error_response(400, "artifact needs a manifest with name, digest and files");
  std::error_code ec;
  std::filesystem::create_directories(blobs_dir(s), ec);
  auto lock = LockFile::acquire(blobs_lock(blobs_dir(s)), true);
  if (!lock) return error_response(lock.error());
  for (const auto& f : m["files"]) {
    std::string d = f.is_object() ? f.value("digest", "") : "";
    if (d.rfind("sha256:", 0) != 0 || !is_sha_hex(d.substr(7)))
      return error_response(400, "artifact file without a sha256 digest");
    if (!std::filesystem::exists(blobs_dir(s) / d.substr(7), ec))
      return error_response(400, "artifact file " + d + " is not stored yet");
  }
  const std::string name = m["name"].get<std::string>();
  auto c = s.db->take();
  if (!c) return error_response(c.error());
  auto r = (*c)->exec(
      "WITH ins AS (INSERT INTO artifacts (run_id, name, job_id, attempt, digest, size, "
      "manifest, expires_at) SELECT run_id, $2, id, $3, $4, $5, $6, CASE WHEN $7::bigint > 0 "
      "THEN to_timestamp($7::bigint / 1000.0) END FROM jobs WHERE id = $1 "
      "ON CONFLICT (run_id, name) DO NOTHING RETURNING 1) "
      "SELECT (SELECT count(*) FROM ins), a.digest, j.name FROM jobs k JOIN artifacts a ON "
      "a.run_id = k.run_id AND a.name = $2 JOIN jobs j ON j.id = a.job_id WHERE k.id = $1",
      {pg::p(job), pg::p(name), pg::p(attempt), pg::p(m["digest"].get<std::string>()),
       pg::p(m.value("size", int64_t{0})), pg::p(m.dump()),
       pg::p(m.contains("expires_ms") && m["expires_ms"].is_number_integer()
                 ? m["expires_ms"].get<int64_t>()
                 : int64_t{0})});
  if (!r) return error_response(r.error());
  if (r->empty() || r->i64(0, 0) == 1) return json_response(200, {{"ok", true}});
  if (r->str(0, 1) == m["digest"].get<std::string>()) return json_response(200, {{"ok", true}});
  return error_response(
      422, "artifact '" + name + "' was already uploaded by job '" + r->str(0, 2) + "'");
}

// Dependency caches (docs/server.md, "Caches"). A job's scopes follow from
// its run, never from what the agent says: its repository's, and for a pull
// request its own first (where it also saves), so what a fork's code saves
// never reaches the repository's other runs.
struct JobScopes {
  int64_t repo_id = 0;
  std::string save;
  std::vector<std::string> read;
};
Result<JobScopes> job_scopes(pg::Conn& c, int64_t job) {
  LS_TRY_ASSIGN(auto r,
                c.exec("SELECT r.repo_id, p.name, r.event, r.ref FROM jobs j JOIN runs r ON "
                       "r.id = j.run_id JOIN repos p ON p.id = r.repo_id WHERE j.id = $1",
                       {pg::p(job)}));
  if (r.empty()) return fail("no job " + std::to_string(job), ErrorKind::kNotFound);
  JobScopes out;
  out.repo_id = r.i64(0, 0);
  const std::string repo = "repo " + r.str(0, 1);
  if (r.str(0, 2) == "pull_request") {
    out.save = repo + " " + r.str(0, 3);
    out.read = {out.save, repo};
  } else {
    out.save = repo;
    out.read = {repo};
  }
  return out;
}

// GitHub's limit on a key's length; keys and versions are text without
// control characters.
std::string cache_text_error(const std::string& what, const std::string& v, size_t max) {
  if (v.empty()) return what + " is empty";
  if (v.size() > max) return what + " is longer than " + std::to_string(max) + " bytes";
  for (unsigned char ch : v)
    if (ch < 0x20 || ch == 0x7f) return what + " holds a control character";
  return "";
}

constexpr const char* kCacheColumns =
    "id, key, scope, version, digest, size, files, "
    "(extract(epoch FROM created_at) * 1000)::bigint";

json cache_entry(const pg::Rows& r) {
  return {{"key", r.str(0, 1)},       {"scope", r.str(0, 2)}, {"version", r.str(0, 3)},
          {"digest", r.str(0, 4)},    {"size", r.i64(0, 5)},  {"files", r.i64(0, 6)},
          {"created_ms", r.i64(0, 7)}};
}

// Scope by scope: the exact key, then each restore key as a prefix (the
// newest entry wins), of the same version; as lockstep run's own cache
// (cache/depcache.hpp) and GitHub's.
HttpResponse cache_lookup(Server::Impl& s, int64_t agent, int64_t job, int attempt,
                          const json& body) {
  auto live = live_attempt(s, agent, job, attempt);
  if (!live) return error_response(live.error());
  if (!*live) return stale(job, attempt);
  const std::string key = body.value("key", ""), version = body.value("version", "");
  std::vector<std::string> restore;
  for (const auto& k : body.value("restore_keys", json::array()))
    if (k.is_string() && !k.get<std::string>().empty()) restore.push_back(k.get<std::string>());
  for (const auto& [what, v] : std::vector<std::pair<std::string, std::string>>{
           {"cache key", key}, {"cache version", version}})
    if (auto why = cache_text_error(what, v, 512); !why.empty()) return error_response(400, why);
  auto c = s.db->take();
  if (!c) return error_response(c.error());
  auto scopes = job_scopes(**c, job);
  if (!scopes) return error_response(scopes.error());
  const std::string cols = kCacheColumns;
  for (const auto& scope : scopes->read) {
    auto exact = (*c)->exec("SELECT " + cols +
                                " FROM caches WHERE repo_id = $1 AND scope = $2 AND key = $3 "
                                "AND version = $4",
                            {pg::p(scopes->repo_id), pg::p(scope), pg::p(key), pg::p(version)});
    if (!exact) return error_response(exact.error());
    std::optional<pg::Rows> found;
    std::string kind = "exact";
    if (!exact->empty()) found = std::move(*exact);
    for (size_t i = 0; !found && i < restore.size(); ++i) {
      auto m =
          (*c)->exec("SELECT " + cols +
                         " FROM caches WHERE repo_id = $1 AND scope = $2 AND "
                         "starts_with(key, $3) AND version = $4 ORDER BY created_at DESC, "
                         "id DESC LIMIT 1",
                     {pg::p(scopes->repo_id), pg::p(scope), pg::p(restore[i]), pg::p(version)});
      if (!m) return error_response(m.error());
      if (!m->empty()) {
        found = std::move(*m);
        kind = "restore-key";
      }
    }
    if (!found) continue;
    auto used = (*c)->exec("UPDATE caches SET last_used_at = now() WHERE id = $1",
                           {pg::p(found->i64(0, 0))});
    if (!used) return error_response(used.error());
    return json_response(200, {{"kind", kind}, {"entry", cache_entry(*found)}});
  }
  return json_response(200, {{"kind", "miss"}});
}

// A job's saved cache: its archive is stored already (sent as a blob). A
// key is taken once per scope; saving it again stores nothing.
HttpResponse cache_save(Server::Impl& s, int64_t agent, int64_t job, int attempt,
                        const json& body) {
  auto live = live_attempt(s, agent, job, attempt);
  if (!live) return error_response(live.error());
  if (!*live) return stale(job, attempt);
  const std::string key = body.value("key", ""), version = body.value("version", "");
  const std::string digest = body.value("digest", "");
  for (const auto& [what, v] : std::vector<std::pair<std::string, std::string>>{
           {"cache key", key}, {"cache version", version}})
    if (auto why = cache_text_error(what, v, 512); !why.empty()) return error_response(400, why);
  if (digest.rfind("sha256:", 0) != 0 || !is_sha_hex(digest.substr(7)))
    return error_response(400, "cache digest must be sha256:<64 hex digits>");
  const int64_t size = body.value("size", int64_t{-1}), files = body.value("files", int64_t{-1});
  if (size < 0 || files < 0) return error_response(400, "cache needs size and files");
  std::error_code ec;
  std::filesystem::create_directories(blobs_dir(s), ec);
  auto lock = LockFile::acquire(blobs_lock(blobs_dir(s)), true);
  if (!lock) return error_response(lock.error());
  struct stat st {};
  if (::stat((blobs_dir(s) / digest.substr(7)).c_str(), &st) != 0)
    return error_response(400, "cache archive " + digest + " is not stored yet");
  if (st.st_size != size)
    return error_response(400, "cache archive " + digest + " holds " + std::to_string(st.st_size) +
                                   " bytes, not " + std::to_string(size));
  bool created = false;
  std::string scope;
  {
    auto c = s.db->take();
    if (!c) return error_response(c.error());
    auto scopes = job_scopes(**c, job);
    if (!scopes) return error_response(scopes.error());
    scope = scopes->save;
    auto r = (*c)->exec(
        "INSERT INTO caches (repo_id, scope, key, version, digest, size, files, job_id, attempt) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (repo_id, scope, key) DO "
        "NOTHING RETURNING id",
        {pg::p(scopes->repo_id), pg::p(scope), pg::p(key), pg::p(version), pg::p(digest),
         pg::p(size), pg::p(files), pg::p(job), pg::p(attempt)});
    if (!r) return error_response(r.error());
    created = !r->empty();
  }
  if (created) {
    // Over the repository's limit: its least recently used entries go now.
    auto swept = sweep_caches(*s.db, s.cfg.cache_retention_days, s.cfg.cache_max_bytes);
    if (!swept) spdlog::warn("server: cache retention: {}", swept.error().message());
  }
  return json_response(200, {{"created", created}, {"scope", scope}});
}

}  // namespace

HttpResponse agent_route(Server::Impl& s, const HttpRequest& req) {
  std::string auth = req.header("authorization");
  if (auth.rfind("Bearer ", 0) != 0) return error_response(401, "agent token missing");
  auto agent = agent_by_token(*s.db, auth.substr(7));
  if (!agent) return error_response(agent.error());
  if (!*agent) return error_response(401, "unknown agent token");
  if (req.method != "POST") return error_response(405, "method not allowed");
  std::string what = req.path.substr(std::string("/api/agent/").size());
  if (what == "blob") return put_blob(s, **agent, req);
  if (what == "blob-get") return get_blob(s, req);
  if (what == "log") {
    auto job = parse_id(req.param("job"));
    auto attempt = parse_id(req.param("attempt"));
    auto offset = parse_id(req.param("offset"));
    if (!job || !attempt || !offset)
      return error_response(400, "log needs job, attempt and offset");
    auto r = append_log(*s.db, **agent, *job, static_cast<int>(*attempt), *offset, req.body,
                        s.cfg.max_log_bytes);
    if (!r) return error_response(r.error());
    switch (r->kind) {
      case LogAppend::kStale:
        return stale(*job, static_cast<int>(*attempt));
      case LogAppend::kGap:
        return json_response(400, {{"error", "gap in the log"}, {"log_bytes", r->log_bytes}});
      case LogAppend::kTooLarge:
        return json_response(413,
                             {{"error", "log over the size limit"}, {"log_bytes", r->log_bytes}});
      case LogAppend::kStored:
        return json_response(200, {{"log_bytes", r->log_bytes}});
    }
  }
  json body = json::parse(req.body.empty() ? "{}" : req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object())
    return error_response(400, "body is not a JSON object");
  if (what == "claim") return do_claim(s, **agent, body);
  if (what == "blobs-missing") return missing_blobs(s, body);
  int64_t job = body.value("job", int64_t{0});
  int attempt = body.value("attempt", 0);
  if (job <= 0 || attempt <= 0) return error_response(400, "request needs job and attempt");
  if (what == "start") {
    auto r = start_attempt(*s.db, **agent, job, attempt);
    if (!r) return error_response(r.error());
    return *r == Fence::kOk ? json_response(200, {{"ok", true}}) : stale(job, attempt);
  }
  if (what == "renew") {
    auto r = renew(*s.db, **agent, job, attempt);
    if (!r) return error_response(r.error());
    if (r->fence == Fence::kStale) return stale(job, attempt);
    return json_response(200, {{"cancel", r->cancel}});
  }
  if (what == "abandon") {
    auto r = abandon(*s.db, **agent, job, attempt, body.value("reason", "no reason given"));
    if (!r) return error_response(r.error());
    return *r == Fence::kOk ? json_response(200, {{"ok", true}}) : stale(job, attempt);
  }
  if (what == "artifact") return put_artifact(s, **agent, job, attempt, body);
  if (what == "cache-lookup") return cache_lookup(s, **agent, job, attempt, body);
  if (what == "cache-save") return cache_save(s, **agent, job, attempt, body);
  if (what == "finish") {
    Finish f;
    f.job = job;
    f.attempt = attempt;
    f.status = body.value("status", "failure");
    f.exit_code = body.value("exit_code", -1);
    f.env_hash = body.value("env_hash", "");
    f.record = body.value("record", json());
    f.run_record = body.value("run_record", json());
    f.log_bytes = body.value("log_bytes", int64_t{0});
    f.reason = body.value("reason", "");
    auto r = finish(*s.db, **agent, f);
    if (!r) return error_response(r.error());
    if (*r == FinishResult::kStale) return stale(job, attempt);
    if (*r == FinishResult::kLogIncomplete)
      return error_response(400, "the server does not hold the whole log yet");
    return json_response(200, {{"ok", true}});
  }
  return error_response(404, "no such agent request: " + req.path);
}

}  // namespace lockstep::server
