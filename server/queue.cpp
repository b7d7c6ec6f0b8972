#include "server/queue.hpp"

#include <map>
#include <set>

#include "pipeline/matrix.hpp"
#include "pipeline/parse.hpp"
#include "runner/engine/job_plan.hpp"
#include "server/crypto.hpp"

namespace lockstep::server {

using nlohmann::json;

namespace {

std::string pg_array(const std::vector<std::string>& v) {
  // A text[] literal: every element double-quoted, quotes and backslashes escaped.
  std::string s = "{";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) s += ',';
    s += '"';
    for (char c : v[i]) {
      if (c == '"' || c == '\\') s += '\\';
      s += c;
    }
    s += '"';
  }
  return s + "}";
}

std::vector<std::string> parse_pg_array(const std::string& s) {
  std::vector<std::string> out;
  if (s.size() < 2) return out;
  std::string cur;
  bool quoted = false, any = false;
  for (size_t i = 1; i + 1 < s.size(); ++i) {
    char c = s[i];
    if (quoted) {
      if (c == '\\' && i + 2 < s.size())
        cur += s[++i];
      else if (c == '"')
        quoted = false;
      else
        cur += c;
    } else if (c == '"') {
      quoted = any = true;
    } else if (c == ',') {
      out.push_back(cur);
      cur.clear();
      any = false;
    } else {
      cur += c;
      any = true;
    }
  }
  if (any || !cur.empty()) out.push_back(cur);
  return out;
}

// One commit status of a job, in the transaction that changed the job.
Status add_status(pg::Tx& tx, int64_t job, const char* state, const std::string& description) {
  LS_TRY(
      tx.exec("INSERT INTO status_outbox (repo_id, sha, context, state, description, target_url) "
              "SELECT r.repo_id, r.sha, 'lockstep: ' || coalesce(nullif(r.workflow_name, ''), "
              "r.workflow_file) || ' / ' || j.name, $2, $3, '/#/jobs/' || j.id "
              "FROM jobs j JOIN runs r ON r.id = j.run_id WHERE j.id = $1",
              {pg::p(job), pg::p(state), pg::p(description)}));
  return {};
}

bool terminal(const std::string& s) {
  return s == "success" || s == "failure" || s == "cancelled" || s == "skipped";
}

// With the run row locked: queues or skips waiting jobs whose needs are
// done, and sets the run's status. Wakes claimers when it queued anything.
Status promote_pending(pg::Tx& tx, int64_t repo_id, const std::string& group);

Result<json> needs_context(pg::Tx& tx, int64_t run, const std::vector<std::string>& keys);

// A job whose matrix comes from the outputs of the jobs it needs, once they
// ended: expanded as `lockstep run` expands it (the workflow and the
// contexts it was planned with, and their outputs), one queued job per cell
// with the stand-in's plan and that cell; the stand-in ends, as "expanded
// into N jobs". A matrix that does not evaluate fails it with the reason.
Status expand_stand_in(pg::Tx& tx, int64_t run, int64_t id) {
  LS_TRY_ASSIGN(auto r,
                tx.exec("SELECT job_key, needs, plan, retry FROM jobs WHERE id = $1", {pg::p(id)}));
  if (r.empty()) return {};
  const std::string key = r.str(0, 0);
  const std::vector<std::string> needs = parse_pg_array(r.str(0, 1));
  json plan = json::parse(r.str(0, 2), nullptr, false);
  if (!plan.is_object()) plan = json::object();
  const json how = plan.value("matrix_from_needs", json::object());
  plan.erase("matrix_from_needs");
  auto fail_it = [&](const std::string& why) -> Status {
    LS_TRY(
        tx.exec("UPDATE jobs SET status = 'failure', finished_at = now(), reason = $2 "
                "WHERE id = $1",
                {pg::p(id), pg::p(why)}));
    return add_status(tx, id, "failure", why.substr(0, 120));
  };
  auto wf = pipeline::parse_workflow(how.value("workflow_text", ""), plan.value("workflow", ""));
  if (!wf) return fail_it(std::string(wf.error().message()));
  const pipeline::Job* job = nullptr;
  for (const auto& j : wf->jobs)
    if (j.id == key) job = &j;
  if (!job) return fail_it("job '" + key + "' is not in its workflow");
  pipeline::EvalContext ctx;
  ctx.contexts = how.value("contexts", json::object());
  LS_TRY_ASSIGN(ctx.contexts["needs"], needs_context(tx, run, needs));
  auto cells = pipeline::expand_job(*wf, *job, ctx);
  if (!cells) return fail_it("matrix: " + std::string(cells.error().message()));
  for (const auto& cell : *cells) {
    json p = plan;
    p["matrix"] = json::parse(cell.matrix.dump());
    p["name"] = cell.display_name;
    LS_TRY_ASSIGN(
        auto jr,
        tx.exec("INSERT INTO jobs (run_id, job_key, name, matrix, needs, plan, status, "
                "retry, queued_at) VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, now()) "
                "RETURNING id",
                {pg::p(run), pg::p(key), pg::p(cell.display_name), pg::p(p["matrix"].dump()),
                 pg::p(r.str(0, 1)), pg::p(p.dump()), pg::p(r.boolean(0, 3))}));
    LS_TRY(add_status(tx, jr.i64(0, 0), "pending", "queued"));
  }
  const std::string done = "expanded into " + std::to_string(cells->size()) + " jobs";
  LS_TRY(
      tx.exec("UPDATE jobs SET status = 'success', finished_at = now(), reason = $2 "
              "WHERE id = $1",
              {pg::p(id), pg::p(done)}));
  return add_status(tx, id, "success", done);
}

