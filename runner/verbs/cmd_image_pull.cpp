#include "runner/verbs/cmd_image_pull.hpp"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "cache/image_store.hpp"
#include "common/paths.hpp"
#include "registry-mirror/client.hpp"
#include "registry-mirror/manifest.hpp"
#include "registry-mirror/progress.hpp"
#include "registry-mirror/reference.hpp"
#include "runner/cli/cli.hpp"
#include "runner/engine/pull.hpp"

namespace lockstep::runner {

int cmd_image_pull(const std::vector<std::string>& args) {
  CommandLine cli(
      "lockstep image pull REF [--platform OS/ARCH[/VARIANT]] [--insecure] [--mirror URL] "
      "[--quiet]",
      "Pulls an image from its registry into the local store and prints its manifest digest.\n"
      "REF is a Docker-style reference: alpine, alpine:3.19, ghcr.io/org/app@sha256:...\n"
      "Credentials come from $DOCKER_CONFIG/config.json or ~/.docker/config.json.",
      {
          {"platform", 0, true, false, "OS/ARCH",
           "platform to pick from a multi-platform image (default linux/amd64)"},
          {"insecure", 0, false, false, "",
           "allow plain HTTP to this registry (loopback registries always use it)"},
          mirror_spec(),
          {"quiet", 'q', false, false, "", "no progress output"},
      });
  if (CommandLine::wants_help(args)) {
    std::fputs(cli.help().c_str(), stdout);
    return 0;
  }
  auto parsed = cli.parse(args);
  if (!parsed) return report_error(parsed.error());
  if (parsed->positionals.size() != 1)
    return usage_error(parsed->positionals.empty()
                           ? "image pull needs an image reference; see 'lockstep image pull --help'"
                           : "image pull takes one image reference, got " +
                                 std::to_string(parsed->positionals.size()));
  auto ref = registry::Reference::parse(parsed->positionals[0]);
  if (!ref) return report_error(ref.error());
  cache::Platform platform;
  if (auto p = parsed->get("platform")) {
    auto pl = registry::parse_platform(*p);
    if (!pl) return report_error(pl.error());
    platform = *pl;
  }

  PullSettings settings;
  if (parsed->has("insecure")) settings.insecure_registries.push_back(ref->domain);
  if (auto m = parsed->get("mirror")) {
    auto url = normalize_mirror_url(*m, "--mirror");
    if (!url) return report_error(url.error());
    settings.mirror = *url;
  } else if (const char* env = std::getenv("LOCKSTEP_MIRROR"); env && *env) {
    auto url = normalize_mirror_url(env, "LOCKSTEP_MIRROR");
    if (!url) return report_error(url.error());
    settings.mirror = *url;
  }

  cache::ImageStore store(state_dir());
  registry::ProgressRenderer renderer(stderr, ::isatty(STDERR_FILENO) == 1);
  registry::ProgressSink sink;
  if (!parsed->has("quiet")) sink = renderer.sink();
  std::atomic<bool> mirror_down{false};
  auto record = pull_image(*ref, platform, store, settings, mirror_down, sink);
  if (!record) return report_error(record.error());
  std::printf("%s\n", record->manifest.str().c_str());
  return 0;
}

}  // namespace lockstep::runner
