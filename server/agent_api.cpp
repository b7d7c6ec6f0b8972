// The agent protocol (docs/server.md, "Agent protocol"): claim (long poll),
// start, renew, log chunks and finish, each fenced by (job, attempt).
#include <spdlog/spdlog.h>

#include "server/queue.hpp"
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

}  // namespace

HttpResponse agent_route(Server::Impl& s, const HttpRequest& req) {
  std::string auth = req.header("authorization");
  if (auth.rfind("Bearer ", 0) != 0) return error_response(401, "agent token missing");
  auto agent = agent_by_token(*s.db, auth.substr(7));
  if (!agent) return error_response(agent.error());
  if (!*agent) return error_response(401, "unknown agent token");
  if (req.method != "POST") return error_response(405, "method not allowed");
  std::string what = req.path.substr(std::string("/api/agent/").size());
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
  if (what == "finish") {
    Finish f;
    f.job = job;
    f.attempt = attempt;
    f.status = body.value("status", "failure");
    f.exit_code = body.value("exit_code", -1);
    f.env_hash = body.value("env_hash", "");
    f.record = body.value("record", json());
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