Status settle_run(pg::Tx& tx, int64_t run) {
  // Log followers learn that an attempt ended (their stream then ends).
  LS_TRY(tx.exec("NOTIFY lockstep_log"));
  // Most calls change nothing: no job waits and some still run. Counting says
  // so without reading every job's needs and plan.
  LS_TRY_ASSIGN(auto counts, tx.exec("SELECT count(*) FILTER (WHERE status = 'waiting'), "
                                     "count(*) FILTER (WHERE status NOT IN ('success', 'failure', "
                                     "'cancelled', 'skipped')) FROM jobs WHERE run_id = $1",
                                     {pg::p(run)}));
  if (counts.i64(0, 0) == 0 && counts.i64(0, 1) > 0) return {};
  LS_TRY_ASSIGN(auto info, tx.exec("SELECT status, repo_id, concurrency_group FROM runs "
                                   "WHERE id = $1",
                                   {pg::p(run)}));
  // A pending run (its concurrency group is busy) queues nothing yet.
  const bool pending = !info.empty() && info.str(0, 0) == "pending";
  LS_TRY_ASSIGN(auto rows, tx.exec("SELECT id, job_key, status, needs, plan->>'run_on_failure', "
                                   "plan ? 'matrix_from_needs' FROM jobs "
                                   "WHERE run_id = $1 ORDER BY id",
                                   {pg::p(run)}));
  std::map<std::string, std::pair<int, int>> by_key;  // key -> (not done, failed)
  for (int i = 0; i < rows.size(); ++i) {
    auto& k = by_key[rows.str(i, 1)];
    std::string st = rows.str(i, 2);
    if (!terminal(st)) ++k.first;
    if (st == "failure" || st == "cancelled" || st == "skipped") ++k.second;
  }
  bool queued_any = false, expanded = false;
  bool all_done = true, any_failed = false, any_cancelled = false;
  for (int i = 0; i < rows.size(); ++i) {
    std::string st = rows.str(i, 2);
    int64_t id = rows.i64(i, 0);
    if (st == "waiting" && !pending) {
      bool ready = true, need_failed = false;
      for (const auto& n : parse_pg_array(rows.str(i, 3))) {
        auto it = by_key.find(n);
        if (it == by_key.end()) continue;
        if (it->second.first > 0) ready = false;
        if (it->second.second > 0) need_failed = true;
      }
      if (ready && rows.boolean(i, 5) && (!need_failed || rows.str(i, 4) == "true")) {
        // A matrix from the outputs of the jobs it needs: its cells now.
        LS_TRY(expand_stand_in(tx, run, id));
        expanded = true;
        continue;
      }
      if (ready) {
        bool run_it = !need_failed || rows.str(i, 4) == "true";
        st = run_it ? "queued" : "skipped";
        LS_TRY(tx.exec(run_it ? "UPDATE jobs SET status = 'queued', queued_at = now() WHERE id = $1"
                              : "UPDATE jobs SET status = 'skipped', finished_at = now(), "
                                "reason = 'a job it needs did not succeed' WHERE id = $1",
                       {pg::p(id)}));
        if (run_it)
          queued_any = true;
        else
          LS_TRY(add_status(tx, id, "success", "skipped"));
      }
    }
    if (!terminal(st)) all_done = false;
    if (st == "failure") any_failed = true;
    if (st == "cancelled") any_cancelled = true;
  }
  // The cells (or the failed stand-in) are new facts for the rest of the
  // run: settled again, from the top.
  if (expanded) {
    LS_TRY(tx.exec("NOTIFY lockstep_jobs"));
    return settle_run(tx, run);
  }
  if (queued_any) LS_TRY(tx.exec("NOTIFY lockstep_jobs"));
  if (all_done) {
    const char* st = any_failed ? "failure" : any_cancelled ? "cancelled" : "success";
    LS_TRY(
        tx.exec("UPDATE runs SET status = $2, finished_at = coalesce(finished_at, now()) "
                "WHERE id = $1 AND status NOT IN ('success', 'failure', 'cancelled')",
                {pg::p(run), pg::p(st)}));
    if (!info.empty() && !info.str(0, 2).empty())
      LS_TRY(promote_pending(tx, info.i64(0, 1), info.str(0, 2)));
  }
  return {};
}

// One group's runs are decided one transaction at a time.
Status lock_group(pg::Tx& tx, int64_t repo_id, const std::string& group) {
  LS_TRY(tx.exec("SELECT pg_advisory_xact_lock(hashtextextended($1, $2))",
                 {pg::p(group), pg::p(repo_id)}));
  return {};
}

