// `lockstep shell IMAGE`: an interactive shell in a fresh container from IMAGE,
// with the same isolation as a job (namespaces, limits, seccomp), removed on exit.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "cache/image_store.hpp"
#include "common/paths.hpp"
#include "executor/executor.hpp"
#include "executor/interactive.hpp"
#include "pipeline/options.hpp"
#include "runner/cli/cli.hpp"
#include "runner/cli/commands.hpp"
#include "runner/engine/container_config.hpp"
#include "runner/engine/images.hpp"
#include "runner/engine/pull.hpp"

namespace lockstep::runner {

namespace {

const CommandLine& shell_command_line() {
  static const CommandLine cl(
      "lockstep shell IMAGE [options] [-- COMMAND...]",
      "Opens an interactive shell (or COMMAND) in a new container from IMAGE.\n"
      "The container is isolated like a job's and removed when the shell exits.",
      {
          {"options", 0, true, false, "TEXT", "docker-style options, as container.options"},
          {"network", 0, true, false, "MODE", "none (default) or host"},
          {"workdir", 'w', true, false, "DIR", "working directory in the container"},
          {"env", 'e', true, true, "KEY=VALUE", "set an environment variable"},
          {"volume", 'v', true, true, "HOST:CONTAINER[:ro]", "bind-mount a host directory"},
          {"insecure-registry", 0, true, true, "HOST", "allow plain HTTP for this registry"},
          mirror_spec(),
      });
  return cl;
}

}  // namespace

int cmd_shell(const Args& args) {
  if (CommandLine::wants_help(args)) {
    std::fputs(shell_command_line().help().c_str(), stdout);
    return 0;
  }
  auto p = shell_command_line().parse(args);
  if (!p) return report_error(p.error());
  if (p->positionals.empty()) return usage_error("lockstep shell: missing IMAGE");
  std::string image = p->positionals[0];
  std::vector<std::string> argv(p->positionals.begin() + 1, p->positionals.end());
  if (argv.empty()) argv = {"/bin/sh"};

  std::string mirror;
  if (auto m = p->get("mirror")) {
    auto u = normalize_mirror_url(*m, "--mirror");
    if (!u) return report_error(u.error());
    mirror = *u;
  } else if (const char* env = std::getenv("LOCKSTEP_MIRROR"); env && *env) {
    auto u = normalize_mirror_url(env, "LOCKSTEP_MIRROR");
    if (!u) return report_error(u.error());
    mirror = *u;
  }

  auto state = state_dir();
  if (auto r = executor::reap_stale(state); !r)
    std::fprintf(stderr, "lockstep: warning: cleaning up after an earlier run: %s\n",
                 r.error().message().c_str());
  cache::ImageStore store(state);
  ImageResolver images(store, make_pull_fn(store, p->all("insecure-registry"), mirror));
  auto prepared = images.get(image);
  if (!prepared) return report_error(prepared.error());

  executor::ContainerSpec spec;
  spec.id = "ls-shell-" + std::to_string(::getpid());
  spec.layers = prepared->layer_dirs;
  spec.env = env_from_config(prepared->record.config_json);
  spec.env.push_back("TERM=" + std::string(std::getenv("TERM") ? std::getenv("TERM") : "xterm"));
  spec.user = user_from_config(prepared->record.config_json);
  if (auto o = p->get("options")) {
    auto opts = pipeline::parse_container_options(*o);
    if (!opts) return report_error(opts.error().set_kind(ErrorKind::kUsage));
    apply_resource_options(*opts, spec.limits);
    if (opts->user) spec.user = *opts->user;
    if (opts->network) p->values["network"] = {*opts->network};
    for (const auto& [k, v] : opts->env) spec.env.push_back(k + "=" + v);
    spec.cap_add = opts->cap_add;
    spec.cap_drop = opts->cap_drop;
  }
  if (auto n = p->get("network")) {
    if (*n == "host")
      spec.network.mode = executor::NetworkMode::kHost;
    else if (*n != "none")
      return usage_error("--network '" + *n + "': expected none or host");
  }
  for (const auto& e : p->all("env")) spec.env.push_back(e);
  for (const auto& v : p->all("volume")) {
    auto c1 = v.find(':');
    if (c1 == std::string::npos || v[0] != '/')
      return usage_error("--volume '" + v + "': expected /host/path:/container/path[:ro]");
    executor::BindMount m{v.substr(0, c1), v.substr(c1 + 1), false};
    if (auto c2 = m.target.find(':'); c2 != std::string::npos) {
      m.read_only = m.target.substr(c2 + 1) == "ro";
      m.target = m.target.substr(0, c2);
    }
    spec.mounts.push_back(m);
  }
  spec.workdir = p->get("workdir").value_or("/");

  auto exec = executor::make_linux_executor(state);
  auto c = exec->start(spec);
  if (!c) return report_error(c.error());
  executor::ProcessSpec ps;
  ps.argv = argv;
  ps.tty = true;
  auto rc = executor::run_interactive(**c, ps, STDIN_FILENO, STDOUT_FILENO);
  (void)(*c)->stop(std::chrono::seconds(5));
  if (!rc) return report_error(rc.error());
  return *rc;
}

}  // namespace lockstep::runner
