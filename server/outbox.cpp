#include "server/outbox.hpp"

#include <nlohmann/json.hpp>

#include "registry-mirror/http.hpp"

namespace lockstep::server {

using nlohmann::json;

namespace {

struct Row {
  int64_t id, repo_id;
  std::string sha, context, state, description, target, forge, api, name, token_enc;
  int tries;
};

registry::HttpRequest build(const Row& r, const std::string& token, const std::string& target,
                            std::string* body) {
  registry::HttpRequest req;
  req.method = "POST";
  req.timeout_ms = 30'000;
  std::string api = r.api;
  while (!api.empty() && api.back() == '/') api.pop_back();
  if (r.forge == "gitlab") {
    const char* state = r.state == "failure" ? "failed"
                        : r.state == "error" ? "canceled"
                                             : r.state.c_str();
    req.url = api + "/projects/" + registry::url_escape(r.name) + "/statuses/" + r.sha +
              "?state=" + state + "&name=" + registry::url_escape(r.context) +
              "&target_url=" + registry::url_escape(target) +
              "&description=" + registry::url_escape(r.description);
    if (!token.empty()) req.headers.push_back("PRIVATE-TOKEN: " + token);
    return req;
  }
  req.url = api + "/repos/" + r.name + "/statuses/" + r.sha;
  *body = json{{"state", r.state},
               {"target_url", target},
               {"description", r.description},
               {"context", r.context}}
              .dump();
  req.headers.push_back("Content-Type: application/json");
  if (r.forge == "github") {
    req.headers.push_back("Accept: application/vnd.github+json");
    if (!token.empty()) req.headers.push_back("Authorization: Bearer " + token);
  } else if (!token.empty()) {
    req.headers.push_back("Authorization: token " + token);
  }
  return req;
}

}  // namespace

Result<int> StatusSender::send_due() {
  std::vector<Row> rows;
  {
    LS_TRY_ASSIGN(auto c, db_.take());
    LS_TRY_ASSIGN(
        auto r,
        // The oldest pending status of each commit and context, when it is due
        // (they are sent in order). One sort of the pending rows: a NOT EXISTS
        // over them compared every pending row with every other, which took
        // seconds once a large run had queued a few thousand.
        c->exec("SELECT o.id, o.repo_id, o.sha, o.context, o.state, o.description, o.target_url, "
                "o.tries, p.forge, p.status_api, p.name, p.status_token_enc "
                "FROM (SELECT DISTINCT ON (repo_id, sha, context) * FROM status_outbox "
                "WHERE sent_at IS NULL AND NOT failed ORDER BY repo_id, sha, context, id) o "
                "JOIN repos p ON p.id = o.repo_id WHERE o.next_try_at <= now() "
                "ORDER BY o.id LIMIT 100"));
    for (int i = 0; i < r.size(); ++i)
      rows.push_back({r.i64(i, 0), r.i64(i, 1), r.str(i, 2), r.str(i, 3), r.str(i, 4), r.str(i, 5),
                      r.str(i, 6), r.str(i, 8), r.str(i, 9), r.str(i, 10), r.bytes(i, 11),
                      static_cast<int>(r.i64(i, 7))});
  }
  registry::HttpSession http;
  int sent = 0;
  for (const auto& row : rows) {
    std::string outcome;  // "" sent, else the error
    bool permanent = false;
    if (row.api.empty()) {
      outcome = "no status API configured for " + row.name;
      permanent = true;
    } else {
      std::string token;
      if (!row.token_enc.empty()) {
        auto t = box_.open(row.token_enc, "status-token:" + std::to_string(row.repo_id));
        if (!t) {
          outcome = "status token: " + t.error().message();
          permanent = true;
        } else {
          token = *t;
        }
      }
      if (outcome.empty()) {
        std::string body;
        std::string target = row.target.rfind("/", 0) == 0 ? public_url_ + row.target : row.target;
        auto req = build(row, token, target, &body);
        req.body = body;
        auto resp = http.perform(req);
        if (!resp) {
          outcome = resp.error().message();
        } else if (resp->status >= 200 && resp->status < 300) {
          outcome.clear();
        } else {
          outcome = "HTTP " + std::to_string(resp->status);
          permanent = resp->status >= 400 && resp->status < 500 && resp->status != 429 &&
                      resp->status != 408;
        }
      }
    }
    LS_TRY_ASSIGN(auto c, db_.take());
    if (outcome.empty()) {
      LS_TRY(
          c->exec("UPDATE status_outbox SET sent_at = now(), tries = tries + 1, "
                  "last_error = '' WHERE id = $1",
                  {pg::p(row.id)}));
      ++sent;
    } else {
      // 1 s, 2 s, 4 s ... at most 5 minutes between tries.
      double delay = std::min(300.0, static_cast<double>(1LL << std::min(row.tries, 9)));
      LS_TRY(
          c->exec("UPDATE status_outbox SET tries = tries + 1, last_error = $2, failed = $3, "
                  "next_try_at = now() + make_interval(secs => $4) WHERE id = $1",
                  {pg::p(row.id), pg::p(outcome), pg::p(permanent), pg::p(std::to_string(delay))}));
    }
  }
  return sent;
}

}  // namespace lockstep::server
