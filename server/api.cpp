// The server's routes: the read-only API (JSON made by PostgreSQL itself),
// the admin writes, and the dispatch to the agent protocol, the webhooks, the
// log stream and the UI.
#include <spdlog/spdlog.h>

#include "server/queue.hpp"
#include "server/server_impl.hpp"

namespace lockstep::server {

using nlohmann::json;

HttpResponse json_response(int status, const json& body) {
  return HttpResponse{status, "application/json", body.dump() + "\n", {}, {}};
}

HttpResponse error_response(int status, const std::string& message) {
  return json_response(status, json{{"error", message}});
}

HttpResponse error_response(const Error& e) {
  switch (e.kind()) {
    case ErrorKind::kUnavailable:
      return error_response(503, e.message());
    case ErrorKind::kNotFound:
      return error_response(404, e.message());
    case ErrorKind::kUsage:
      return error_response(400, e.message());
    default:
      return error_response(500, e.message());
  }
}

std::optional<int64_t> parse_id(const std::string& s) {
  if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  return std::stoll(s);
}

namespace {

// Splits "/api/runs/12/cancel" into its segments.
std::vector<std::string> segments(const std::string& path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) out.push_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

// One query returning one json value; null when it returned no row.
HttpResponse json_query(pg::Pool& db, const std::string& sql, const std::vector<pg::Param>& params,
                        const std::string& not_found = "") {
  auto c = db.take();
  if (!c) return error_response(c.error());
  auto r = (*c)->exec(sql, params);
  if (!r) return error_response(r.error());
  if (r->empty() || r->null(0, 0))
    return error_response(404, not_found.empty() ? "not found" : not_found);
  return HttpResponse{200, "application/json", r->str(0, 0) + "\n", {}, {}};
}

const char* kAttemptsJson =
    "(SELECT coalesce(json_agg(a ORDER BY a.attempt), '[]') FROM (SELECT a.attempt, a.state, "
    "a.reason, ag.name AS agent, a.claimed_at, a.started_at, a.renewed_at, a.finished_at, "
    "a.exit_code, a.env_hash, a.log_bytes, a.log_truncated, a.record FROM attempts a "
    "LEFT JOIN agents ag ON ag.id = a.agent_id WHERE a.job_id = j.id) a)";

std::string run_columns() {
  return "r.id, p.name AS repo, r.event, r.ref, r.sha, r.base_sha, r.fork, r.workflow_file, "
         "r.workflow_name, r.status, r.error, r.rerun_of, r.created_at, r.started_at, "
         "r.finished_at, extract(epoch FROM (coalesce(r.finished_at, now()) - "
         "coalesce(r.started_at, r.created_at)))::float8 AS duration_s";
}

HttpResponse list_runs(Server::Impl& s, const HttpRequest& req) {
  int64_t limit = 50;
  if (auto l = parse_id(req.param("limit"))) limit = std::clamp<int64_t>(*l, 1, 1000);
  std::string repo = req.param("repo");
  return json_query(
      *s.db,
      "SELECT coalesce(json_agg(x ORDER BY x.id DESC), '[]') FROM (SELECT " + run_columns() +
          ", (SELECT json_object_agg(st, n) FROM (SELECT status AS st, count(*) AS n FROM jobs "
          "WHERE run_id = r.id GROUP BY status) c) AS jobs FROM runs r JOIN repos p ON "
          "p.id = r.repo_id WHERE ($1 = '' OR p.name = $1) ORDER BY r.id DESC LIMIT $2) x",
      {pg::p(repo), pg::p(limit)});
}

HttpResponse get_run(Server::Impl& s, int64_t id) {
  return json_query(
      *s.db,
      "SELECT json_build_object('run', (SELECT row_to_json(x) FROM (SELECT " + run_columns() +
          " FROM runs r JOIN repos p ON p.id = r.repo_id WHERE r.id = $1) x), 'jobs', "
          "(SELECT coalesce(json_agg(y ORDER BY y.id), '[]') FROM (SELECT j.id, j.job_key AS key, "
          "j.name, j.matrix, j.needs, j.status, j.attempt, j.reason, j.cancel_requested, "
          "j.queued_at, j.finished_at, " +
          kAttemptsJson +
          " AS attempts FROM jobs j WHERE j.run_id = $1) y)) WHERE EXISTS (SELECT 1 FROM runs "
          "WHERE id = $1)",
      {pg::p(id)}, "no run " + std::to_string(id));
}

HttpResponse get_job(Server::Impl& s, int64_t id) {
  return json_query(
      *s.db,
      std::string("SELECT row_to_json(y) FROM (SELECT j.id, j.run_id, j.job_key AS key, j.name, "
                  "j.matrix, j.needs, j.plan, j.status, j.attempt, j.reason, j.cancel_requested, "
                  "j.retry, j.queued_at, j.finished_at, r.sha, r.ref, r.event, r.workflow_file, "
                  "r.workflow_name, p.name AS repo, p.clone_url, ") +
          kAttemptsJson +
          " AS attempts FROM jobs j JOIN runs r ON r.id = j.run_id JOIN repos p ON "
          "p.id = r.repo_id WHERE j.id = $1) y",
      {pg::p(id)}, "no job " + std::to_string(id));
}

// The attempt a log request means: the one asked for, else the newest.
Result<std::optional<int>> pick_attempt(pg::Pool& db, int64_t job, const std::string& asked) {
  if (auto a = parse_id(asked)) return std::optional<int>(static_cast<int>(*a));
  LS_TRY_ASSIGN(auto c, db.take());
  LS_TRY_ASSIGN(auto r,
                c->exec("SELECT max(attempt) FROM attempts WHERE job_id = $1", {pg::p(job)}));
  if (r.empty() || r.null(0, 0)) return std::optional<int>();
  return std::optional<int>(static_cast<int>(r.i64(0, 0)));
}

// Log bytes of an attempt from `offset`, at most `limit`.
Result<std::string> read_log(pg::Pool& db, int64_t job, int attempt, int64_t offset,
                             int64_t limit) {
  LS_TRY_ASSIGN(auto c, db.take());
  LS_TRY_ASSIGN(auto r,
                c->exec("SELECT \"offset\", data FROM log_chunks WHERE job_id = $1 AND "
                        "attempt = $2 AND \"offset\" + length(data) > $3 ORDER BY \"offset\"",
                        {pg::p(job), pg::p(attempt), pg::p(offset)}));
  std::string out;
  for (int i = 0; i < r.size() && static_cast<int64_t>(out.size()) < limit; ++i) {
    int64_t at = r.i64(i, 0);
    std::string data = r.bytes(i, 1);
    if (at < offset) data = data.substr(static_cast<size_t>(offset - at));
    out += data;
  }
  if (static_cast<int64_t>(out.size()) > limit) out.resize(static_cast<size_t>(limit));
  return out;
}

HttpResponse get_log(Server::Impl& s, int64_t job, const HttpRequest& req) {
  auto att = pick_attempt(*s.db, job, req.param("attempt"));
  if (!att) return error_response(att.error());
  if (!*att) {
    auto c = s.db->take();
    if (!c) return error_response(c.error());
    auto j = (*c)->exec("SELECT 1 FROM jobs WHERE id = $1", {pg::p(job)});
    if (!j) return error_response(j.error());
    if (j->empty()) return error_response(404, "no job " + std::to_string(job));
    return HttpResponse{200, "text/plain; charset=utf-8", "", {}, {}};
  }
  int64_t offset = parse_id(req.param("offset")).value_or(0);
  auto log = read_log(*s.db, job, **att, offset, s.cfg.max_log_bytes);
  if (!log) return error_response(log.error());
  return HttpResponse{200,
                      "text/plain; charset=utf-8",
                      std::move(*log),
                      {{"X-Lockstep-Attempt", std::to_string(**att)}},
                      {}};
}

// The whole run record of an attempt (the newest, or ?attempt=A).
HttpResponse get_record(Server::Impl& s, int64_t job, const HttpRequest& req) {
  auto att = pick_attempt(*s.db, job, req.param("attempt"));
  if (!att) return error_response(att.error());
  if (!*att) return error_response(404, "job " + std::to_string(job) + " has no attempt yet");
  return json_query(*s.db,
                    "SELECT run_record::text FROM attempts WHERE job_id = $1 AND attempt = $2",
                    {pg::p(job), pg::p(**att)},
                    "attempt " + std::to_string(**att) + " of job " + std::to_string(job) +
                        " has no run record (it did not finish on an agent)");
}

// Server-Sent Events: each event's id is the offset after its data, so a
// reconnecting browser resumes with Last-Event-ID.
HttpResponse stream_log(Server::Impl& s, int64_t job, const HttpRequest& req) {
  auto att = pick_attempt(*s.db, job, req.param("attempt"));
  if (!att) return error_response(att.error());
  if (!*att) return error_response(404, "job " + std::to_string(job) + " has no attempt yet");
  int attempt = **att;
  int64_t offset =
      parse_id(req.header("last-event-id")).value_or(parse_id(req.param("offset")).value_or(0));
  HttpResponse res;
  res.content_type = "text/event-stream";
  res.stream = [&s, job, attempt, offset](const StreamWrite& write) mutable {
    if (!write("retry: 1000\n\n")) return;
    for (;;) {
      uint64_t gen = s.notifier.generation(Notifier::kLog);
      auto data = read_log(*s.db, job, attempt, offset, 1 << 20);
      if (data && !data->empty()) {
        offset += static_cast<int64_t>(data->size());
        std::string ev = "id: " + std::to_string(offset) + "\ndata: " +
                         json(*data).dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
        if (!write(ev)) return;
        continue;
      }
      // The connection goes back to the pool before the wait: an idle
      // stream must not hold one.
      Result<pg::Rows> st = fail("no database connection");
      if (auto c = s.db->take())
        st = (*c)->exec(
            "SELECT state, log_bytes, log_truncated FROM attempts "
            "WHERE job_id = $1 AND attempt = $2",
            {pg::p(job), pg::p(attempt)});
      {
        if (st && !st->empty()) {
          std::string state = st->str(0, 0);
          bool live = state == "claimed" || state == "running";
          if (!live && offset >= st->i64(0, 1)) {
            json end = {
                {"state", state}, {"log_bytes", st->i64(0, 1)}, {"truncated", st->boolean(0, 2)}};
            write("event: end\ndata: " + end.dump() + "\n\n");
            return;
          }
        }
      }
      if (!s.notifier.wait(Notifier::kLog, gen, std::chrono::seconds(15))) return;
      if (!write(": keep-alive\n\n")) return;
    }
  };
  return res;
}

HttpResponse list_agents(Server::Impl& s) {
  return json_query(
      *s.db,
      "SELECT coalesce(json_agg(x ORDER BY x.name), '[]') FROM (SELECT g.id, g.name, g.slots, "
      "g.version, g.last_seen, (SELECT coalesce(json_agg(json_build_object('job', a.job_id, "
      "'attempt', a.attempt, 'state', a.state, 'renewed_at', a.renewed_at, 'name', j.name) "
      "ORDER BY a.job_id), '[]') FROM attempts a JOIN jobs j ON j.id = a.job_id WHERE "
      "a.agent_id = g.id AND a.state IN ('claimed', 'running')) AS jobs FROM agents g) x",
      {});
}

HttpResponse list_repos(Server::Impl& s) {
  return json_query(
      *s.db,
      "SELECT coalesce(json_agg(x ORDER BY x.name), '[]') FROM (SELECT p.id, p.name, p.forge, "
      "p.poll_seconds, (SELECT row_to_json(l) FROM (SELECT r.id, r.status, r.sha, r.ref, r.event, "
      "r.workflow_file, r.created_at FROM runs r WHERE r.repo_id = p.id ORDER BY r.id DESC "
      "LIMIT 1) l) AS latest_run FROM repos p) x",
      {});
}

bool is_admin(Server::Impl& s, const HttpRequest& req) {
  std::string auth = req.header("authorization");
  if (auth.rfind("Bearer ", 0) != 0) return false;
  return constant_time_equal(sha256_hex(auth.substr(7)), sha256_hex(s.admin_token));
}

}  // namespace

Status store_secret(pg::Pool& db, const SecretBox& box, const std::string& repo,
                    const std::string& kind, const std::string& name, const std::string& value) {
  if (name.empty() ||
      name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                             "0123456789_") != std::string::npos ||
      std::isdigit(static_cast<unsigned char>(name[0])) || name.rfind("GITHUB_", 0) == 0)
    return fail("'" + name +
                    "' is not a valid secret or variable name (letters, digits, '_'; "
                    "not starting with a digit or GITHUB_)",
                ErrorKind::kUsage);
  LS_TRY_ASSIGN(auto c, db.take());
  LS_TRY_ASSIGN(auto r, c->exec("SELECT id FROM repos WHERE name = $1", {pg::p(repo)}));
  if (r.empty()) return fail("no repository '" + repo + "'", ErrorKind::kNotFound);
  int64_t repo_id = r.i64(0, 0);
  if (kind == "secret") {
    LS_TRY_ASSIGN(std::string sealed,
                  box.seal(value, "secret:" + std::to_string(repo_id) + ":" + name));
    LS_TRY(
        c->exec("INSERT INTO secrets (repo_id, kind, name, value_enc) VALUES ($1, 'secret', $2, "
                "$3) ON CONFLICT (repo_id, kind, name) DO UPDATE SET value_enc = "
                "excluded.value_enc, updated_at = now()",
                {pg::p(repo_id), pg::p(name), pg::bytea(sealed)}));
  } else {
    LS_TRY(
        c->exec("INSERT INTO secrets (repo_id, kind, name, value) VALUES ($1, 'var', $2, $3) "
                "ON CONFLICT (repo_id, kind, name) DO UPDATE SET value = excluded.value, "
                "updated_at = now()",
                {pg::p(repo_id), pg::p(name), pg::p(value)}));
  }
  return {};
}

