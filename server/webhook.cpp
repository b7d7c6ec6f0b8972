#include "server/webhook.hpp"

#include "server/crypto.hpp"

namespace lockstep::server {

using nlohmann::json;

std::optional<Forge> forge_from_name(std::string_view name) {
  if (name == "github") return Forge::kGitHub;
  if (name == "gitea" || name == "forgejo") return Forge::kGitea;
  if (name == "gitlab") return Forge::kGitLab;
  return std::nullopt;
}

const char* forge_name(Forge f) {
  switch (f) {
    case Forge::kGitHub:
      return "github";
    case Forge::kGitea:
      return "gitea";
    case Forge::kGitLab:
      return "gitlab";
  }
  return "?";
}

namespace {

const std::string* header(const Headers& h, const char* name) {
  auto it = h.find(name);
  return it == h.end() ? nullptr : &it->second;
}

std::string event_name(Forge f, const Headers& h) {
  const char* names[] = {"x-github-event", "x-gitea-event", "x-forgejo-event", "x-gitlab-event"};
  for (const char* n : names) {
    if (f == Forge::kGitHub && std::string_view(n) != "x-github-event") continue;
    if (f == Forge::kGitLab && std::string_view(n) != "x-gitlab-event") continue;
    if (auto* v = header(h, n)) return *v;
  }
  return {};
}

std::string str(const json& j, std::initializer_list<const char*> path) {
  const json* cur = &j;
  for (const char* k : path) {
    if (!cur->is_object() || !cur->contains(k)) return {};
    cur = &(*cur)[k];
  }
  if (cur->is_string()) return cur->get<std::string>();
  if (cur->is_number_integer()) return std::to_string(cur->get<int64_t>());
  return {};
}

Error bad(std::string msg) {
  return Error(std::move(msg), 0, ErrorKind::kUsage);
}

}  // namespace

Result<std::string> delivery_id(Forge f, const Headers& h) {
  const char* names[] = {"x-github-delivery", "x-gitea-delivery", "x-forgejo-delivery",
                         "x-gitlab-event-uuid", "x-gitlab-webhook-uuid"};
  for (const char* n : names) {
    std::string_view name(n);
    if (f == Forge::kGitHub && name != "x-github-delivery") continue;
    if (f == Forge::kGitea && name.find("gitlab") != std::string_view::npos) continue;
    if (f == Forge::kGitLab && name.find("gitlab") == std::string_view::npos) continue;
    if (auto* v = header(h, n); v && !v->empty()) return *v;
  }
  return fail(bad(std::string("missing delivery id header (") +
                  (f == Forge::kGitHub  ? "X-GitHub-Delivery"
                   : f == Forge::kGitea ? "X-Gitea-Delivery"
                                        : "X-Gitlab-Event-UUID") +
                  ")"));
}

Status verify_signature(Forge f, const Headers& h, std::string_view body, std::string_view secret) {
  if (f == Forge::kGitLab) {
    auto* t = header(h, "x-gitlab-token");
    if (!t) return fail("missing X-Gitlab-Token");
    if (!constant_time_equal(*t, secret)) return fail("X-Gitlab-Token does not match");
    return {};
  }
  std::string expected = hmac_sha256_hex(secret, body);
  if (f == Forge::kGitHub) {
    auto* s = header(h, "x-hub-signature-256");
    if (!s) return fail("missing X-Hub-Signature-256");
    if (s->rfind("sha256=", 0) != 0) return fail("X-Hub-Signature-256 is not 'sha256=<hex>'");
    if (!constant_time_equal(std::string_view(*s).substr(7), expected))
      return fail("X-Hub-Signature-256 does not match the body");
    return {};
  }
  const std::string* s = header(h, "x-gitea-signature");
  if (!s) s = header(h, "x-forgejo-signature");
  if (!s) return fail("missing X-Gitea-Signature");
  if (!constant_time_equal(*s, expected)) return fail("X-Gitea-Signature does not match the body");
  return {};
}

Result<std::string> hook_repo(Forge f, const json& body) {
  std::string name = f == Forge::kGitLab ? str(body, {"project", "path_with_namespace"})
                                         : str(body, {"repository", "full_name"});
  if (name.empty())
    return fail(bad(f == Forge::kGitLab ? "body has no project.path_with_namespace"
                                        : "body has no repository.full_name"));
  return name;
}

Result<HookEvent> parse_hook(Forge f, const Headers& h, const json& body) {
  HookEvent ev;
  LS_TRY_ASSIGN(ev.repo, hook_repo(f, body));
  std::string event = event_name(f, h);
  if (f == Forge::kGitLab) {
    ev.clone_url = str(body, {"project", "git_http_url"});
    if (event == "Push Hook" || event == "Tag Push Hook") {
      ev.kind = "push";
      ev.ref = str(body, {"ref"});
      ev.before = str(body, {"before"});
      ev.after = str(body, {"after"});
      ev.deleted = ev.after.find_first_not_of('0') == std::string::npos;
    } else if (event == "Merge Request Hook") {
      ev.kind = "pull_request";
      const json& oa = body.value("object_attributes", json::object());
      ev.number = oa.value("iid", int64_t{0});
      std::string action = oa.value("action", "");
      ev.action = action == "open"     ? "opened"
                  : action == "update" ? "synchronize"
                  : action == "reopen" ? "reopened"
                  : action == "close"  ? "closed"
                                       : action;
      ev.base_ref = oa.value("target_branch", "");
      ev.head_ref = oa.value("source_branch", "");
      ev.head_sha = str(oa, {"last_commit", "id"});
      ev.head_clone_url = str(oa, {"source", "git_http_url"});
      ev.head_pull_ref = "refs/merge-requests/" + std::to_string(ev.number) + "/head";
      ev.fork =
          oa.value("source_project_id", int64_t{0}) != oa.value("target_project_id", int64_t{0});
    } else {
      return ev;
    }
  } else {
    ev.clone_url = str(body, {"repository", "clone_url"});
    if (event == "ping") {
      ev.kind = "ping";
      return ev;
    }
    if (event == "push") {
      ev.kind = "push";
      ev.ref = str(body, {"ref"});
      ev.before = str(body, {"before"});
      ev.after = str(body, {"after"});
      ev.deleted =
          body.value("deleted", false) || ev.after.find_first_not_of('0') == std::string::npos;
    } else if (event == "pull_request") {
      ev.kind = "pull_request";
      const json& pr = body.value("pull_request", json::object());
      ev.number = body.value("number", pr.value("number", int64_t{0}));
      ev.action = body.value("action", "");
      if (ev.action == "synchronized") ev.action = "synchronize";  // Gitea's word
      ev.base_ref = str(pr, {"base", "ref"});
      ev.base_sha = str(pr, {"base", "sha"});
      ev.head_ref = str(pr, {"head", "ref"});
      ev.head_sha = str(pr, {"head", "sha"});
      ev.head_clone_url = str(pr, {"head", "repo", "clone_url"});
      std::string head_repo = str(pr, {"head", "repo", "full_name"});
      ev.fork = !head_repo.empty() && head_repo != ev.repo;
    } else {
      return ev;
    }
  }
  if (ev.kind == "push" && (ev.ref.empty() || ev.after.empty()))
    return fail(bad("push event without ref or after"));
  if (ev.kind == "pull_request" && (ev.base_ref.empty() || ev.head_sha.empty() || ev.number == 0))
    return fail(bad("pull_request event without number, base ref or head sha"));
  return ev;
}

}  // namespace lockstep::server
