#include "runner/engine/github_context.hpp"

#include <gtest/gtest.h>

namespace lockstep::runner {
namespace {

struct Case {
  const char* url;
  const char* repository;
  const char* owner;
  const char* server_url;
  const char* clone_url;
};

TEST(RepositoryIdentity, FromForgeRemotes) {
  const Case cases[] = {
      {"https://github.com/octo-org/hello-world.git", "octo-org/hello-world", "octo-org",
       "https://github.com", "git://github.com/octo-org/hello-world.git"},
      {"https://github.com/octo-org/hello-world", "octo-org/hello-world", "octo-org",
       "https://github.com", "git://github.com/octo-org/hello-world.git"},
      {"https://github.com/octo-org/hello-world/", "octo-org/hello-world", "octo-org",
       "https://github.com", "git://github.com/octo-org/hello-world.git"},
      {"git@github.com:octo-org/hello-world.git", "octo-org/hello-world", "octo-org",
       "https://github.com", "git://github.com/octo-org/hello-world.git"},
      {"ssh://git@github.com/octo-org/hello-world.git", "octo-org/hello-world", "octo-org",
       "https://github.com", "git://github.com/octo-org/hello-world.git"},
      // Credentials never reach the context.
      {"https://x-access-token:ghs_secret@github.com/octo-org/hello-world.git",
       "octo-org/hello-world", "octo-org", "https://github.com",
       "git://github.com/octo-org/hello-world.git"},
      // GitHub Enterprise: the web port is kept, an ssh port is not.
      {"https://GHE.example.com:8443/Team/Tool.git", "Team/Tool", "Team",
       "https://ghe.example.com:8443", "git://ghe.example.com/Team/Tool.git"},
      {"ssh://git@ghe.example.com:2222/team/tool.git", "team/tool", "team",
       "https://ghe.example.com", "git://ghe.example.com/team/tool.git"},
      // Gitea / Forgejo on plain HTTP.
      {"http://gitea.local:3000/alice/dotfiles.git", "alice/dotfiles", "alice",
       "http://gitea.local:3000", "git://gitea.local/alice/dotfiles.git"},
      {"git://forge.example.org/bob/lib", "bob/lib", "bob", "https://forge.example.org",
       "git://forge.example.org/bob/lib.git"},
      // GitLab nested groups: the owner is the namespace.
      {"https://gitlab.com/group/sub/project.git", "group/sub/project", "group/sub",
       "https://gitlab.com", "git://gitlab.com/group/sub/project.git"},
      {"git@gitlab.example.com:group/sub/deeper/project.git", "group/sub/deeper/project",
       "group/sub/deeper", "https://gitlab.example.com",
       "git://gitlab.example.com/group/sub/deeper/project.git"},
  };
  for (const auto& c : cases) {
    auto id = identity_from_remote(c.url);
    ASSERT_TRUE(id) << c.url;
    EXPECT_EQ(id->repository, c.repository) << c.url;
    EXPECT_EQ(id->owner, c.owner) << c.url;
    EXPECT_EQ(id->server_url, c.server_url) << c.url;
    EXPECT_EQ(id->clone_url, c.clone_url) << c.url;
  }
}

TEST(RepositoryIdentity, NoForgeInPathsAndOneSegmentUrls) {
  for (const char* url : {"/srv/git/project.git", "../project", "file:///srv/git/project.git",
                          "https://example.com/project.git", "git@host:project.git",
                          "ssh://host/~alice/project.git", "", "host:", "./a:b"})
    EXPECT_FALSE(identity_from_remote(url)) << url;
}

TEST(RepositoryIdentity, LocalWithoutRemote) {
  auto id = local_identity("project");
  EXPECT_EQ(id.repository, "local/project");
  EXPECT_EQ(id.owner, "local");
  EXPECT_EQ(id.server_url, "https://github.com");
}

TEST(GithubContext, HoldsTheRunAndTheRepository) {
  GithubContextInput in;
  in.workflow = "ci";
  in.run_id = "42";
  in.branch = "main";
  in.sha = std::string(40, 'a');
  in.dir_name = "hello-world";
  in.identity = *identity_from_remote("git@github.com:octo-org/hello-world.git");
  auto g = github_context(in);
  EXPECT_EQ(g["repository"], "octo-org/hello-world");
  EXPECT_EQ(g["repository_owner"], "octo-org");
  EXPECT_EQ(g["repositoryUrl"], "git://github.com/octo-org/hello-world.git");
  EXPECT_EQ(g["server_url"], "https://github.com");
  EXPECT_EQ(g["ref"], "refs/heads/main");
  EXPECT_EQ(g["ref_name"], "main");
  EXPECT_EQ(g["run_id"], "42");
  EXPECT_EQ(g["run_number"], "1");
  EXPECT_EQ(g["actor"], "lockstep");
  EXPECT_EQ(g["workspace"], "/__w/hello-world/hello-world");
}

}  // namespace
}  // namespace lockstep::runner