HttpResponse Server::Impl::route(const HttpRequest& req) {
  auto seg = segments(req.path);
  if (!seg.empty() && seg[0] == "hooks") return hook_route(*this, req);
  if (seg.size() >= 2 && seg[0] == "api" && seg[1] == "agent") return agent_route(*this, req);
  if (seg.empty() || seg[0] != "api") {
    if (auto ui = ui_route(req)) return *ui;
    return error_response(404, "no such page: " + req.path);
  }
  if (req.method == "GET") {
    if (seg.size() == 2 && seg[1] == "repos") return list_repos(*this);
    if (seg.size() == 2 && seg[1] == "runs") return list_runs(*this, req);
    if (seg.size() == 2 && seg[1] == "agents") return list_agents(*this);
    if (seg.size() == 3 && seg[1] == "runs")
      if (auto id = parse_id(seg[2])) return get_run(*this, *id);
    if (seg.size() >= 3 && seg[1] == "jobs") {
      if (auto id = parse_id(seg[2])) {
        if (seg.size() == 3) return get_job(*this, *id);
        if (seg.size() == 4 && seg[3] == "log") return get_log(*this, *id, req);
        if (seg.size() == 4 && seg[3] == "record") return get_record(*this, *id, req);
        if (seg.size() == 5 && seg[3] == "log" && seg[4] == "stream")
          return stream_log(*this, *id, req);
      }
    }
    if (seg.size() == 2 && seg[1] == "health") {
      auto c = db->take();
      if (!c) return error_response(c.error());
      auto r = (*c)->exec("SELECT 1");
      if (!r) return error_response(r.error());
      return json_response(200, {{"ok", true}});
    }
    return error_response(404, "no such resource: " + req.path);
  }
  if (req.method != "POST") return error_response(405, "method not allowed");
  if (!is_admin(*this, req))
    return error_response(401, "writes need 'Authorization: Bearer <admin token>'");
  if (seg.size() == 4 && seg[1] == "runs") {
    auto id = parse_id(seg[2]);
    if (!id) return error_response(404, "no such run");
    if (seg[3] == "cancel") {
      auto st = cancel_run(*db, *id);
      return st ? json_response(200, {{"cancelled", *id}}) : error_response(st.error());
    }
    if (seg[3] == "rerun") {
      auto r = rerun(*db, *id);
      return r ? json_response(201, {{"run", *r}}) : error_response(r.error());
    }
  }
  if (seg.size() == 4 && seg[1] == "jobs" && seg[3] == "cancel") {
    auto id = parse_id(seg[2]);
    if (!id) return error_response(404, "no such job");
    auto st = cancel_job(*db, *id);
    return st ? json_response(200, {{"cancelled", *id}}) : error_response(st.error());
  }
  // /api/repos/OWNER/NAME/secrets/NAME (repository names hold a '/').
  if (seg.size() >= 5 && seg[1] == "repos" &&
      (seg[seg.size() - 2] == "secrets" || seg[seg.size() - 2] == "vars")) {
    std::string repo;
    for (size_t i = 2; i + 2 < seg.size(); ++i) repo += (repo.empty() ? "" : "/") + seg[i];
    std::string kind = seg[seg.size() - 2] == "secrets" ? "secret" : "var";
    auto st = store_secret(*db, *box, repo, kind, seg.back(), req.body);
    return st ? json_response(200, {{"stored", seg.back()}}) : error_response(st.error());
  }
  return error_response(404, "no such resource: " + req.path);
}

}  // namespace lockstep::server
