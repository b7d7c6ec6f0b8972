// The lockstep program: parses the verb and hands off to runner/ (or server/).
#include <cstdio>
#include <string>
#include <vector>

#include "runner/cli.hpp"
#include "runner/commands.hpp"
#include "runner/version.hpp"
#include "server/verbs.hpp"

namespace {

// The runner's verbs, then the server's.
const std::vector<lockstep::runner::Verb>& all_verbs() {
  static const std::vector<lockstep::runner::Verb> v = [] {
    auto all = lockstep::runner::verbs();
    const auto& more = lockstep::server::verbs();
    all.insert(all.end(), more.begin(), more.end());
    return all;
  }();
  return v;
}

void print_help() {
  std::printf(
      "usage: lockstep <command> [options]\n\n"
      "Runs GitHub Actions workflows in pinned containers, reproducibly.\n\n"
      "commands:\n");
  for (const auto& v : all_verbs()) std::printf("  %-10s %s\n", v.name, v.summary);
  std::printf(
      "\noptions:\n"
      "  -h, --help     show this help (also: lockstep <command> --help)\n"
      "  --version      print the version\n\n"
      "environment:\n"
      "  LOCKSTEP_HOME  state directory (default /var/lib/lockstep for root)\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    print_help();
    return 2;
  }
  const std::string& verb = args[0];
  if (verb == "--help" || verb == "-h" || verb == "help") {
    print_help();
    return 0;
  }
  if (verb == "--version" || verb == "version") {
    std::printf("lockstep %s\n", lockstep::runner::kVersion);
    return 0;
  }
  std::vector<std::string> names;
  for (const auto& v : all_verbs()) {
    if (verb == v.name) return v.fn({args.begin() + 1, args.end()});
    names.push_back(v.name);
  }
  std::string hint = lockstep::runner::closest_match(verb, names);
  return lockstep::runner::usage_error("unknown command '" + verb + "'" +
                                       (hint.empty() ? "" : " (did you mean '" + hint + "'?)") +
                                       "; see 'lockstep --help'");
}