// When no run of the group is queued or running, the oldest pending one
// starts: its jobs without needs are queued. Called as a run of the group
// ends, and by the reaper for every group with a pending run (a run that
// became pending while the last busy one was ending, unseen by either).
Status promote_pending(pg::Tx& tx, int64_t repo_id, const std::string& group) {
  LS_TRY_ASSIGN(auto busy, tx.exec("SELECT 1 FROM runs WHERE repo_id = $1 AND "
                                   "concurrency_group = $2 AND status IN ('queued', 'running')",
                                   {pg::p(repo_id), pg::p(group)}));
  if (!busy.empty()) return {};
  LS_TRY_ASSIGN(auto next, tx.exec("UPDATE runs SET status = 'queued' WHERE id = (SELECT id FROM "
                                   "runs WHERE repo_id = $1 AND concurrency_group = $2 AND "
                                   "status = 'pending' ORDER BY id LIMIT 1) AND status = "
                                   "'pending' RETURNING id",
                                   {pg::p(repo_id), pg::p(group)}));
  if (next.empty()) return {};
  return settle_run(tx, next.i64(0, 0));
}

// Cancels every job of `run` not yet ended (a running one through its
// agent's next renewal), in the caller's transaction.
Status cancel_run_in(pg::Tx& tx, int64_t run, const std::string& reason) {
  LS_TRY_ASSIGN(auto r, tx.exec("UPDATE jobs SET status = 'cancelled', finished_at = now(), "
                                "reason = $2 WHERE run_id = $1 AND status IN ('waiting', "
                                "'queued') RETURNING id",
                                {pg::p(run), pg::p(reason)}));
  for (int i = 0; i < r.size(); ++i) LS_TRY(add_status(tx, r.i64(i, 0), "error", "cancelled"));
  LS_TRY(
      tx.exec("UPDATE jobs SET cancel_requested = true, reason = $2 WHERE run_id = $1 AND "
              "status IN ('claimed', 'running')",
              {pg::p(run), pg::p(reason)}));
  return settle_run(tx, run);
}

// What `needs` sees of the jobs `keys` of a run that ended: per job, its
// cells' results combined as runner/engine/scheduler.hpp's combined() does
// (failure over cancelled over success over skipped) and their outputs from
// each cell's current attempt's record, later cells winning.
Result<json> needs_context(pg::Tx& tx, int64_t run, const std::vector<std::string>& keys) {
  LS_TRY_ASSIGN(auto rows,
                tx.exec("SELECT j.job_key, j.status, a.record->'job'->'outputs' FROM jobs j "
                        "LEFT JOIN attempts a ON a.job_id = j.id AND a.attempt = j.attempt "
                        "WHERE j.run_id = $1 AND j.job_key = ANY($2::text[]) ORDER BY j.id",
                        {pg::p(run), pg::p(pg_array(keys))}));
  auto rank = [](const std::string& st) {
    return st == "failure" ? 3 : st == "cancelled" ? 2 : st == "success" ? 1 : 0;
  };
  json out = json::object();
  for (const auto& k : keys) out[k] = {{"result", "skipped"}, {"outputs", json::object()}};
  for (int i = 0; i < rows.size(); ++i) {
    json& n = out[rows.str(i, 0)];
    std::string st = rows.str(i, 1);
    if (!terminal(st)) st = "failure";  // never: a job waits for its needs to end
    if (rank(st) > rank(n["result"].get<std::string>())) n["result"] = st;
    json outputs = rows.null(i, 2) ? json() : json::parse(rows.str(i, 2), nullptr, false);
    if (outputs.is_object())
      for (auto it = outputs.begin(); it != outputs.end(); ++it)
        if (it->is_string()) n["outputs"][it.key()] = *it;
  }
  return out;
}

Status lock_run(pg::Tx& tx, int64_t run) {
  LS_TRY(tx.exec("SELECT 1 FROM runs WHERE id = $1 FOR UPDATE", {pg::p(run)}));
  return {};
}

Result<std::optional<int64_t>> run_of_job(pg::Tx& tx, int64_t job) {
  LS_TRY_ASSIGN(auto r, tx.exec("SELECT run_id FROM jobs WHERE id = $1", {pg::p(job)}));
  if (r.empty()) return std::optional<int64_t>();
  return std::optional<int64_t>(r.i64(0, 0));
}

