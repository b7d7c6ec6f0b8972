// The lockstep program: parses the verb and hands off to runner/ (or server/).
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "runner/cli/cli.hpp"
#include "runner/cli/commands.hpp"
#include "runner/cli/version.hpp"
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
      "  LOCKSTEP_HOME  state directory (default /var/lib/lockstep for root,\n"
      "                 $XDG_DATA_HOME/lockstep or ~/.local/share/lockstep otherwise)\n");
}

// The last resort. Every input has its own one-line error; an exception that
// still escapes a verb (from yaml-cpp, nlohmann::json or the standard
// library) is a bug in lockstep, reported as one line with exit code 70
// (EX_SOFTWARE) instead of an abort and a core dump. One thrown on another
// thread ends up in std::terminate: the same line, and _Exit, since the other
// threads may still be using what exit() would destroy.
constexpr int kInternalError = 70;

void internal_error(const char* what) {
  std::fprintf(stderr, "lockstep: error: internal: %s\n", what);
}

[[noreturn]] void on_terminate() {
  const char* what = "terminated";
  std::string text;
  if (auto e = std::current_exception()) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      text = ex.what();
      what = text.c_str();
    } catch (...) {
      what = "an exception of unknown type";
    }
  }
  internal_error(what);
  std::_Exit(kInternalError);
}

int run_verb(const lockstep::runner::Verb& v, std::vector<std::string> args) {
  try {
    return v.fn(std::move(args));
  } catch (const std::exception& e) {
    internal_error(e.what());
  } catch (...) {
    internal_error("an exception of unknown type");
  }
  return kInternalError;
}

}  // namespace

int main(int argc, char** argv) {
  std::set_terminate(on_terminate);
  // A reader that goes away (`lockstep run | head`) must not kill a run
  // midway, its containers and cgroups left for the next run to reap:
  // writes to it fail (EPIPE) and the run goes on to its end and its record.
  // Every process lockstep starts in a container gets SIGPIPE back (the
  // executor resets every signal before exec).
  ::signal(SIGPIPE, SIG_IGN);
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
    if (verb == v.name) return run_verb(v, {args.begin() + 1, args.end()});
    names.push_back(v.name);
  }
  std::string hint = lockstep::runner::closest_match(verb, names);
  return lockstep::runner::usage_error("unknown command '" + verb + "'" +
                                       (hint.empty() ? "" : " (did you mean '" + hint + "'?)") +
                                       "; see 'lockstep --help'");
}
