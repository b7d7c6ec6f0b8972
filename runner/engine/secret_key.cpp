#include "runner/engine/secret_key.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <random>

#include "common/fs.hpp"

namespace lockstep::runner {
namespace fs = std::filesystem;

Result<std::string> secret_hash_key(const fs::path& state_dir) {
  if (const char* k = std::getenv("LOCKSTEP_SECRET_HASH_KEY"); k && *k) return std::string(k);
  fs::path file = state_dir / "secret-hash.key";
  if (auto existing = read_file(file); existing && !existing->empty()) return *existing;
  std::random_device rd;
  std::string key;
  static const char* hexd = "0123456789abcdef";
  for (int i = 0; i < 64; ++i) key += hexd[rd() & 15];
  // Written whole to a private name, then linked into place: a second
  // process either wins the link or reads the complete winner.
  fs::path tmp = state_dir / ("secret-hash.key." + std::to_string(::getpid()));
  LS_TRY(write_file(tmp, key, 0600));
  int rc = ::link(tmp.c_str(), file.c_str());
  int err = errno;
  ::unlink(tmp.c_str());
  if (rc != 0) {
    if (err == EEXIST) return read_file(file);
    return fail(Error::from_errno("create " + file.string(), err));
  }
  return key;
}

}  // namespace lockstep::runner
