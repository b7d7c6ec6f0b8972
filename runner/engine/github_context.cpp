#include "runner/engine/github_context.hpp"

#include <algorithm>
#include <cctype>
#include <vector>

#include "cache/git_worktree.hpp"
#include "common/text.hpp"

namespace lockstep::runner {

namespace {

// "host:port" or "[v6]:port" (credentials already dropped).
std::pair<std::string, std::string> split_host_port(const std::string& authority) {
  if (!authority.empty() && authority[0] == '[') {
    auto close = authority.find(']');
    if (close == std::string::npos) return {authority, ""};
    std::string port = close + 1 < authority.size() && authority[close + 1] == ':'
                           ? authority.substr(close + 2)
                           : "";
    return {authority.substr(0, close + 1), port};
  }
  auto colon = authority.rfind(':');
  if (colon == std::string::npos) return {authority, ""};
  return {authority.substr(0, colon), authority.substr(colon + 1)};
}

}  // namespace

std::optional<RepositoryIdentity> identity_from_remote(std::string_view text) {
  std::string url(text);
  while (!url.empty() && std::isspace(static_cast<unsigned char>(url.back()))) url.pop_back();
  std::string scheme, authority, path;
  if (auto sep = url.find("://"); sep != std::string::npos) {
    scheme = ascii_lower(url.substr(0, sep));
    if (scheme == "git+ssh" || scheme == "ssh+git") scheme = "ssh";
    if (scheme != "https" && scheme != "http" && scheme != "ssh" && scheme != "git")
      return std::nullopt;  // file://, a transport of its own
    std::string rest = url.substr(sep + 3);
    auto slash = rest.find('/');
    if (slash == std::string::npos) return std::nullopt;
    authority = rest.substr(0, slash);
    path = rest.substr(slash + 1);
  } else {
    // scp-like: [user@]host:path, where no '/' comes before the ':' (else
    // it is a local path, as git reads it).
    auto colon = url.find(':');
    auto slash = url.find('/');
    if (colon == std::string::npos || colon == 0 || (slash != std::string::npos && slash < colon))
      return std::nullopt;
    scheme = "ssh";
    authority = url.substr(0, colon);
    path = url.substr(colon + 1);
  }
  if (auto at = authority.rfind('@'); at != std::string::npos) authority.erase(0, at + 1);
  auto [host, port] = split_host_port(authority);
  host = ascii_lower(host);
  if (host.empty()) return std::nullopt;
  // A query or fragment is no part of the repository's path.
  if (auto q = path.find_first_of("?#"); q != std::string::npos) path.resize(q);
  if (!path.empty() && path[0] == '~') return std::nullopt;  // a user's home on an ssh host
  std::vector<std::string> segments;
  for (size_t start = 0; start <= path.size();) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    if (end > start) segments.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  if (!segments.empty() && segments.back().size() > 4 && segments.back().ends_with(".git"))
    segments.back().resize(segments.back().size() - 4);
  if (segments.size() < 2) return std::nullopt;

  RepositoryIdentity id;
  id.name = segments.back();
  for (size_t i = 0; i + 1 < segments.size(); ++i) id.owner += (i ? "/" : "") + segments[i];
  id.repository = id.owner + "/" + id.name;
  // The web address: an https or http remote's own; ssh and git remotes
  // name the host only (their port is not the web server's).
  bool web = scheme == "https" || scheme == "http";
  id.server_url = (scheme == "http" ? "http://" : "https://") + host +
                  (web && !port.empty() ? ":" + port : std::string());
  id.clone_url = "git://" + host + "/" + id.repository + ".git";
  return id;
}

RepositoryIdentity local_identity(const std::string& dir_name) {
  RepositoryIdentity id;
  id.owner = "local";
  id.name = dir_name;
  id.repository = "local/" + dir_name;
  id.server_url = "https://github.com";
  id.clone_url = "git://github.com/local/" + dir_name + ".git";
  return id;
}

RepositoryIdentity repository_identity(const std::string& repo_or_url,
                                       const std::string& dir_name) {
  if (auto id = identity_from_remote(repo_or_url)) return *id;
  std::error_code ec;
  if (!repo_or_url.empty() && std::filesystem::exists(repo_or_url, ec))
    if (auto remote = cache::remote_url(repo_or_url); remote && !remote->empty())
      if (auto id = identity_from_remote(*remote)) return *id;
  return local_identity(dir_name);
}

pipeline::Value github_context(const GithubContextInput& in) {
  const RepositoryIdentity& id = in.identity;
  const pipeline::Value& ev = in.event;
  auto field = [](const pipeline::Value& v, std::initializer_list<const char*> path) {
    const pipeline::Value* at = &v;
    for (const char* k : path) {
      if (!at->is_object() || !at->contains(k)) return std::string();
      at = &(*at)[k];
    }
    if (at->is_string()) return at->get<std::string>();
    if (at->is_number_integer()) return std::to_string(at->get<int64_t>());
    return std::string();
  };
  std::string ref = in.branch.empty() ? "" : "refs/heads/" + in.branch;
  std::string ref_name = in.branch, ref_type = in.branch.empty() ? "" : "branch";
  std::string head_ref, base_ref;
  if (in.event_name == "pull_request" || in.event_name == "pull_request_target") {
    std::string number = field(ev, {"number"});
    if (number.empty()) number = field(ev, {"pull_request", "number"});
    head_ref = field(ev, {"pull_request", "head", "ref"});
    base_ref = field(ev, {"pull_request", "base", "ref"});
    if (!number.empty() && in.event_name == "pull_request") {
      ref = "refs/pull/" + number + "/merge";
      ref_name = number + "/merge";
      ref_type = "branch";
    } else if (in.event_name == "pull_request_target" && !base_ref.empty()) {
      ref = "refs/heads/" + base_ref;
      ref_name = base_ref;
      ref_type = "branch";
    }
  }
  return {
      {"workflow", in.workflow},
      {"run_id", in.run_id},
      {"run_number", in.run_number},
      {"run_attempt", in.run_attempt},
      {"event_name", in.event_name},
      {"actor", "lockstep"},
      {"triggering_actor", "lockstep"},
      {"repository", id.repository},
      {"repository_owner", id.owner},
      {"repositoryUrl", id.clone_url},
      {"ref", ref},
      {"ref_name", ref_name},
      {"ref_type", ref_type},
      {"head_ref", head_ref},
      {"base_ref", base_ref},
      {"sha", in.sha},
      {"server_url", id.server_url},
      {"workspace", "/__w/" + in.dir_name + "/" + in.dir_name},
      {"event", in.event.is_object() ? in.event : pipeline::Value::object()},
  };
}

}  // namespace lockstep::runner
