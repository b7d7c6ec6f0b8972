#include "runner/engine/dockerfile_action.hpp"

#include <algorithm>
#include <cctype>
#include <sstream>

#include "cache/export_oci.hpp"
#include "cache/import_archive.hpp"
#include "common/command.hpp"
#include "common/digest.hpp"
#include "common/fs.hpp"
#include "common/lock_file.hpp"
#include "common/text.hpp"
#include "common/userns.hpp"

namespace lockstep::runner {
namespace fs = std::filesystem;

namespace {

std::vector<std::string> words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// sha256 over "path\0mode\0sha256\n" of every file (symlinks by target),
// sorted: the identity of a build context that is not a commit.
Result<std::string> tree_digest(const fs::path& dir) {
  std::vector<std::string> lines;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    std::string rel = fs::relative(it->path(), dir).string();
    if (it->is_symlink()) {
      lines.push_back(rel + '\0' + "link" + '\0' + fs::read_symlink(it->path(), ec).string() +
                      "\n");
    } else if (it->is_regular_file()) {
      LS_TRY_ASSIGN(Digest d, sha256_of_file(it->path()));
      auto perms = static_cast<unsigned>(it->status().permissions()) & 0777u;
      lines.push_back(rel + '\0' + std::to_string(perms) + '\0' + d.hex() + "\n");
    }
  }
  if (ec) return fail("walk " + dir.string() + ": " + ec.message());
  std::sort(lines.begin(), lines.end());
  Sha256 h;
  for (const auto& l : lines) h.update(l);
  return h.finish().str();
}

std::string tag_name(const std::string& name) {
  std::string out;
  for (char c : ascii_lower(name))
    out += (std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '-' || c == '.' ||
            c == '_')
               ? c
               : '-';
  return out.empty() ? "action" : out;
}

}  // namespace

Result<std::string> rewrite_from_lines(const std::string& dockerfile,
                                       const std::map<std::string, std::string>& map,
                                       std::vector<std::string>* bases) {
  std::istringstream in(dockerfile);
  std::string out, line, logical;
  std::vector<std::string> stages;
  bool any_from = false;
  int lineno = 0, start = 0;
  auto flush = [&]() -> Status {
    std::string t = logical;
    size_t b = t.find_first_not_of(" \t");
    std::vector<std::string> w = words(t);
    if (b == std::string::npos || t[b] == '#' || w.empty() || ascii_lower(w[0]) != "from") {
      out += logical;
      return {};
    }
    any_from = true;
    // FROM [--platform=...] IMAGE [AS NAME]; the continuation backslashes
    // are gone from `w` only if they stood alone, so drop them here.
    std::vector<std::string> toks;
    for (const auto& x : w)
      if (x != "\\") toks.push_back(x);
    size_t i = 1;
    std::string flags;
    while (i < toks.size() && toks[i].rfind("--", 0) == 0) flags += toks[i++] + " ";
    if (i >= toks.size())
      return fail("Dockerfile line " + std::to_string(start) + ": FROM names no image",
                  ErrorKind::kWorkflow);
    std::string image = toks[i++];
    std::string alias;
    if (i + 1 < toks.size() && ascii_lower(toks[i]) == "as") alias = toks[i + 1];
    if (image.find('$') != std::string::npos)
      return fail("Dockerfile line " + std::to_string(start) + ": FROM " + image +
                      " uses a build argument, which lockstep does not support in action "
                      "Dockerfiles",
                  ErrorKind::kUnsupported);
    bool internal = ascii_lower(image) == "scratch" ||
                    std::find(stages.begin(), stages.end(), ascii_lower(image)) != stages.end();
    if (!alias.empty()) stages.push_back(ascii_lower(alias));
    if (internal) {
      out += logical;
      return {};
    }
    if (bases && std::find(bases->begin(), bases->end(), image) == bases->end())
      bases->push_back(image);
    auto it = map.find(image);
    if (it == map.end()) {
      out += logical;
      return {};
    }
    out += "FROM " + flags + it->second + (alias.empty() ? "" : " AS " + alias) + "\n";
    return {};
  };
  while (std::getline(in, line)) {
    ++lineno;
    if (logical.empty()) start = lineno;
    logical += line + "\n";
    std::string trimmed = line;
    while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.back())))
      trimmed.pop_back();
    if (!trimmed.empty() && trimmed.back() == '\\') continue;
    LS_TRY(flush());
    logical.clear();
  }
  if (!logical.empty()) LS_TRY(flush());
  if (!any_from) return fail("the Dockerfile has no FROM", ErrorKind::kWorkflow);
  return out;
}

