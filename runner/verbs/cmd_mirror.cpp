#include "runner/verbs/cmd_mirror.hpp"

#include <cstdio>

#include "common/fs.hpp"
#include "common/log.hpp"
#include "common/paths.hpp"
#include "pipeline/lockfile.hpp"
#include "registry-mirror/manifest.hpp"
#include "registry-mirror/mirror_config.hpp"
#include "registry-mirror/mirror_prefetch.hpp"
#include "registry-mirror/mirror_server.hpp"
#include "runner/cli/cli.hpp"
#include "runner/verbs/run_options.hpp"

namespace lockstep::runner {
namespace {

constexpr const char* kMirrorHelp =
    "usage: lockstep mirror <serve|prefetch> [options]\n\n"
    "  serve      run the pull-through registry mirror (see 'lockstep mirror serve --help')\n"
    "  prefetch   warm a running mirror with the images of a lockstep.lock or a list\n";

int serve(const std::vector<std::string>& args) {
  CommandLine cli(
      "lockstep mirror serve [--config FILE] [--listen ADDR:PORT] [--upstream NAME=URL]... "
      "[--default-upstream NAME] [--tag-ttl DUR] [--max-size SIZE] [--state-dir DIR] "
      "[--insecure-upstream HOST]...",
      "Serves the read side of the OCI distribution API and pulls through to the upstreams.\n"
      "Clients pick an upstream with ?ns=<registry> (containerd) or a path prefix\n"
      "(/v2/<registry>/repo/...) naming the upstream or its registry, else get the default;\n"
      "a registry that no upstream serves gets a 404. Flags override the YAML config.",
      {
          {"config", 'c', true, false, "FILE", "YAML config (see examples/mirror/mirror.yml)"},
          {"listen", 'l', true, false, "ADDR:PORT",
           "address to listen on (default 127.0.0.1:5000)"},
          {"upstream", 'u', true, true, "NAME=URL",
           "an upstream registry, e.g. docker.io=https://registry-1.docker.io"},
          {"default-upstream", 0, true, false, "NAME", "upstream for unrouted requests"},
          {"tag-ttl", 0, true, false, "DUR", "re-check tags upstream after DUR (default 5m)"},
          {"max-size", 0, true, false, "SIZE", "evict least recently used blobs above SIZE"},
          state_dir_spec(),
          {"state", 0, true, false, "DIR", "the same as --state-dir (older spelling)"},
          {"insecure-upstream", 0, true, true, "HOST", "speak plain HTTP to this upstream host"},
          {"access-log", 0, true, false, "FILE", "JSON-lines access log (default stderr)"},
          {"threads", 0, true, false, "N", "HTTP worker threads (default: one per CPU)"},
      });
  if (CommandLine::wants_help(args)) {
    std::fputs(cli.help().c_str(), stdout);
    return 0;
  }
  auto parsed = cli.parse(args);
  if (!parsed) return report_error(parsed.error());
  if (!parsed->positionals.empty())
    return usage_error("mirror serve takes no arguments, got '" + parsed->positionals[0] + "'");
  // Log lines (start, stale answers, upstream failures) go to stderr; the
  // access log is separate.
  // (main may have set logging up already: registering twice would throw).
  if (auto logger = spdlog::get("lockstep"))
    logger->set_level(spdlog::level::info);
  else
    setup_logging(Verbosity::kVerbose);
  registry::MirrorConfig cfg;
  cfg.state_dir = state_dir();
  if (auto c = parsed->get("config"))
    if (auto st = registry::load_mirror_config(*c, cfg); !st) return report_error(st.error());
  if (auto v = parsed->get("listen"))
    if (auto st = registry::parse_listen(*v, cfg); !st) return report_error(st.error());
  for (const auto& u : parsed->all("upstream")) {
    auto up = registry::parse_upstream_flag(u);
    if (!up) return report_error(up.error());
    std::erase_if(cfg.upstreams, [&](const auto& x) { return x.name == up->name; });
    cfg.upstreams.push_back(*up);
  }
  if (auto v = parsed->get("default-upstream")) cfg.default_upstream = *v;
  if (auto v = parsed->get("tag-ttl")) {
    auto d = registry::parse_duration(*v);
    if (!d) return report_error(d.error());
    cfg.tag_ttl = *d;
  }
  if (auto v = parsed->get("max-size")) {
    auto n = registry::parse_size(*v);
    if (!n) return report_error(n.error());
    cfg.max_size = *n;
  }
  if (parsed->has("state") && parsed->has("state-dir"))
    return usage_error("--state and --state-dir are the same option: give one");
  if (auto v = parsed->get("state-dir")) cfg.state_dir = *v;
  if (auto v = parsed->get("state")) cfg.state_dir = *v;
  if (auto v = parsed->get("access-log")) cfg.access_log = *v;
  if (auto v = parsed->get("threads")) {
    auto n = parse_number(*v, "--threads", 1, 1024);
    if (!n) return report_error(n.error());
    cfg.threads = static_cast<unsigned>(*n);
  }
  for (const auto& host : parsed->all("insecure-upstream"))
    for (auto& u : cfg.upstreams)
      if (u.url.find("://" + host) != std::string::npos) u.insecure = true;

  auto server = registry::MirrorServer::create(std::move(cfg));
  if (!server) return report_error(server.error());
  // Tests and scripts read the bound port from this line (with --listen :0).
  std::printf("listening on port %u\n", (*server)->port());
  std::fflush(stdout);
  auto st = (*server)->run(/*handle_signals=*/true);
  if (!st) return report_error(st.error());
  return 0;
}

// The images of a lockstep.lock, each by its locked manifest digest (what a
// run with the lock pulls) for `platform`, or every platform it pins.
Result<std::vector<registry::Reference>> refs_from_lock(const pipeline::Lockfile& lock,
                                                        const std::string& platform) {
  std::vector<registry::Reference> out;
  for (const auto& img : lock.images) {
    if (img.source != "registry") {
      std::fprintf(stderr, "lockstep: note: image '%s' is only in a local image store; skipped\n",
                   img.reference.c_str());
      continue;
    }
    LS_TRY_ASSIGN(registry::Reference ref, registry::Reference::parse(img.reference));
    bool any = false;
    for (const auto& [p, digest] : img.manifests) {
      if (!platform.empty() && p != platform) continue;
      LS_TRY_ASSIGN(registry::Reference pinned,
                    registry::Reference::parse(ref.name() + "@" + digest));
      out.push_back(std::move(pinned));
      any = true;
    }
    if (!any)
      return fail("image '" + img.reference + "': the lock pins no " + platform + " manifest",
                  ErrorKind::kUsage);
  }
  return out;
}

int prefetch(const std::vector<std::string>& args) {
  CommandLine cli(
      "lockstep mirror prefetch FILE [--mirror URL] [--platform OS/ARCH]",
      "Pulls every image of FILE through a running mirror so that later pulls are local.\n"
      "FILE is a lockstep.lock (every image it pins, by the locked manifest digest, as a\n"
      "run with the lock pulls it) or a text file with one image reference per line\n"
      "('#' starts a comment), e.g. docker.io/library/alpine:3.19.",
      {
          {"mirror", 'm', true, false, "URL",
           "the mirror (default: $LOCKSTEP_MIRROR, else http://127.0.0.1:5000)"},
          {"platform", 0, true, false, "OS/ARCH",
           "platform for multi-platform images (default linux/amd64)"},
      });
  if (CommandLine::wants_help(args)) {
    std::fputs(cli.help().c_str(), stdout);
    return 0;
  }
  auto parsed = cli.parse(args);
  if (!parsed) return report_error(parsed.error());
  if (parsed->positionals.size() != 1)
    return usage_error("mirror prefetch needs one file: a lockstep.lock or a list of images");
  const std::string& file = parsed->positionals[0];
  auto text = read_file(file);
  if (!text) return report_error(text.error());
  cache::Platform platform;
  if (auto p = parsed->get("platform")) {
    auto pl = registry::parse_platform(*p);
    if (!pl) return report_error(pl.error());
    platform = *pl;
  }
  auto mirror = mirror_option(*parsed);
  if (!mirror) return report_error(mirror.error());
  if (mirror->empty()) mirror = std::string("http://127.0.0.1:5000");
  // A lock is JSON; a list of references never starts with '{'.
  size_t first = text->find_first_not_of(" \t\r\n");
  Result<std::vector<registry::Reference>> refs = std::vector<registry::Reference>{};
  if (first != std::string::npos && (*text)[first] == '{') {
    auto lock = pipeline::parse_lockfile(*text, file);
    if (!lock) return report_error(lock.error());
    refs = refs_from_lock(*lock, parsed->get("platform") ? platform.str() : "");
  } else {
    refs = registry::parse_prefetch_list(*text, file);
  }
  if (!refs) return report_error(refs.error());
  auto r = registry::prefetch_through_mirror(*mirror, *refs, platform);
  if (!r) return report_error(r.error());
  std::printf("prefetched %zu images: %zu manifests, %zu blobs, %llu bytes\n", refs->size(),
              r->manifests, r->blobs, static_cast<unsigned long long>(r->bytes));
  return 0;
}

}  // namespace

int cmd_mirror(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::fputs(kMirrorHelp, args.empty() ? stderr : stdout);
    return args.empty() ? 2 : 0;
  }
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "serve") return serve(rest);
  if (args[0] == "prefetch") return prefetch(rest);
  return usage_error("unknown mirror command '" + args[0] + "' (expected serve or prefetch)");
}

}  // namespace lockstep::runner
