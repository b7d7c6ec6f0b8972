#include "runner/engine/node_runtime.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <sstream>
#include <vector>

#include "common/command.hpp"
#include "common/digest.hpp"
#include "common/fs.hpp"
#include "common/json.hpp"

namespace lockstep::runner {
namespace fs = std::filesystem;

namespace {

// What the bundle needs besides the binary, from `ldd`: soname -> host path,
// and the dynamic loader.
struct Libraries {
  std::map<std::string, fs::path> libs;
  fs::path loader;
};

Result<Libraries> list_libraries(const fs::path& binary) {
  LS_TRY_ASSIGN(CommandOutput r, run_command({"ldd", binary.string()}));
  if (r.exit_code != 0)
    return fail("ldd " + binary.string() + ": " + (r.err.empty() ? r.out : r.err));
  Libraries out;
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    // "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)"
    // "\t/lib64/ld-linux-x86-64.so.2 (0x...)"   "\tlinux-vdso.so.1 (0x...)"
    size_t b = line.find_first_not_of(" \t");
    if (b == std::string::npos) continue;
    line = line.substr(b);
    if (line.find("not found") != std::string::npos)
      return fail("ldd " + binary.string() + ": " + line);
    size_t arrow = line.find(" => ");
    if (arrow != std::string::npos) {
      std::string name = line.substr(0, arrow);
      std::string rest = line.substr(arrow + 4);
      std::string path = rest.substr(0, rest.find(" ("));
      if (!path.empty() && path[0] == '/') out.libs[name] = path;
    } else if (line[0] == '/') {
      out.loader = line.substr(0, line.find(" ("));
    }
  }
  if (out.loader.empty())
    return fail(binary.string() + " is not a dynamically linked executable ldd understands");
  return out;
}

Status copy_regular(const fs::path& from, const fs::path& to, fs::perms mode) {
  std::error_code ec;
  fs::copy_file(fs::canonical(from, ec), to, ec);
  if (ec) return fail("copy " + from.string() + ": " + ec.message());
  fs::permissions(to, mode, ec);
  if (ec) return fail("chmod " + to.string() + ": " + ec.message());
  return {};
}

// sha256 over "path\0mode\0sha256\n" of every file, sorted by path
// (runtime.json, which names the digest, left out).
Result<std::string> bundle_digest(const fs::path& dir) {
  std::vector<std::string> lines;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (!it->is_regular_file() || it->path() == dir / "runtime.json") continue;
    LS_TRY_ASSIGN(Digest d, sha256_of_file(it->path()));
    struct stat st {};
    if (::stat(it->path().c_str(), &st) != 0) return fail_errno("stat " + it->path().string());
    char mode[8];
    std::snprintf(mode, sizeof mode, "%o", st.st_mode & 07777);
    std::string line = fs::relative(it->path(), dir).string();
    line += '\0';
    line += mode;
    line += '\0';
    line += d.hex();
    lines.push_back(line + "\n");
  }
  if (ec) return fail("walk " + dir.string() + ": " + ec.message());
  std::sort(lines.begin(), lines.end());
  Sha256 h;
  for (const auto& l : lines) h.update(l);
  return h.finish().str();
}

std::string source_key(const fs::path& node, const struct stat& st) {
  std::string k = node.string() + ":" + std::to_string(st.st_dev) + ":" +
                  std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
                  std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
  return sha256_of(k).hex().substr(0, 24);
}

int major_of(const std::string& version) {
  // "v20.20.2" -> 20
  size_t i = version.size() > 1 && version[0] == 'v' ? 1 : 0;
  return std::atoi(version.c_str() + i);
}

}  // namespace

fs::path node_runtime_dir(const fs::path& state_dir, const std::string& digest) {
  return state_dir / "runtimes" / ("node-" + (digest.size() > 31 ? digest.substr(7, 24) : digest));
}

