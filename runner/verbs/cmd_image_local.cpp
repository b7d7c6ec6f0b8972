#include "runner/verbs/cmd_image_local.hpp"

#include <cstdio>

#include "cache/export_oci.hpp"
#include "cache/gc.hpp"
#include "cache/gc_lock.hpp"
#include "cache/image_store.hpp"
#include "cache/import_archive.hpp"
#include "cache/layer_unpack.hpp"
#include "common/json.hpp"
#include "common/paths.hpp"
#include "runner/cli/cli.hpp"

namespace lockstep::runner {

namespace {

// Parses `args`; on --help prints the usage and returns 0 through `exit`.
std::optional<ParsedArgs> parse_or_exit(const CommandLine& cli,
                                        const std::vector<std::string>& args, int& exit) {
  if (CommandLine::wants_help(args)) {
    std::fputs(cli.help().c_str(), stdout);
    exit = 0;
    return std::nullopt;
  }
  auto parsed = cli.parse(args);
  if (!parsed) {
    exit = report_error(parsed.error());
    return std::nullopt;
  }
  return std::move(*parsed);
}

}  // namespace

int cmd_image_import(const std::vector<std::string>& args) {
  CommandLine cli("lockstep image import SOURCE [--tag NAME]",
                  "Imports an image into the local store and prints its manifest digest.\n"
                  "SOURCE is a root filesystem (a directory or a tar; --tag is required and\n"
                  "the image is deterministic: the same files give the same digest on any\n"
                  "host), a `docker save` tarball, or an OCI image layout (a directory or a\n"
                  "tar of one). Tags found in the source are kept unless --tag is given.",
                  {{"tag", 't', true, false, "NAME", "name[:tag] to give the image"}});
  int exit = 0;
  auto parsed = parse_or_exit(cli, args, exit);
  if (!parsed) return exit;
  if (parsed->positionals.size() != 1)
    return usage_error(parsed->positionals.empty()
                           ? "image import needs a SOURCE; see 'lockstep image import --help'"
                           : "image import takes one SOURCE, got " +
                                 std::to_string(parsed->positionals.size()));
  cache::ImageStore store(state_dir());
  auto imported = cache::import_any(store, parsed->positionals[0], parsed->get("tag"));
  if (!imported) return report_error(imported.error());
  for (const auto& im : *imported) std::printf("%s\n", im.manifest.str().c_str());
  return 0;
}

int cmd_image_ls(const std::vector<std::string>& args) {
  CommandLine cli("lockstep image ls [--quiet]", "Lists the images in the local store.",
                  {{"quiet", 'q', false, false, "", "print manifest digests only"}});
  int exit = 0;
  auto parsed = parse_or_exit(cli, args, exit);
  if (!parsed) return exit;
  if (!parsed->positionals.empty())
    return usage_error("image ls takes no arguments, got '" + parsed->positionals[0] + "'");
  cache::ImageStore store(state_dir());
  auto list = store.list();
  if (!list) return report_error(list.error());
  if (parsed->has("quiet")) {
    for (const auto& e : *list) std::printf("%s\n", e.manifest.str().c_str());
    return 0;
  }
  size_t w = 4;
  for (const auto& e : *list) w = std::max(w, e.tag.size());
  std::printf("%-*s  %-71s  %s\n", static_cast<int>(w), "NAME", "DIGEST", "SIZE");
  for (const auto& e : *list)
    std::printf("%-*s  %-71s  %s\n", static_cast<int>(w), e.tag.c_str(), e.manifest.str().c_str(),
                cache::format_size(e.size).c_str());
  return 0;
}

int cmd_image_inspect(const std::vector<std::string>& args) {
  CommandLine cli(
      "lockstep image inspect REF",
      "Prints a local image as JSON: manifest and config digests, platform, tags,\n"
      "layers (blob, diff id, chain id, media type, size, whether unpacked) and its config.",
      {});
  int exit = 0;
  auto parsed = parse_or_exit(cli, args, exit);
  if (!parsed) return exit;
  if (parsed->positionals.size() != 1)
    return usage_error(
        "image inspect takes one image reference; see 'lockstep image inspect --help'");
  cache::ImageStore store(state_dir());
  auto rec = store.resolve(parsed->positionals[0]);
  if (!rec) return report_error(rec.error());
  Json tags = Json::array();
  if (auto list = store.list())
    for (const auto& e : *list)
      if (e.manifest == rec->manifest && e.tag != "<none>") tags.push_back(e.tag);
  Json layers = Json::array();
  for (const auto& l : rec->layers) {
    auto dir = cache::unpacked_layer_dir(store.state_dir(), l.diff_id, l.chain_id);
    Json layer = {{"digest", l.blob.str()},
                  {"diffId", l.diff_id.str()},
                  {"chainId", l.chain_id.str()},
                  {"mediaType", l.media_type},
                  {"size", l.size},
                  {"unpacked", dir.has_value()}};
    // A layer that hard-links files of the layers below is stored by chain id.
    if (dir)
      layer["unpackedAs"] = dir->filename().string().starts_with("chain-") ? "chain" : "layer";
    layers.push_back(std::move(layer));
  }
  Json out = {{"manifest", rec->manifest.str()},
              {"mediaType", rec->manifest_media_type},
              {"config", rec->config.str()},
              {"platform", rec->platform.str()},
              {"tags", tags},
              {"layers", layers},
              {"imageConfig", rec->config_json}};
  if (rec->index) out["index"] = rec->index->str();
  std::fputs(pretty_json(out).c_str(), stdout);
  return 0;
}

int cmd_image_rm(const std::vector<std::string>& args) {
  CommandLine cli("lockstep image rm REF...",
                  "Removes image tags; a digest (sha256:... or name@sha256:...) removes the\n"
                  "image with all its tags. Disk space is freed by 'lockstep cache gc'.",
                  {});
  int exit = 0;
  auto parsed = parse_or_exit(cli, args, exit);
  if (!parsed) return exit;
  if (parsed->positionals.empty())
    return usage_error("image rm needs an image reference; see 'lockstep image rm --help'");
  cache::ImageStore store(state_dir());
  int rc = 0;
  for (const auto& ref : parsed->positionals) {
    auto r = store.remove(ref);
    if (!r) {
      rc = report_error(r.error());
      continue;
    }
    std::printf("removed %s\n", ref.c_str());
  }
  return rc;
}

int cmd_image_export(const std::vector<std::string>& args) {
  CommandLine cli("lockstep image export REF (--oci DIR | --tar FILE)",
                  "Exports a local image as an OCI image layout, to a new directory or a tar\n"
                  "file, for hosts without registry access ('lockstep image import' reads\n"
                  "both back with the same digest; docker load reads the tar).",
                  {{"oci", 0, true, false, "DIR", "write an OCI layout into DIR (new or empty)"},
                   {"tar", 0, true, false, "FILE", "write an OCI layout tar to FILE"}});
  int exit = 0;
  auto parsed = parse_or_exit(cli, args, exit);
  if (!parsed) return exit;
  if (parsed->positionals.size() != 1)
    return usage_error(
        "image export takes one image reference; see 'lockstep image export --help'");
  if (parsed->has("oci") == parsed->has("tar"))
    return usage_error("image export needs exactly one of --oci DIR and --tar FILE");
  const std::string& ref = parsed->positionals[0];
  cache::ImageStore store(state_dir());
  auto rec = store.resolve(ref);
  if (!rec) return report_error(rec.error());
  std::optional<std::string> tag;
  if (ref.find('@') == std::string::npos && !ref.starts_with("sha256:")) tag = ref;
  auto s = parsed->has("oci") ? cache::export_oci_dir(store, *rec, tag, *parsed->get("oci"))
                              : cache::export_oci_tar(store, *rec, tag, *parsed->get("tar"));
  if (!s) return report_error(s.error());
  return 0;
}

}  // namespace lockstep::runner