Result<BuiltImage> build_dockerfile_action(ImageResolver& images, const DockerfileBuild& req) {
  fs::path dockerfile_path = (req.context / req.dockerfile).lexically_normal();
  if (fs::relative(dockerfile_path, req.context).string().rfind("..", 0) == 0)
    return fail("Dockerfile '" + req.dockerfile + "' is outside the action", ErrorKind::kWorkflow);
  auto text = read_file(dockerfile_path);
  if (!text)
    return fail("no Dockerfile '" + req.dockerfile + "' in the action", ErrorKind::kWorkflow);
  std::vector<std::string> bases;
  LS_TRY(rewrite_from_lines(*text, {}, &bases));

  BuiltImage out;
  std::map<std::string, PreparedImage> prepared;
  for (const auto& b : bases) {
    auto p = req.resolve_base(b);
    if (!p) return fail(std::move(p.error()).context("FROM " + b));
    out.bases[b] = p->record.manifest.str();
    prepared.emplace(b, std::move(*p));
  }
  auto v = run_command({"buildah", "--version"});
  if (!v || v->exit_code != 0)
    return fail(
        "building a Docker action's image needs buildah on the host (apt-get install buildah)",
        ErrorKind::kUnsupported);

  // The build's identity: context, Dockerfile, bases, network, builder.
  std::string context_id = req.context_id;
  if (context_id.empty()) {
    LS_TRY_ASSIGN(context_id, tree_digest(req.context));
  }
  Sha256 key;
  key.update("context " + context_id + "\ndockerfile " + req.dockerfile + "\n" + *text + "\n");
  for (const auto& [b, d] : out.bases) key.update("from " + b + " " + d + "\n");
  key.update("network " + req.network + "\ntimestamp " + std::to_string(req.timestamp) +
             "\nbuilder " + v->out);
  std::string hex = key.finish().hex().substr(0, 20);
  out.tag = "localhost/lockstep-actions/" + tag_name(req.name) + ":" + hex;

  cache::ImageStore& store = images.store();
  fs::create_directories(req.scratch);
  LS_TRY_ASSIGN(LockFile lock, LockFile::acquire(req.scratch / (".build-" + hex + ".lock"), false));
  if (auto have = store.resolve(out.tag)) {
    out.digest = have->manifest.str();
    out.cached = true;
    return out;
  }
  LS_TRY_ASSIGN(TempDir tmp, TempDir::create(req.scratch, "build-"));
  std::map<std::string, std::string> map;
  size_t n = 0;
  for (const auto& [b, p] : prepared) {
    fs::path tar = tmp.path() / ("base-" + std::to_string(++n) + ".tar");
    LS_TRY(cache::export_oci_tar(store, p.record, std::nullopt, tar));
    map[b] = "oci-archive:" + tar.string();
  }
  LS_TRY_ASSIGN(std::string rewritten, rewrite_from_lines(*text, map, nullptr));
  fs::path file = tmp.path() / "Dockerfile";
  LS_TRY(write_file(file, rewritten));
  if (req.note) req.note("building " + out.tag + " from " + req.dockerfile);
  // Without root, buildah runs as root of lockstep's user namespace: the
  // subordinate ids the image's files belong to are mapped there, and the
  // job's network namespace (which that user namespace owns) can be joined,
  // so egress builds fetch through the job's proxy as they do with root.
  int userns = -1;
  if (running_rootless()) {
    LS_TRY_ASSIGN(userns, rootless_userns_fd());
  }
  std::vector<std::string> storage = {"--root",           (tmp.path() / "root").string(),
                                      "--runroot",        (tmp.path() / "run").string(),
                                      "--storage-driver", "vfs"};
  // RUN steps run chrooted in buildah's network namespace: a new, empty one
  // (util-linux unshare) for "none", the host's for "host", the job's for
  // "egress" (names through its DNS stub, HTTP(S) through its recording
  // proxy, so what the build fetched is in the job's record). Nothing is
  // pulled: the bases are archives.
  std::vector<std::string> bud;
  if (req.network == "none") bud = {"unshare", "--net", "--"};
  bud.push_back("buildah");
  bud.insert(bud.end(), storage.begin(), storage.end());
  // Flags as --name=value: several of buildah's take an optional value.
  bud.insert(bud.end(), {"bud", "--quiet", "--isolation=chroot", "--pull=never", "--network=host",
                         "--timestamp=" + std::to_string(req.timestamp), "--file=" + file.string(),
                         "--tag=localhost/lockstep-build:latest"});
  if (req.network == "egress") {
    bud.push_back("--dns=127.0.0.53");
    // Docker predefines these build arguments: RUN sees them without ARG.
    for (const auto& [name, value] : req.proxy_env)
      bud.push_back("--build-arg=" + name + "=" + value);
  }
  bud.push_back(req.context.string());
  LS_TRY_ASSIGN(CommandOutput built,
                run_command(bud, {"BUILDAH_LAYERS=false"},
                            req.network == "egress" ? req.netns_fd : -1, userns));
  if (built.exit_code != 0) {
    std::string tail = built.err.empty() ? built.out : built.err;
    while (!tail.empty() && tail.back() == '\n') tail.pop_back();
    tail = tail.substr(tail.rfind('\n') == std::string::npos ? 0 : tail.rfind('\n') + 1);
    return fail("buildah could not build " + req.dockerfile + ": " + tail);
  }
  fs::path archive = tmp.path() / "image.tar";
  std::vector<std::string> push = {"buildah"};
  push.insert(push.end(), storage.begin(), storage.end());
  push.insert(push.end(),
              {"push", "--quiet", "localhost/lockstep-build:latest", "oci-archive:" + archive.string()});
  LS_TRY_ASSIGN(CommandOutput pushed, run_command(push, {}, -1, userns));
  if (pushed.exit_code != 0) return fail("buildah push: " + pushed.err);
  LS_TRY_ASSIGN(auto imported, cache::import_any(store, archive, out.tag));
  if (imported.empty()) return fail("the built image of " + req.name + " is empty");
  out.digest = imported.front().manifest.str();
  return out;
}

}  // namespace lockstep::runner
