#include "runner/verbs/cmd_artifacts.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "cache/artifacts.hpp"
#include "common/paths.hpp"
#include "runner/cli/cli.hpp"

namespace lockstep::runner {

int cmd_artifacts(const std::vector<std::string>& args) {
  const CommandLine cl(
      "lockstep artifacts <run> [--download DIR] [--name NAME]",
      "List the artifacts a run uploaded, with their sha256 digests, or download them.",
      {{"download", 'd', true, false, "DIR",
        "write the artifacts into DIR (each into DIR/<name>/, or DIR itself with --name)"},
       {"name", 'n', true, false, "NAME", "only this artifact"}});
  if (CommandLine::wants_help(args)) {
    std::fputs(cl.help().c_str(), stdout);
    return 0;
  }
  auto parsed = cl.parse(args);
  if (!parsed) return report_error(parsed.error());
  if (parsed->positionals.size() != 1)
    return usage_error(
        "artifacts takes exactly one run id (usage: lockstep artifacts <run> "
        "[--download DIR] [--name NAME])");
  const std::string& run = parsed->positionals[0];
  const cache::ArtifactStore store(state_dir());

  if (auto dir = parsed->get("download")) {
    if (auto name = parsed->get("name")) {
      auto a = store.download(run, *name, *dir);
      if (!a) return report_error(a.error());
      std::printf("downloaded '%s' (%zu files, %llu bytes, %s) to %s\n", a->name.c_str(),
                  a->files.size(), static_cast<unsigned long long>(a->size),
                  a->digest.str().c_str(), dir->c_str());
      return 0;
    }
    auto all = store.download_all(run, *dir);
    if (!all) return report_error(all.error());
    if (all->empty())
      return report_error(
          Error("run '" + run + "' uploaded no artifacts", 0, ErrorKind::kNotFound));
    for (const auto& a : *all)
      std::printf("downloaded '%s' (%zu files, %llu bytes, %s) to %s/%s\n", a.name.c_str(),
                  a.files.size(), static_cast<unsigned long long>(a.size), a.digest.str().c_str(),
                  dir->c_str(), a.name.c_str());
    return 0;
  }

  std::vector<cache::ArtifactInfo> list;
  if (auto name = parsed->get("name")) {
    auto a = store.get(run, *name);
    if (!a) return report_error(a.error());
    list.push_back(std::move(*a));
  } else {
    auto all = store.list(run);
    if (!all) return report_error(all.error());
    list = std::move(*all);
    std::error_code ec;
    if (list.empty() && !std::filesystem::is_directory(state_dir() / "runs" / run, ec))
      return report_error(Error("no run '" + run + "' in " + (state_dir() / "runs").string(), 0,
                                ErrorKind::kNotFound));
  }
  size_t w = 4;
  for (const auto& a : list) w = std::max(w, a.name.size());
  std::printf("%-*s  %12s  %6s  %s\n", static_cast<int>(w), "NAME", "SIZE", "FILES", "SHA256");
  for (const auto& a : list)
    std::printf("%-*s  %12llu  %6zu  %s\n", static_cast<int>(w), a.name.c_str(),
                static_cast<unsigned long long>(a.size), a.files.size(), a.digest.str().c_str());
  return 0;
}

}  // namespace lockstep::runner