// After an attempt ended without a result (lapsed, lost, abandoned): the
// job runs again as a new attempt, or ends when it was cancelled or must not
// be retried.
Status requeue_or_end(pg::Tx& tx, int64_t job, int attempt, bool lapsed) {
  LS_TRY_ASSIGN(auto j, tx.exec("SELECT retry, cancel_requested FROM jobs WHERE id = $1 "
                                "AND attempt = $2 FOR UPDATE",
                                {pg::p(job), pg::p(attempt)}));
  if (j.empty()) return {};
  if (j.boolean(0, 1)) {
    LS_TRY(tx.exec("UPDATE jobs SET status = 'cancelled', finished_at = now() WHERE id = $1",
                   {pg::p(job)}));
    LS_TRY(add_status(tx, job, "error", "cancelled"));
  } else if (j.boolean(0, 0) || lapsed) {
    // A lapsed claim never started, so it runs again even if not retried.
    LS_TRY(tx.exec("UPDATE jobs SET status = 'queued', queued_at = now() WHERE id = $1",
                   {pg::p(job)}));
    LS_TRY(tx.exec("NOTIFY lockstep_jobs"));
  } else {
    LS_TRY(
        tx.exec("UPDATE jobs SET status = 'failure', finished_at = now(), "
                "reason = 'agent lost (the job is not retried)' WHERE id = $1",
                {pg::p(job)}));
    LS_TRY(add_status(tx, job, "failure", "agent lost"));
  }
  return {};
}

}  // namespace

Result<std::optional<int64_t>> insert_run(pg::Tx& tx, const NewRun& run) {
  std::string status = run.error.empty() ? "queued" : "failure";
  // A concurrency group: with cancel-in-progress every earlier run of the
  // group still going is cancelled; without it the run waits as pending
  // while one is queued or running, and an earlier pending one is cancelled
  // (GitHub: at most one running and one pending per group).
  std::vector<int64_t> superseded;
  const bool grouped = run.error.empty() && !run.concurrency_group.empty();
  if (grouped) {
    LS_TRY(lock_group(tx, run.repo_id, run.concurrency_group));
    LS_TRY_ASSIGN(auto others,
                  tx.exec("SELECT id, status FROM runs WHERE repo_id = $1 AND "
                          "concurrency_group = $2 AND status IN ('pending', 'queued', 'running') "
                          "ORDER BY id",
                          {pg::p(run.repo_id), pg::p(run.concurrency_group)}));
    for (int i = 0; i < others.size(); ++i) {
      if (run.cancel_in_progress || others.str(i, 1) == "pending")
        superseded.push_back(others.i64(i, 0));
      else
        status = "pending";
    }
  }
  LS_TRY_ASSIGN(
      auto r,
      tx.exec(
          "INSERT INTO runs (repo_id, delivery_id, run_key, event, ref, sha, base_sha, fork, "
          "workflow_file, workflow_name, status, error, rerun_of, finished_at, "
          "concurrency_group, concurrency_cancel) "
          "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, "
          "CASE WHEN $11 = 'failure' THEN now() END, $14, $15) "
          "ON CONFLICT DO NOTHING RETURNING id",
          {pg::p(run.repo_id), run.delivery ? pg::p(*run.delivery) : pg::Param(),
           pg::p(run.run_key), pg::p(run.event), pg::p(run.ref), pg::p(run.sha),
           pg::p(run.base_sha), pg::p(run.fork), pg::p(run.workflow_file), pg::p(run.workflow_name),
           pg::p(status), pg::p(run.error), run.rerun_of ? pg::p(*run.rerun_of) : pg::Param(),
           pg::p(run.concurrency_group), pg::p(run.cancel_in_progress)}));
  if (r.empty()) return std::optional<int64_t>();
  int64_t id = r.i64(0, 0);
  const bool pending = status == "pending";
  if (!run.error.empty()) {
    LS_TRY(
        tx.exec("INSERT INTO status_outbox (repo_id, sha, context, state, description, "
                "target_url) VALUES ($1, $2, $3, 'failure', $4, $5)",
                {pg::p(run.repo_id), pg::p(run.sha), pg::p("lockstep: " + run.workflow_file),
                 pg::p(run.error.substr(0, 140)), pg::p("/#/runs/" + std::to_string(id))}));
    return std::optional<int64_t>(id);
  }
  bool any_queued = false;
  for (const auto& j : run.jobs) {
    bool waits = pending || !j.needs.empty();
    json plan = j.plan;
    plan["run_on_failure"] = j.run_on_failure;
    LS_TRY_ASSIGN(auto jr,
                  tx.exec("INSERT INTO jobs (run_id, job_key, name, matrix, needs, plan, status, "
                          "retry, queued_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
                          "CASE WHEN $7 = 'queued' THEN now() END) RETURNING id",
                          {pg::p(id), pg::p(j.key), pg::p(j.name), pg::p(j.matrix.dump()),
                           pg::p(pg_array(j.needs)), pg::p(plan.dump()),
                           pg::p(waits ? "waiting" : "queued"), pg::p(j.retry)}));
    LS_TRY(add_status(tx, jr.i64(0, 0), "pending", waits ? "waiting" : "queued"));
    if (!waits) any_queued = true;
  }
  if (any_queued) LS_TRY(tx.exec("NOTIFY lockstep_jobs"));
  for (int64_t old : superseded)
    LS_TRY(cancel_run_in(tx, old,
                         "cancelled: run " + std::to_string(id) + " of concurrency group '" +
                             run.concurrency_group + "' superseded it"));
  return std::optional<int64_t>(id);
}

