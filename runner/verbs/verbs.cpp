// The table of verbs and the small dispatchers for verbs with subcommands.
#include <cstdio>

#include "runner/cli/cli.hpp"
#include "runner/cli/commands.hpp"
#include "runner/verbs/cmd_artifacts.hpp"
#include "runner/verbs/cmd_cache.hpp"
#include "runner/verbs/cmd_diff.hpp"
#include "runner/verbs/cmd_image_local.hpp"
#include "runner/verbs/cmd_image_pull.hpp"
#include "runner/verbs/cmd_lock.hpp"
#include "runner/verbs/cmd_mirror.hpp"
#include "runner/verbs/cmd_records.hpp"
#include "runner/verbs/cmd_report.hpp"

namespace lockstep::runner {

namespace {

struct Sub {
  const char* name;
  int (*fn)(const Args&);
  const char* summary;
};

int dispatch(const char* verb, const std::vector<Sub>& subs, const Args& args) {
  auto help = [&] {
    std::printf("usage: lockstep %s <command> [options]\n\ncommands:\n", verb);
    for (const auto& s : subs) std::printf("  %-8s %s\n", s.name, s.summary);
    std::printf("\nSee 'lockstep %s <command> --help'.\n", verb);
  };
  if (args.empty()) {
    help();
    return 2;
  }
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    help();
    return 0;
  }
  std::vector<std::string> names;
  for (const auto& s : subs) {
    if (args[0] == s.name) return s.fn({args.begin() + 1, args.end()});
    names.push_back(s.name);
  }
  std::string hint = closest_match(args[0], names);
  return usage_error("unknown command 'lockstep " + std::string(verb) + " " + args[0] + "'" +
                     (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
}

}  // namespace

int cmd_image(const Args& args) {
  static const std::vector<Sub> subs = {
      {"import", cmd_image_import,
       "import a rootfs dir or tar, a docker save tar or an OCI layout"},
      {"pull", cmd_image_pull, "pull an image from a registry"},
      {"ls", cmd_image_ls, "list local images"},
      {"inspect", cmd_image_inspect, "print an image's manifest and config"},
      {"rm", cmd_image_rm, "remove an image tag"},
      {"export", cmd_image_export, "export an image as an OCI layout or tar"},
  };
  return dispatch("image", subs, args);
}

const std::vector<Verb>& verbs() {
  static const std::vector<Verb> v = {
      {"run", cmd_run, "run a workflow"},
      {"lock", cmd_lock, "resolve a workflow's images and refs into lockstep.lock"},
      {"image", cmd_image, "import, pull, list, inspect, remove and export images"},
      {"shell", cmd_shell, "open an interactive shell in a container from an image"},
      {"cache", cmd_cache, "list, measure and garbage-collect the local store"},
      {"artifacts", cmd_artifacts, "list or download the artifacts of a run"},
      {"runs", cmd_runs, "list recorded runs, or show one"},
      {"logs", cmd_logs, "print the logs of a recorded run's jobs"},
      {"replay", cmd_replay, "run recorded jobs again from their record and check they match"},
      {"verify", cmd_verify, "build jobs several times, varying what must not matter; compare"},
      {"diff", cmd_diff, "show what differed between two runs (inputs, host, outputs)"},
      {"report", cmd_report, "write a run's report as one self-contained HTML file"},
      {"mirror", cmd_mirror, "run the pull-through registry mirror"},
  };
  return v;
}

}  // namespace lockstep::runner
