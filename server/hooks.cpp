// Webhook endpoints: /hooks/github, /hooks/gitea (and /hooks/forgejo),
// /hooks/gitlab. The answer comes as soon as the delivery is stored; the
// planner does the rest.
#include <spdlog/spdlog.h>

#include "server/planner.hpp"
#include "server/server_impl.hpp"
#include "server/webhook.hpp"

namespace lockstep::server {

using nlohmann::json;

HttpResponse hook_route(Server::Impl& s, const HttpRequest& req) {
  if (req.method != "POST") return error_response(405, "webhooks are POSTed");
  std::string name = req.path.substr(std::string("/hooks/").size());
  auto forge = forge_from_name(name);
  if (!forge) return error_response(404, "no webhook endpoint for '" + name + "'");
  // No signature header at all: refused before looking at the body.
  bool has_sig = *forge == Forge::kGitLab ? req.headers.count("x-gitlab-token") > 0
                                          : req.headers.count("x-hub-signature-256") > 0 ||
                                                req.headers.count("x-gitea-signature") > 0 ||
                                                req.headers.count("x-forgejo-signature") > 0;
  if (!has_sig) return error_response(401, "the delivery is not signed");
  json body = json::parse(req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object())
    return error_response(400, "the body is not a JSON object");
  auto repo = hook_repo(*forge, body);
  if (!repo) return error_response(400, repo.error().message());
  int64_t repo_id = 0;
  std::string secret;
  {
    auto c = s.db->take();
    if (!c) return error_response(c.error());
    auto r = (*c)->exec("SELECT id, webhook_secret_enc, forge FROM repos WHERE name = $1",
                        {pg::p(*repo)});
    if (!r) return error_response(r.error());
    if (r->empty()) return error_response(404, "unknown repository '" + *repo + "'");
    repo_id = r->i64(0, 0);
    if (r->null(0, 1)) return error_response(401, "no webhook secret is set for " + *repo);
    auto plain = s.box->open(r->bytes(0, 1), "webhook-secret:" + std::to_string(repo_id));
    if (!plain)
      return error_response(500, "webhook secret of " + *repo + ": " + plain.error().message());
    secret = std::move(*plain);
  }
  if (auto v = verify_signature(*forge, req.headers, req.body, secret); !v)
    return error_response(401, v.error().message());
  auto id = delivery_id(*forge, req.headers);
  if (!id) return error_response(400, id.error().message());
  auto ev = parse_hook(*forge, req.headers, body);
  if (!ev) return error_response(400, ev.error().message());
  if (ev->kind == "ping") return json_response(200, {{"pong", true}});
  if (ev->kind.empty()) return json_response(202, {{"ignored", "event not handled"}});
  auto fresh = store_delivery(*s.db, repo_id, *id, *ev);
  if (!fresh) return error_response(fresh.error());
  if (!*fresh) return json_response(200, {{"duplicate", *id}});
  return json_response(202, {{"delivery", *id}});
}

}  // namespace lockstep::server