Result<std::optional<Claim>> claim(pg::Pool& db, int64_t agent_id) {
  return pg::in_tx(db, [&](pg::Tx& tx) -> Result<std::optional<Claim>> {
    // Only the job row is locked here (never the run): claims never wait.
    LS_TRY_ASSIGN(auto r, tx.exec("UPDATE jobs SET status = 'claimed', attempt = attempt + 1 "
                                  "WHERE id = (SELECT id FROM jobs WHERE status = 'queued' "
                                  "ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1) "
                                  "RETURNING id, attempt, run_id, plan, needs",
                                  {}));
    if (r.empty()) return std::optional<Claim>();
    Claim c;
    c.job = r.i64(0, 0);
    c.attempt = static_cast<int>(r.i64(0, 1));
    c.run = r.i64(0, 2);
    c.plan = json::parse(r.str(0, 3), nullptr, false);
    if (auto needs = parse_pg_array(r.str(0, 4)); !needs.empty()) {
      LS_TRY_ASSIGN(c.needs, needs_context(tx, c.run, needs));
    }
    LS_TRY_ASSIGN(auto arts, tx.exec("SELECT coalesce(json_agg(manifest ORDER BY name), '[]') "
                                     "FROM artifacts WHERE run_id = $1 AND expired_at IS NULL",
                                     {pg::p(c.run)}));
    c.artifacts = json::parse(arts.str(0, 0), nullptr, false);
    if (!c.artifacts.is_array()) c.artifacts = json::array();
    // The pins the plan made (images and actions resolved as the run was
    // planned) come first; then what the run's finished jobs and attempts
    // used (runs.pins, kept as they finish).
    c.pins = c.plan.is_object() ? c.plan.value("pins", json::object()) : json::object();
    runner::add_record_pins(json(), c.pins);
    LS_TRY_ASSIGN(auto used, tx.exec("SELECT pins FROM runs WHERE id = $1", {pg::p(c.run)}));
    const json run_pins = used.empty() ? json() : json::parse(used.str(0, 0), nullptr, false);
    for (const char* kind : {"images", "actions"})
      if (run_pins.is_object() && run_pins.contains(kind) && run_pins[kind].is_object())
        for (auto it = run_pins[kind].begin(); it != run_pins[kind].end(); ++it)
          if (!c.pins[kind].contains(it.key())) c.pins[kind][it.key()] = *it;
    if (c.pins["runtime"].get<std::string>().empty() && run_pins.is_object() &&
        run_pins.contains("runtime") && run_pins["runtime"].is_string())
      c.pins["runtime"] = run_pins["runtime"];
    LS_TRY(
        tx.exec("INSERT INTO attempts (job_id, attempt, agent_id, state) "
                "VALUES ($1, $2, $3, 'claimed')",
                {pg::p(c.job), pg::p(c.attempt), pg::p(agent_id)}));
    return std::optional<Claim>(std::move(c));
  });
}

Result<Fence> start_attempt(pg::Pool& db, int64_t agent_id, int64_t job, int attempt) {
  return pg::in_tx(db, [&](pg::Tx& tx) -> Result<Fence> {
    LS_TRY_ASSIGN(auto r, tx.exec("SELECT j.run_id, r.status = 'queued' FROM jobs j "
                                  "JOIN runs r ON r.id = j.run_id WHERE j.id = $1",
                                  {pg::p(job)}));
    if (r.empty()) return Fence::kStale;
    int64_t run = r.i64(0, 0);
    // Only the first start of a run changes the run (it becomes running), and
    // only then is its row locked, first, in the order of every transaction
    // that changes a run. A run leaves 'queued' once and never returns to it,
    // and nothing decided under the run's lock (settle_run) depends on
    // whether a job is claimed or running, so later starts lock just their
    // attempt and job rows and never wait behind a finish of the same run.
    bool first = r.boolean(0, 1);
    if (first) LS_TRY(lock_run(tx, run));
    LS_TRY_ASSIGN(auto a, tx.exec("UPDATE attempts SET state = 'running', started_at = now(), "
                                  "renewed_at = now() WHERE job_id = $1 AND attempt = $2 AND "
                                  "agent_id = $3 AND state = 'claimed'",
                                  {pg::p(job), pg::p(attempt), pg::p(agent_id)}));
    if (a.affected() == 0) return Fence::kStale;
    LS_TRY(tx.exec("UPDATE jobs SET status = 'running' WHERE id = $1 AND attempt = $2",
                   {pg::p(job), pg::p(attempt)}));
    if (first)
      LS_TRY(
          tx.exec("UPDATE runs SET status = 'running', started_at = coalesce(started_at, now()) "
                  "WHERE id = $1 AND status = 'queued'",
                  {pg::p(run)}));
    return Fence::kOk;
  });
}

