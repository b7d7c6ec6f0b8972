#include "cache/git_util.hpp"

#include <mutex>

namespace lockstep::cache::git {

void ensure_init() {
  static std::once_flag once;
  std::call_once(once, [] { git_libgit2_init(); });
}

Error error(std::string_view what, int code) {
  const git_error* e = git_error_last();
  std::string msg = e && e->message ? e->message : "libgit2 error " + std::to_string(code);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  for (char& c : msg)
    if (c == '\n' || c == '\r') c = ' ';
  ErrorKind kind = code == GIT_ENOTFOUND ? ErrorKind::kNotFound : ErrorKind::kGeneric;
  return Error(std::string(what) + ": " + msg, 0, kind);
}

std::string oid_hex(const git_oid& oid) {
  char buf[GIT_OID_HEXSZ + 1];
  git_oid_tostr(buf, sizeof buf, &oid);
  return buf;
}

Result<Repo> open_repo(const std::string& path) {
  ensure_init();
  git_repository* r = nullptr;
  int rc = git_repository_open_ext(&r, path.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr);
  if (rc != 0) return fail_git("open repository " + path, rc);
  return Repo(r);
}

}  // namespace lockstep::cache::git
