#include "runner/verbs/cmd_cache.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>

#include "cache/artifacts.hpp"
#include "cache/depcache.hpp"
#include "cache/gc.hpp"
#include "cache/image_store.hpp"
#include "cache/volumes.hpp"
#include "common/paths.hpp"
#include "runner/cli/cli.hpp"

namespace lockstep::runner {

namespace {

const char* kUsage =
    "usage: lockstep cache <command> [options]\n\n"
    "commands:\n"
    "  ls       images in the store, least recently used first, with size and last use\n"
    "  du       disk used by blobs, unpacked layers and temporary files\n"
    "  gc       remove what no image references; --max-size SIZE also evicts least\n"
    "           recently used images until the store fits (never one a job is using);\n"
    "           named volumes unused for --volume-max-age (default 30d)\n";

// "30d", "12h", "90m", "45s" or "0"; a bare number is days.
Result<std::chrono::seconds> parse_age(const std::string& text) {
  size_t digits = text.find_first_not_of("0123456789");
  std::string unit = digits == std::string::npos ? "d" : text.substr(digits);
  std::string number = text.substr(0, digits);
  static const std::pair<const char*, int64_t> kUnits[] = {
      {"d", 86400}, {"h", 3600}, {"m", 60}, {"s", 1}};
  if (!number.empty() && number.size() < 9)
    for (const auto& [u, secs] : kUnits)
      if (unit == u) return std::chrono::seconds(std::stoll(number) * secs);
  return fail("--volume-max-age '" + text + "': expected a duration such as 30d, 12h or 0",
              ErrorKind::kUsage);
}

std::string when(const std::optional<std::chrono::system_clock::time_point>& t) {
  if (!t) return "never";
  std::time_t tt = std::chrono::system_clock::to_time_t(*t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

int cache_ls(const std::vector<std::string>& args) {
  CommandLine cli("lockstep cache ls", "Lists cached images, least recently used first.", {});
  if (CommandLine::wants_help(args)) {
    std::fputs(cli.help().c_str(), stdout);
    return 0;
  }
  auto parsed = cli.parse(args);
  if (!parsed) return report_error(parsed.error());
  if (!parsed->positionals.empty()) return usage_error("cache ls takes no arguments");
  cache::ImageStore store(state_dir());
  auto images = cache::cache_images(store);
  if (!images) return report_error(images.error());
  std::printf("%-20s  %-10s  %-6s  %-71s  %s\n", "LAST USED", "SIZE", "IN USE", "DIGEST", "TAGS");
  for (const auto& im : *images) {
    std::string tags;
    for (const auto& t : im.tags) tags += (tags.empty() ? "" : ",") + t;
    std::printf("%-20s  %-10s  %-6s  %-71s  %s\n", when(im.last_use).c_str(),
                cache::format_size(im.bytes).c_str(), im.in_use ? "yes" : "no",
                im.manifest.str().c_str(), tags.empty() ? "<none>" : tags.c_str());
  }
  return 0;
}

int cache_du(const std::vector<std::string>& args) {
  CommandLine cli("lockstep cache du", "Prints the disk space the local store uses.", {});
  if (CommandLine::wants_help(args)) {
    std::fputs(cli.help().c_str(), stdout);
    return 0;
  }
  auto parsed = cli.parse(args);
  if (!parsed) return report_error(parsed.error());
  if (!parsed->positionals.empty()) return usage_error("cache du takes no arguments");
  cache::ImageStore store(state_dir());
  auto u = cache::cache_usage(store);
  if (!u) return report_error(u.error());
  std::printf("blobs   %6llu  %s\n", static_cast<unsigned long long>(u->blobs),
              cache::format_size(u->blob_bytes).c_str());
  std::printf("layers  %6llu  %s\n", static_cast<unsigned long long>(u->layers),
              cache::format_size(u->layer_bytes).c_str());
  std::printf("tmp             %s\n", cache::format_size(u->tmp_bytes).c_str());
  // Dependency caches (actions/cache), in scopes by repository and pull request.
  cache::DepCache deps(state_dir());
  auto entries = deps.list();
  if (!entries) return report_error(entries.error());
  uint64_t dep_bytes = 0;
  for (const auto& e : *entries) dep_bytes += e.size;
  std::printf("deps    %6zu  %s\n", entries->size(), cache::format_size(dep_bytes).c_str());
  // Named volumes of container.volumes, kept across runs.
  auto volumes = cache::VolumeStore(state_dir()).list();
  if (!volumes) return report_error(volumes.error());
  uint64_t volume_bytes = 0;
  for (const auto& v : *volumes) volume_bytes += v.bytes;
  std::printf("volumes %6zu  %s\n", volumes->size(), cache::format_size(volume_bytes).c_str());
  std::printf("total           %s (%llu bytes)\n", cache::format_size(u->total()).c_str(),
              static_cast<unsigned long long>(u->total()));
  return 0;
}

int cache_gc(const std::vector<std::string>& args) {
  CommandLine cli("lockstep cache gc [--max-size SIZE]",
                  "Removes blobs and unpacked layers that no image references. With\n"
                  "--max-size, evicts whole images, least recently used first, until blobs\n"
                  "and layers fit in SIZE (e.g. 500M, 20G). Images held by running jobs stay.\n"
                  "Artifacts past their retention-days are removed; with --max-deps-size,\n"
                  "dependency caches are evicted least recently used first. Named volumes\n"
                  "(container.volumes NAME:/path) no job has used for --volume-max-age are\n"
                  "removed; a volume a job is using stays.",
                  {{"max-size", 0, true, false, "SIZE", "size to shrink the store to"},
                   {"max-deps-size", 0, true, false, "SIZE",
                    "evict dependency caches (actions/cache), least recently used first, to SIZE"},
                   {"volume-max-age", 0, true, false, "AGE",
                    "remove named volumes unused for longer than AGE (30d, 12h, 0; default 30d)"}});
  if (CommandLine::wants_help(args)) {
    std::fputs(cli.help().c_str(), stdout);
    return 0;
  }
  auto parsed = cli.parse(args);
  if (!parsed) return report_error(parsed.error());
  if (!parsed->positionals.empty()) return usage_error("cache gc takes no arguments");
  cache::GcOptions opts;
  if (auto s = parsed->get("max-size")) {
    auto n = cache::parse_size(*s);
    if (!n) return report_error(n.error());
    opts.max_size = *n;
  }
  std::optional<uint64_t> max_deps;
  if (auto s = parsed->get("max-deps-size")) {
    auto n = cache::parse_size(*s);
    if (!n) return report_error(n.error());
    max_deps = *n;
  }
  std::chrono::seconds volume_age = std::chrono::hours(24 * 30);
  if (auto s = parsed->get("volume-max-age")) {
    auto age = parse_age(*s);
    if (!age) return report_error(age.error());
    volume_age = *age;
  }
  cache::ImageStore store(state_dir());
  auto rep = cache::collect_garbage(store, opts);
  if (!rep) return report_error(rep.error());
  for (const auto& e : rep->evicted) std::printf("evicted %s\n", e.c_str());
  for (const auto& d : rep->in_use) std::printf("in use, kept %s\n", d.str().c_str());
  std::printf("removed %llu blobs and %llu layers, freed %s; store now %s\n",
              static_cast<unsigned long long>(rep->blobs_removed),
              static_cast<unsigned long long>(rep->layers_removed),
              cache::format_size(rep->bytes_freed).c_str(),
              cache::format_size(rep->size_after).c_str());
  auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  auto pruned = cache::ArtifactStore(state_dir()).prune(now_ms);
  if (!pruned) return report_error(pruned.error());
  for (const auto& a : *pruned)
    std::printf("expired artifact %s of run %s\n", a.name.c_str(), a.run_id.c_str());
  auto volumes = cache::VolumeStore(state_dir()).remove_unused(volume_age);
  if (!volumes) return report_error(volumes.error());
  for (const auto& v : *volumes)
    std::printf("removed volume %s (%s, last used %s)\n", v.name.c_str(),
                cache::format_size(v.bytes).c_str(), when(v.last_use).c_str());
  if (max_deps) {
    auto evicted = cache::DepCache(state_dir()).evict_to(*max_deps);
    if (!evicted) return report_error(evicted.error());
    for (const auto& e : *evicted)
      std::printf("evicted dependency cache %s (%s)\n", e.key.c_str(),
                  cache::format_size(e.size).c_str());
  }
  return 0;
}

}  // namespace

int cmd_cache(const std::vector<std::string>& args) {
  if (args.empty()) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string& sub = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (sub == "--help" || sub == "-h" || sub == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (sub == "ls") return cache_ls(rest);
  if (sub == "du") return cache_du(rest);
  if (sub == "gc") return cache_gc(rest);
  std::string hint = closest_match(sub, {"ls", "du", "gc"});
  return usage_error("unknown command 'lockstep cache " + sub + "'" +
                     (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
}

}  // namespace lockstep::runner