Result<Renewal> renew(pg::Pool& db, int64_t agent_id, int64_t job, int attempt) {
  return pg::in_tx(db, [&](pg::Tx& tx) -> Result<Renewal> {
    LS_TRY_ASSIGN(auto r, tx.exec("UPDATE attempts a SET renewed_at = now() FROM jobs j "
                                  "WHERE a.job_id = $1 AND a.attempt = $2 AND a.agent_id = $3 "
                                  "AND a.state IN ('claimed', 'running') AND j.id = a.job_id "
                                  "AND j.attempt = a.attempt RETURNING j.cancel_requested",
                                  {pg::p(job), pg::p(attempt), pg::p(agent_id)}));
    Renewal out;
    if (r.empty())
      out.fence = Fence::kStale;
    else
      out.cancel = r.boolean(0, 0);
    return out;
  });
}

Result<LogAppend> append_log(pg::Pool& db, int64_t agent_id, int64_t job, int attempt,
                             int64_t offset, std::string_view data, int64_t max_bytes) {
  return pg::in_tx(db, [&](pg::Tx& tx) -> Result<LogAppend> {
    LS_TRY_ASSIGN(auto a, tx.exec("SELECT log_bytes, log_truncated FROM attempts "
                                  "WHERE job_id = $1 AND attempt = $2 AND agent_id = $3 AND "
                                  "state IN ('claimed', 'running') FOR UPDATE",
                                  {pg::p(job), pg::p(attempt), pg::p(agent_id)}));
    LogAppend out;
    if (a.empty()) {
      out.kind = LogAppend::kStale;
      return out;
    }
    int64_t have = a.i64(0, 0);
    out.log_bytes = have;
    if (a.boolean(0, 1)) {
      out.kind = LogAppend::kTooLarge;
      return out;
    }
    if (offset > have) {
      out.kind = LogAppend::kGap;
      return out;
    }
    int64_t end = offset + static_cast<int64_t>(data.size());
    if (end <= have) return out;  // already stored: a resend
    std::string_view fresh = data.substr(static_cast<size_t>(have - offset));
    bool truncated = false;
    if (have + static_cast<int64_t>(fresh.size()) > max_bytes) {
      fresh = fresh.substr(0, static_cast<size_t>(std::max<int64_t>(0, max_bytes - have)));
      truncated = true;
    }
    if (!fresh.empty())
      LS_TRY(
          tx.exec("INSERT INTO log_chunks (job_id, attempt, \"offset\", data) "
                  "VALUES ($1, $2, $3, $4)",
                  {pg::p(job), pg::p(attempt), pg::p(have), pg::bytea(fresh)}));
    out.log_bytes = have + static_cast<int64_t>(fresh.size());
    LS_TRY(
        tx.exec("UPDATE attempts SET log_bytes = $3, log_truncated = $4 "
                "WHERE job_id = $1 AND attempt = $2",
                {pg::p(job), pg::p(attempt), pg::p(out.log_bytes), pg::p(truncated)}));
    LS_TRY(tx.exec("SELECT pg_notify('lockstep_log', $1)", {pg::p(job)}));
    if (truncated) out.kind = LogAppend::kTooLarge;
    return out;
  });
}

Result<FinishResult> finish(pg::Pool& db, int64_t agent_id, const Finish& f) {
  return pg::in_tx(db, [&](pg::Tx& tx) -> Result<FinishResult> {
    LS_TRY_ASSIGN(auto run, run_of_job(tx, f.job));
    if (!run) return FinishResult::kStale;
    LS_TRY(lock_run(tx, *run));
    LS_TRY_ASSIGN(auto a, tx.exec("SELECT a.log_bytes, a.log_truncated, j.cancel_requested "
                                  "FROM attempts a JOIN jobs j ON j.id = a.job_id "
                                  "WHERE a.job_id = $1 AND a.attempt = $2 AND a.agent_id = $3 "
                                  "AND a.state IN ('claimed', 'running') AND j.attempt = a.attempt "
                                  "FOR UPDATE",
                                  {pg::p(f.job), pg::p(f.attempt), pg::p(agent_id)}));
    if (a.empty()) return FinishResult::kStale;
    if (a.i64(0, 0) < f.log_bytes && !a.boolean(0, 1)) return FinishResult::kLogIncomplete;
    std::string status = f.status;
    if (status != "success" && status != "failure" && status != "cancelled" && status != "skipped")
      status = "failure";
    if (a.boolean(0, 2) && status != "success" && status != "skipped") status = "cancelled";
    // What it resolved holds the run's later jobs and attempts to the same
    // (the first to resolve a reference wins; the run row is locked).
    if (f.record.is_object() && f.record.contains("job")) {
      LS_TRY_ASSIGN(auto pr, tx.exec("SELECT pins FROM runs WHERE id = $1", {pg::p(*run)}));
      json pins = pr.empty() ? json::object() : json::parse(pr.str(0, 0), nullptr, false);
      const std::string before = pins.dump();
      runner::add_record_pins(f.record["job"], pins, /*local_images=*/false);
      if (pins.dump() != before)
        LS_TRY(
            tx.exec("UPDATE runs SET pins = $2 WHERE id = $1", {pg::p(*run), pg::p(pins.dump())}));
    }
    LS_TRY(tx.exec(
        "UPDATE attempts SET state = $3, finished_at = now(), exit_code = $4, "
        "env_hash = $5, record = $6, reason = $7, run_record = $8 WHERE job_id = $1 AND "
        "attempt = $2",
        {pg::p(f.job), pg::p(f.attempt), pg::p(status), pg::p(f.exit_code), pg::p(f.env_hash),
         pg::p(f.record.is_null() ? "null" : f.record.dump()), pg::p(f.reason),
         f.run_record.is_object() ? pg::p(f.run_record.dump()) : pg::Param()}));
    // A cancelled job keeps the reason it was cancelled for.
    LS_TRY(
        tx.exec("UPDATE jobs SET status = $2, finished_at = now(), reason = CASE WHEN "
                "cancel_requested AND $2 = 'cancelled' AND reason <> '' THEN reason ELSE $3 "
                "END WHERE id = $1",
                {pg::p(f.job), pg::p(status), pg::p(f.reason)}));
    LS_TRY(add_status(tx, f.job,
                      status == "success" || status == "skipped" ? "success"
                      : status == "cancelled"                    ? "error"
                                                                 : "failure",
                      status == "cancelled" ? "cancelled" : status));
    LS_TRY(settle_run(tx, *run));
    return FinishResult::kOk;
  });
}