std::optional<NodeRuntime> find_node_runtime(const fs::path& state_dir, const std::string& digest) {
  fs::path dir = node_runtime_dir(state_dir, digest);
  auto text = read_file(dir / "runtime.json");
  if (!text) return std::nullopt;
  auto j = Json::parse(*text, nullptr, false);
  if (!j.is_object() || !j.contains("digest") || !j["digest"].is_string() ||
      j["digest"].get<std::string>() != digest || !j.contains("version") ||
      !j["version"].is_string())
    return std::nullopt;
  NodeRuntime r;
  r.dir = dir;
  r.digest = digest;
  r.version = j["version"].get<std::string>();
  r.major = major_of(r.version);
  return r;
}

Result<NodeRuntime> prepare_node_runtime(const fs::path& state_dir, const fs::path& node_path) {
  std::error_code ec;
  fs::path node = fs::canonical(node_path, ec);
  struct stat st {};
  if (ec || ::stat(node.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
    return fail("JavaScript actions need Node.js on the host: " + node_path.string() +
                    " not found (apt-get install nodejs)",
                ErrorKind::kUnsupported);
  fs::path root = state_dir / "runtimes";
  fs::path index = root / "by-source" / (source_key(node, st) + ".json");
  if (auto text = read_file(index)) {
    auto j = Json::parse(*text, nullptr, false);
    if (j.is_object() && j.contains("digest") && j.contains("version")) {
      NodeRuntime r;
      r.digest = j["digest"].get<std::string>();
      r.version = j["version"].get<std::string>();
      r.major = major_of(r.version);
      r.dir = node_runtime_dir(state_dir, r.digest);
      if (fs::exists(r.dir / "bin" / "node", ec)) return r;
    }
  }

  LS_TRY_ASSIGN(CommandOutput v, run_command({node.string(), "--version"}));
  if (v.exit_code != 0) return fail(node.string() + " --version failed: " + v.err);
  NodeRuntime r;
  r.version = v.out.substr(0, v.out.find_first_of("\r\n"));
  r.major = major_of(r.version);
  LS_TRY_ASSIGN(Libraries libs, list_libraries(node));

  fs::create_directories(root / "by-source", ec);
  if (ec) return fail("create " + root.string() + ": " + ec.message());
  LS_TRY_ASSIGN(TempDir tmp, TempDir::create(root, ".tmp-node-"));
  fs::path b = tmp.path() / "bundle";
  fs::create_directories(b / "bin", ec);
  fs::create_directories(b / "lib", ec);
  if (ec) return fail("create " + b.string() + ": " + ec.message());
  constexpr auto kExec = fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                         fs::perms::others_read | fs::perms::others_exec;
  LS_TRY(copy_regular(node, b / "bin" / "node", kExec));
  for (const auto& [name, path] : libs.libs) LS_TRY(copy_regular(path, b / "lib" / name, kExec));
  std::string loader_name = libs.loader.filename().string();
  LS_TRY(copy_regular(libs.loader, b / "lib" / loader_name, kExec));

  std::string lib_in_job = std::string(kNodeMount) + "/lib";
  auto patched =
      run_command({"patchelf", "--set-interpreter", lib_in_job + "/" + loader_name, "--force-rpath",
                   "--set-rpath", lib_in_job, (b / "bin" / "node").string()});
  if (!patched) {
    if (patched.error().kind() == ErrorKind::kNotFound)
      return fail("JavaScript actions need patchelf on the host (apt-get install patchelf)",
                  ErrorKind::kUnsupported);
    return fail(std::move(patched.error()));
  }
  if (patched->exit_code != 0) return fail("patchelf: " + patched->err);

  LS_TRY_ASSIGN(r.digest, bundle_digest(b));
  r.dir = node_runtime_dir(state_dir, r.digest);
  LS_TRY(write_file_atomic(
      b / "runtime.json",
      Json{{"version", r.version}, {"digest", r.digest}, {"source", node}}.dump(2)));
  // Another lockstep may have built the same bundle meanwhile: either is fine.
  if (::rename(b.c_str(), r.dir.c_str()) != 0 && errno != EEXIST && errno != ENOTEMPTY)
    return fail_errno("publish " + r.dir.string());
  LS_TRY(write_file_atomic(index, Json{{"version", r.version}, {"digest", r.digest}}.dump()));
  return r;
}

}  // namespace lockstep::runner
