#pragma once
// Webhooks from GitHub, Gitea/Forgejo and GitLab: which repository a
// delivery is for, whether its signature holds, and the event it carries
// (docs/server.md, "Webhooks"). Pure: headers and bytes in, answers out.
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/error.hpp"

namespace lockstep::server {

enum class Forge { kGitHub, kGitea, kGitLab };
std::optional<Forge> forge_from_name(std::string_view name);
const char* forge_name(Forge f);

// Header names lowercased.
using Headers = std::map<std::string, std::string>;

struct HookEvent {
  std::string kind;       // "push", "pull_request", "ping", or "" for one we ignore
  std::string repo;       // owner/name
  std::string clone_url;  // as the forge gives it
  // push
  std::string ref;  // refs/heads/main, refs/tags/v1
  std::string before, after;
  bool deleted = false;
  // pull_request
  int64_t number = 0;
  std::string action;  // opened, synchronize, reopened, closed, ... (GitHub's words)
  std::string base_ref, base_sha, head_ref, head_sha, head_clone_url;
  bool fork = false;
  // Where the base repository keeps the head commit, a fork's too:
  // refs/pull/N/head on GitHub, Gitea and Forgejo (the default when empty),
  // refs/merge-requests/N/head on GitLab.
  std::string head_pull_ref;
};

// The delivery id and event name from the headers; an error when missing.
Result<std::string> delivery_id(Forge f, const Headers& h);
// Checks the signature of the raw body; errors say what was wrong (missing
// header, malformed, mismatch) and map to 401.
Status verify_signature(Forge f, const Headers& h, std::string_view body, std::string_view secret);
// The repository named by a body (for finding its secret before verifying).
Result<std::string> hook_repo(Forge f, const nlohmann::json& body);
// Parses an event (kUsage errors: a body that is not what the event says).
Result<HookEvent> parse_hook(Forge f, const Headers& h, const nlohmann::json& body);

}  // namespace lockstep::server