Result<int> reap(pg::Pool& db, const LeaseTimes& t) {
  std::vector<std::pair<int64_t, int>> expired;
  {
    LS_TRY_ASSIGN(auto c, db.take());
    LS_TRY_ASSIGN(
        auto r, c->exec("SELECT job_id, attempt FROM attempts WHERE "
                        "(state = 'running' AND renewed_at < now() - make_interval(secs => $1)) OR "
                        "(state = 'claimed' AND claimed_at < now() - make_interval(secs => $2))",
                        {pg::p(std::to_string(t.lease.count() / 1000.0)),
                         pg::p(std::to_string(t.lapse().count() / 1000.0))}));
    for (int i = 0; i < r.size(); ++i)
      expired.emplace_back(r.i64(i, 0), static_cast<int>(r.i64(i, 1)));
  }
  int ended = 0;
  for (auto [job, attempt] : expired) {
    LS_TRY_ASSIGN(
        bool did, pg::in_tx(db, [&](pg::Tx& tx) -> Result<bool> {
          LS_TRY_ASSIGN(auto run, run_of_job(tx, job));
          if (!run) return false;
          LS_TRY(lock_run(tx, *run));
          // Checked again under the locks: a renewal may have come in between.
          LS_TRY_ASSIGN(
              auto a,
              tx.exec(
                  "UPDATE attempts SET state = CASE WHEN state = 'claimed' THEN 'lapsed' "
                  "ELSE 'lost' END, finished_at = now(), reason = CASE WHEN state = 'claimed' "
                  "THEN 'claimed but not started in time' ELSE 'agent stopped renewing its lease' "
                  "END WHERE job_id = $1 AND attempt = $2 AND ("
                  "(state = 'running' AND renewed_at < now() - make_interval(secs => $3)) OR "
                  "(state = 'claimed' AND claimed_at < now() - make_interval(secs => $4))) "
                  "RETURNING state",
                  {pg::p(job), pg::p(attempt), pg::p(std::to_string(t.lease.count() / 1000.0)),
                   pg::p(std::to_string(t.lapse().count() / 1000.0))}));
          if (a.empty()) return false;
          LS_TRY(requeue_or_end(tx, job, attempt, a.str(0, 0) == "lapsed"));
          LS_TRY(settle_run(tx, *run));
          return true;
        }));
    if (did) ++ended;
  }
  std::vector<std::pair<int64_t, std::string>> idle;
  {
    LS_TRY_ASSIGN(auto c, db.take());
    LS_TRY_ASSIGN(auto r,
                  c->exec("SELECT DISTINCT p.repo_id, p.concurrency_group FROM runs p WHERE "
                          "p.status = 'pending' AND NOT EXISTS (SELECT 1 FROM runs b WHERE "
                          "b.repo_id = p.repo_id AND b.concurrency_group = p.concurrency_group "
                          "AND b.status IN ('queued', 'running'))"));
    for (int i = 0; i < r.size(); ++i) idle.emplace_back(r.i64(i, 0), r.str(i, 1));
  }
  for (const auto& [repo, group] : idle)
    LS_TRY(pg::in_tx(db, [&](pg::Tx& tx) -> Status { return promote_pending(tx, repo, group); }));
  return ended;
}

