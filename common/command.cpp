#include "common/command.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "common/fd.hpp"

extern char** environ;

namespace lockstep {

Result<CommandOutput> run_command(const std::vector<std::string>& argv,
                                  const std::vector<std::string>& extra_env, int netns_fd,
                                  int userns_fd) {
  if (argv.empty()) return fail("run_command: empty argv", ErrorKind::kUsage);
  int out_pipe[2], err_pipe[2], exec_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return fail_errno("pipe");
  UniqueFd out_r(out_pipe[0]), out_w(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return fail_errno("pipe");
  UniqueFd err_r(err_pipe[0]), err_w(err_pipe[1]);
  // The child reports a failed exec through this pipe (closed on success).
  if (::pipe2(exec_pipe, O_CLOEXEC) != 0) return fail_errno("pipe");
  UniqueFd exec_r(exec_pipe[0]), exec_w(exec_pipe[1]);

  // Everything the child needs is built before fork: it only calls
  // async-signal-safe functions.
  std::vector<std::string> env_store;
  for (char** e = environ; *e; ++e) env_store.emplace_back(*e);
  for (const auto& e : extra_env) {
    if (e.find('=') == std::string::npos) continue;
    std::string key = e.substr(0, e.find('=') + 1);
    std::erase_if(env_store, [&](const std::string& x) { return x.rfind(key, 0) == 0; });
    env_store.push_back(e);
  }
  std::vector<char*> envp, args;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_store = argv;
  for (auto& a : argv_store) args.push_back(a.data());
  args.push_back(nullptr);
  std::vector<std::string> candidates;
  if (argv[0].find('/') != std::string::npos) {
    candidates.push_back(argv[0]);
  } else {
    const char* path = ::getenv("PATH");
    std::string p = path ? path : "/usr/local/bin:/usr/bin:/bin";
    size_t start = 0;
    for (;;) {
      size_t colon = p.find(':', start);
      std::string dir = p.substr(start, colon == std::string::npos ? colon : colon - start);
      candidates.push_back((dir.empty() ? "." : dir) + "/" + argv[0]);
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
  }

  pid_t pid = ::fork();
  if (pid < 0) return fail_errno("fork for " + argv[0]);
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(out_w.get(), 1);
    ::dup2(err_w.get(), 2);
    int err = ENOENT;
    auto die = [&] {
      err = errno;
      ssize_t ignored = ::write(exec_w.get(), &err, sizeof err);
      (void)ignored;
      ::_exit(127);
    };
    if (userns_fd >= 0) {
      // Raw system calls: glibc's set*id would wait for the parent's other
      // threads, which do not exist in this child. setgroups is refused
      // where the mapping is the user's own id alone: the groups stay.
      if (::setns(userns_fd, CLONE_NEWUSER) != 0) die();
      (void)::syscall(SYS_setgroups, 0, nullptr);
      if (::syscall(SYS_setresgid, 0, 0, 0) != 0 || ::syscall(SYS_setresuid, 0, 0, 0) != 0) die();
    }
    if (netns_fd >= 0 && ::setns(netns_fd, CLONE_NEWNET) != 0) die();
    for (auto& c : candidates) {
      ::execve(c.c_str(), args.data(), envp.data());
      if (errno != ENOENT) err = errno;
    }
    ssize_t ignored = ::write(exec_w.get(), &err, sizeof err);
    (void)ignored;
    ::_exit(127);
  }
  out_w.reset();
  err_w.reset();
  exec_w.reset();
  int exec_errno = 0;
  ssize_t got = 0;
  do {
    got = ::read(exec_r.get(), &exec_errno, sizeof exec_errno);
  } while (got < 0 && errno == EINTR);

  CommandOutput r;
  pollfd fds[2] = {{out_r.get(), POLLIN, 0}, {err_r.get(), POLLIN, 0}};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        fds[i].fd = -1;
        --open_fds;
      } else {
        (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
      }
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (got == sizeof exec_errno)
    return fail(Error::from_errno("run " + argv[0], exec_errno).set_kind(ErrorKind::kNotFound));
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

}  // namespace lockstep
