#include "runner/engine/hash_files.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <fstream>
#include <memory>

#include "cache/depcache_paths.hpp"

namespace lockstep::runner {
namespace fs = std::filesystem;

namespace {

using MdCtx = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

Result<std::string> file_digest(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return fail("hashFiles(): cannot read " + file.string());
  MdCtx ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0)
    EVP_DigestUpdate(ctx.get(), buf, static_cast<size_t>(in.gcount()));
  if (in.bad()) return fail("hashFiles(): read error in " + file.string());
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &len);
  return std::string(reinterpret_cast<char*>(md), len);
}

}  // namespace

Result<std::string> hash_workspace_files(const fs::path& workspace,
                                         const std::vector<std::string>& patterns) {
  const fs::path root = workspace.lexically_normal();
  LS_TRY_ASSIGN(std::vector<cache::PathPattern> resolved,
                cache::resolve_patterns(patterns, {root, {}}, false, "hashFiles() pattern"));
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& p : cache::expand_patterns(resolved)) {
    // A directory matches every file below it (symlinks followed, as the
    // runner's glob does for files).
    if (fs::is_directory(fs::symlink_status(p, ec))) {
      for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::end(it);
           it.increment(ec))
        if (it->is_regular_file(ec) && !cache::excluded(resolved, it->path()))
          files.push_back(it->path());
      continue;
    }
    if (fs::is_regular_file(p, ec)) files.push_back(p);
  }
  // The runner's glob walks its search paths (each pattern's literal
  // prefix, in pattern order, those below another left out) depth first,
  // names sorted: path order within a search path.
  std::vector<fs::path> roots;
  for (const auto& p : resolved) {
    if (p.exclude) continue;
    fs::path r = p.has_glob ? p.base : p.abs;
    bool covered = false;
    for (const auto& other : resolved)
      if (!other.exclude) {
        fs::path o = other.has_glob ? other.base : other.abs;
        covered = covered || (o != r && cache::is_within(r, o));
      }
    if (!covered && std::find(roots.begin(), roots.end(), r) == roots.end()) roots.push_back(r);
  }
  auto root_of = [&](const fs::path& f) {
    for (size_t i = 0; i < roots.size(); ++i)
      if (cache::is_within(f, roots[i])) return i;
    return roots.size();
  };
  std::sort(files.begin(), files.end(), [&](const fs::path& a, const fs::path& b) {
    size_t ra = root_of(a), rb = root_of(b);
    return ra != rb ? ra < rb : a < b;
  });
  files.erase(std::unique(files.begin(), files.end()), files.end());
  MdCtx all(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  EVP_DigestInit_ex(all.get(), EVP_sha256(), nullptr);
  size_t hashed = 0;
  for (const auto& f : files) {
    if (!cache::is_within(f, root) || f == root) continue;  // not under the workspace
    LS_TRY_ASSIGN(std::string d, file_digest(f));
    EVP_DigestUpdate(all.get(), d.data(), d.size());
    ++hashed;
  }
  if (hashed == 0) return std::string();
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(all.get(), md, &len);
  static const char* hexd = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) {
    hex += hexd[md[i] >> 4];
    hex += hexd[md[i] & 15];
  }
  return hex;
}

}  // namespace lockstep::runner