Result<Fence> abandon(pg::Pool& db, int64_t agent_id, int64_t job, int attempt,
                      const std::string& reason) {
  return pg::in_tx(db, [&](pg::Tx& tx) -> Result<Fence> {
    LS_TRY_ASSIGN(auto run, run_of_job(tx, job));
    if (!run) return Fence::kStale;
    LS_TRY(lock_run(tx, *run));
    LS_TRY_ASSIGN(auto a, tx.exec("UPDATE attempts SET state = CASE WHEN state = 'claimed' THEN "
                                  "'lapsed' ELSE 'lost' END, finished_at = now(), reason = $4 "
                                  "WHERE job_id = $1 AND attempt = $2 AND agent_id = $3 AND "
                                  "state IN ('claimed', 'running') RETURNING state",
                                  {pg::p(job), pg::p(attempt), pg::p(agent_id),
                                   pg::p("abandoned by its agent: " + reason)}));
    if (a.empty()) return Fence::kStale;
    LS_TRY(requeue_or_end(tx, job, attempt, a.str(0, 0) == "lapsed"));
    LS_TRY(settle_run(tx, *run));
    return Fence::kOk;
  });
}

Status cancel_job(pg::Pool& db, int64_t job) {
  return pg::in_tx(db, [&](pg::Tx& tx) -> Status {
    LS_TRY_ASSIGN(auto run, run_of_job(tx, job));
    if (!run) return fail("no job " + std::to_string(job), ErrorKind::kNotFound);
    LS_TRY(lock_run(tx, *run));
    LS_TRY_ASSIGN(auto r, tx.exec("UPDATE jobs SET status = 'cancelled', finished_at = now(), "
                                  "reason = 'cancelled' WHERE id = $1 AND status IN "
                                  "('waiting', 'queued') RETURNING id",
                                  {pg::p(job)}));
    if (!r.empty()) {
      LS_TRY(add_status(tx, job, "error", "cancelled"));
    } else {
      LS_TRY(
          tx.exec("UPDATE jobs SET cancel_requested = true WHERE id = $1 AND status IN "
                  "('claimed', 'running')",
                  {pg::p(job)}));
    }
    return settle_run(tx, *run);
  });
}

Status cancel_run(pg::Pool& db, int64_t run) {
  LS_TRY_ASSIGN(auto c, db.take());
  LS_TRY_ASSIGN(auto r, c->exec("SELECT id FROM jobs WHERE run_id = $1 ORDER BY id", {pg::p(run)}));
  if (r.empty()) {
    LS_TRY_ASSIGN(auto exists, c->exec("SELECT 1 FROM runs WHERE id = $1", {pg::p(run)}));
    if (exists.empty()) return fail("no run " + std::to_string(run), ErrorKind::kNotFound);
  }
  for (int i = 0; i < r.size(); ++i) LS_TRY(cancel_job(db, r.i64(i, 0)));
  return {};
}

Result<int64_t> rerun(pg::Pool& db, int64_t run) {
  return pg::in_tx(db, [&](pg::Tx& tx) -> Result<int64_t> {
    LS_TRY_ASSIGN(auto r,
                  tx.exec("SELECT repo_id, delivery_id, run_key, event, ref, sha, base_sha, "
                          "fork, workflow_file, workflow_name, error, concurrency_group, "
                          "concurrency_cancel FROM runs WHERE id = $1",
                          {pg::p(run)}));
    if (r.empty()) return fail("no run " + std::to_string(run), ErrorKind::kNotFound);
    NewRun n;
    n.repo_id = r.i64(0, 0);
    if (!r.null(0, 1)) n.delivery = r.i64(0, 1);
    n.run_key = r.str(0, 2);
    n.event = r.str(0, 3);
    n.ref = r.str(0, 4);
    n.sha = r.str(0, 5);
    n.base_sha = r.str(0, 6);
    n.fork = r.boolean(0, 7);
    n.workflow_file = r.str(0, 8);
    n.workflow_name = r.str(0, 9);
    n.error = r.str(0, 10);
    n.concurrency_group = r.str(0, 11);
    n.cancel_in_progress = r.boolean(0, 12);
    n.rerun_of = run;
    LS_TRY_ASSIGN(auto jobs, tx.exec("SELECT job_key, name, matrix, needs, plan, retry FROM jobs "
                                     "WHERE run_id = $1 ORDER BY id",
                                     {pg::p(run)}));
    for (int i = 0; i < jobs.size(); ++i) {
      NewJob j;
      j.key = jobs.str(i, 0);
      j.name = jobs.str(i, 1);
      j.matrix = json::parse(jobs.str(i, 2), nullptr, false);
      j.needs = parse_pg_array(jobs.str(i, 3));
      j.plan = json::parse(jobs.str(i, 4), nullptr, false);
      j.run_on_failure = j.plan.value("run_on_failure", false);
      j.retry = jobs.boolean(i, 5);
      n.jobs.push_back(std::move(j));
    }
    LS_TRY_ASSIGN(auto id, insert_run(tx, n));
    if (!id) return fail("re-run of run " + std::to_string(run) + " was not created");
    return *id;
  });
}

Result<std::optional<int64_t>> agent_by_token(pg::Pool& db, const std::string& token) {
  LS_TRY_ASSIGN(auto c, db.take());
  LS_TRY_ASSIGN(auto r,
                c->exec("SELECT id FROM agents WHERE token_hash = $1", {pg::p(sha256_hex(token))}));
  if (r.empty()) return std::optional<int64_t>();
  return std::optional<int64_t>(r.i64(0, 0));
}

}  // namespace lockstep::server
