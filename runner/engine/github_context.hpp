#pragma once
// The `github` expression context of a run, built in one place so that
// `lockstep run` and `lockstep lock` evaluate the same expressions to the
// same values (an image named `ghcr.io/${{ github.repository }}` locks what
// runs).
//
// The repository's identity comes from its remote, as GitHub names the
// repository a workflow runs for: `github.repository` is OWNER/NAME,
// `github.repository_owner` OWNER, `github.server_url` the forge's address
// and `github.repositoryUrl` its git:// clone URL. See docs/workflows.md.
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "pipeline/model.hpp"

namespace lockstep::runner {

struct RepositoryIdentity {
  std::string repository;  // "octo-org/hello-world"; GitLab "group/sub/project"
  std::string owner;       // "octo-org"; GitLab "group/sub" (the namespace)
  std::string name;        // "hello-world"
  std::string server_url;  // "https://github.com", "https://ghe.example.com:8443"
  std::string clone_url;   // "git://github.com/octo-org/hello-world.git"
};

// The identity a forge remote names: https://, http://, ssh://, git:// and
// scp-like (`git@host:owner/name.git`) URLs of GitHub, GitHub Enterprise,
// Gitea/Forgejo and GitLab (nested groups: everything before the last path
// segment is the owner). Credentials in the URL are dropped. Nothing for a
// URL that names no forge repository (a local path, file://, one segment).
std::optional<RepositoryIdentity> identity_from_remote(std::string_view url);

// `local/<dir>` on https://github.com: the identity of a repository without
// a forge remote (or of no repository at all).
RepositoryIdentity local_identity(const std::string& dir_name);

// The identity of the repository at `repo_or_url`: the URL's own when it is
// a forge URL, else that of the repository's remote (`origin`, else the only
// one) when it is a local repository, else local_identity(dir_name).
RepositoryIdentity repository_identity(const std::string& repo_or_url, const std::string& dir_name);

// What the context is built from: the run, and the repository it runs.
struct GithubContextInput {
  std::string workflow;  // the workflow's name, else its file name
  std::string run_id, run_number = "1", run_attempt = "1";
  std::string branch;                  // short name; empty when detached or no repository
  std::string sha;                     // 40 hex; empty without a repository
  std::string dir_name = "workspace";  // names $GITHUB_WORKSPACE (/__w/<dir>/<dir>)
  RepositoryIdentity identity;
  // github.event_name and github.event. For pull_request and
  // pull_request_target, ref is refs/pull/N/merge and head_ref and base_ref
  // come from the payload's pull_request, as on GitHub.
  std::string event_name = "push";
  pipeline::Value event = pipeline::Value::object();
};

// The base `github` context every job of the run starts from.
pipeline::Value github_context(const GithubContextInput& in);

}  // namespace lockstep::runner
