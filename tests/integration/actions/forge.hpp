#pragma once
// Action repositories for tests: a "forge" directory of real git
// repositories (<forge>/<owner>/<repo>) that `--actions-url <forge>` points
// lockstep at, the way an air-gapped host mirrors GitHub.
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "tests/support/lockstep_process.hpp"

namespace lockstep::testing {

inline bool has(const std::string& s, const std::string& needle) {
  return s.find(needle) != std::string::npos;
}

// Position of `needle` in `s`, or npos; for ordering checks.
inline size_t at(const std::string& s, const std::string& needle) {
  return s.find(needle);
}

class Forge {
 public:
  explicit Forge(std::filesystem::path root) : root_(std::move(root)) {
    std::filesystem::create_directories(root_);
  }
  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path repo_dir(const std::string& owner, const std::string& repo) const {
    return root_ / owner / repo;
  }

  // Writes `files` (path -> content) into owner/repo, commits them and tags
  // the commit `tag` (moving it when it exists); returns the commit id.
  std::string commit(const std::string& owner, const std::string& repo,
                     const std::map<std::string, std::string>& files, const std::string& tag,
                     bool with_node_modules = false) {
    auto dir = repo_dir(owner, repo);
    bool fresh = !std::filesystem::exists(dir / ".git");
    std::filesystem::create_directories(dir);
    if (fresh) git(dir, {"init", "-q", "-b", "main"});
    for (const auto& [path, content] : files) {
      auto p = dir / path;
      std::filesystem::create_directories(p.parent_path());
      std::ofstream(p) << content;
    }
    if (with_node_modules) {
      std::filesystem::copy(std::filesystem::path(LOCKSTEP_NPM_DIR) / "node_modules",
                            dir / "node_modules",
                            std::filesystem::copy_options::recursive |
                                std::filesystem::copy_options::overwrite_existing);
    }
    git(dir, {"add", "-A"});
    git(dir, {"commit", "-q", "--allow-empty", "-m", "change " + std::to_string(++commits_)});
    if (!tag.empty()) git(dir, {"tag", "-f", tag});
    std::string head = git(dir, {"rev-parse", "HEAD"});
    while (!head.empty() && head.back() == '\n') head.pop_back();
    return head;
  }

  static std::string git(const std::filesystem::path& dir, std::vector<std::string> args) {
    args.insert(args.begin(), {"/usr/bin/git", "-C", dir.string()});
    auto r = run_process(args, {"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@e", "GIT_COMMITTER_NAME=t",
                                "GIT_COMMITTER_EMAIL=t@e", "GIT_AUTHOR_DATE=2020-01-01T00:00:00Z",
                                "GIT_COMMITTER_DATE=2020-01-01T00:00:00Z"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  }

  static bool have_npm_modules() {
    return std::filesystem::exists(std::filesystem::path(LOCKSTEP_NPM_DIR) / "node_modules" /
                                   "@actions" / "core" / "package.json");
  }

 private:
  std::filesystem::path root_;
  int commits_ = 0;
};

// A JavaScript action with pre, main and post stages that uses @actions/core
// for inputs, outputs, state and exported variables.
inline std::map<std::string, std::string> hello_action(const std::string& version_note = "v1") {
  return {
      {"action.yml", R"(name: Hello
description: greets someone
inputs:
  who-to-greet:
    description: who
    required: true
    default: World
  greeting:
    description: the word
    default: Hello
outputs:
  said:
    description: what it said
runs:
  using: node20
  pre: pre.js
  main: main.js
  post: post.js
)"},
      {"pre.js", R"(const core = require('@actions/core');
core.saveState('from-pre', 'pre-state');
console.log('pre: ' + process.env.GITHUB_ACTION_REPOSITORY + '@' + process.env.GITHUB_ACTION_REF);
)"},
      {"main.js",
       "const core = require('@actions/core');\n"
       "const who = core.getInput('who-to-greet', { required: true });\n"
       "const said = `${core.getInput('greeting')}, ${who} (" +
           version_note +
           ")`;\n"
           "console.log(`main: ${said} state=${core.getState('from-pre')}`);\n"
           "console.log(`main: INPUT_WHO-TO-GREET=${process.env['INPUT_WHO-TO-GREET']}`);\n"
           "console.log(`main: action_path=${process.env.GITHUB_ACTION_PATH}`);\n"
           "core.setOutput('said', said);\n"
           "core.exportVariable('GREETED', who);\n"
           "core.saveState('from-main', 'main-state');\n"},
      {"post.js", R"(const core = require('@actions/core');
console.log(`post: ${core.getState('from-pre')} ${core.getState('from-main')}`);
)"},
  };
}

}  // namespace lockstep::testing
