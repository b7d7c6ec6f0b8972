// The child-side security layer as the container core applies it (Podman's
// capability set, no_new_privs, the default seccomp filter, in that order),
// without namespaces: escape attempts that these alone must stop, ordinary
// programs that must keep working, and a setuid-root binary that must gain
// nothing.
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "common/digest.hpp"
#include "common/fs.hpp"
#include "executor/capabilities.hpp"
#include "executor/seccomp.hpp"

namespace lockstep::executor {
namespace {
namespace fs = std::filesystem;

struct Ran {
  std::string out;
  int status = -1;
  int exit_code() const { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }
};

struct Confine {
  bool apply = true;
  uid_t uid = 0;  // non-zero: change to this uid/gid after the capabilities
  bool no_new_privs = true;
};

// Forks, confines the child as the executor does and execs argv; returns its
// stdout and wait status.
Ran run_confined(const std::vector<std::string>& argv, Confine how = {}) {
  auto caps = default_capabilities();
  auto prog = compile_seccomp("", caps);
  if (!prog) return {"compile: " + prog.error().message()};
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return {"pipe"};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    if (how.apply && apply_capabilities(caps, how.uid != 0) != 0) ::_exit(120);
    if (how.uid != 0) {
      const gid_t g = how.uid;
      if (::setgroups(0, nullptr) != 0 || ::setgid(g) != 0 || ::setuid(how.uid) != 0) ::_exit(121);
    }
    if (how.no_new_privs && set_no_new_privs() != 0) ::_exit(122);
    if (how.apply && load_seccomp(*prog) != 0) ::_exit(123);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  Ran r;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) r.out.append(buf, n);
  ::close(fds[0]);
  ::waitpid(pid, &r.status, 0);
  return r;
}

class Confinement : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (capabilities to drop, setuid files)";
  }
};

TEST_P(Confinement, EscapeAttemptIsRefused) {
  std::vector<std::string> argv = {ESCAPE_PROBE, GetParam()};
  if (std::string(GetParam()) == "ptrace") argv.push_back(std::to_string(::getpid()));
  Ran r = run_confined(argv);
  EXPECT_EQ(r.exit_code(), 0) << r.out;
  EXPECT_EQ(r.out.rfind("refused: ", 0), 0u) << r.out;
}

// Attempts that capabilities and seccomp stop on their own; the rest (/proc,
// /sys, host processes, the network) need the container's namespaces and
// mounts and are tested in escape_test.cpp.
INSTANTIATE_TEST_SUITE_P(CapsAndSeccomp, Confinement,
                         ::testing::Values("mount", "umount", "unshare", "ptrace", "kexec_load",
                                           "reboot", "init_module", "finit_module", "raw_socket",
                                           "shocker", "keyctl", "bpf"));

TEST(ConfinementProbe, TheProbeReportsEscapesWhenUnconfined) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  // Without the layer the same probes succeed: the tests above can fail.
  for (const char* attempt : {"unshare", "raw_socket", "keyctl"}) {
    Ran r =
        run_confined({ESCAPE_PROBE, attempt}, {.apply = false, .uid = 0, .no_new_privs = false});
    EXPECT_EQ(r.exit_code(), 1) << attempt << ": " << r.out;
  }
}

TEST(ConfinementPrograms, OrdinaryShellWorkRunsUnderTheFilter) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root";
  auto dir = TempDir::create(fs::temp_directory_path(), "lockstep-confine-");
  ASSERT_TRUE(dir);
  const std::string script =
      "set -e; cd " + dir->path().string() +
      "; mkdir -p a/b; echo hello > a/b/f; cat a/b/f | tr a-z A-Z > g; ls -l a >/dev/null;"
      "(sleep 0 &) ; wait; ln -s g h; chmod 600 g; test \"$(cat h)\" = HELLO;"
      "busybox sha256sum g >/dev/null; echo done";
  Ran r = run_confined({"/bin/busybox", "sh", "-c", script});
  EXPECT_EQ(r.exit_code(), 0) << r.out;
  EXPECT_EQ(r.out, "done\n");
}

TEST(ConfinementPrograms, PodmansOwnDockerFormatProfileCompilesAndConfines) {
  // A real-world profile in Docker's format, shipped by Debian's
  // containers-common (pulled in by skopeo): archMap, defaultErrnoRet,
  // includes/excludes by caps and arches, minKernel, errnoRet.
  const fs::path path = "/usr/share/containers/seccomp.json";
  if (!fs::exists(path)) GTEST_SKIP() << "needs " << path << " (golang-github-containers-common)";
  auto text = read_file(path);
  ASSERT_TRUE(text);
  auto prog = compile_seccomp(*text, default_capabilities());
  ASSERT_TRUE(prog) << prog.error().message();
  EXPECT_EQ(prog->profile_digest, sha256_of(*text));
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (set_no_new_privs() != 0 || load_seccomp(*prog) != 0) ::_exit(120);
    // Each probe's arguments are invalid, so the kernel itself would answer
    // EINVAL/EFAULT: only the filter answers EPERM or ENOSYS.
    auto err = [](long rc) { return rc < 0 ? errno : 0; };
    const int kexec = err(::syscall(SYS_kexec_load, 0, 0, nullptr, 0xffffffffUL));  // errno rule
    const int bpf = err(::syscall(SYS_bpf, 9999, nullptr, 0));  // excludes CAP_SYS_ADMIN
    const int add_key = err(::syscall(SYS_add_key, nullptr, nullptr, nullptr, 0, 0));  // default
    const bool getpid_ok = ::syscall(SYS_getpid) > 0;
    ::_exit(kexec == EPERM && bpf == EPERM && add_key == ENOSYS && getpid_ok ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

class SetuidBinary : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to make a setuid-root file";
    auto dir = TempDir::create(fs::temp_directory_path(), "lockstep-suid-");
    ASSERT_TRUE(dir);
    dir_ = std::move(*dir);
    ::chmod(dir_.path().c_str(), 0755);
    probe_ = dir_.path() / "probe";
    fs::copy_file(ESCAPE_PROBE, probe_);
    ASSERT_EQ(::chown(probe_.c_str(), 0, 0), 0);
    ASSERT_EQ(::chmod(probe_.c_str(), 04755), 0);
  }
  TempDir dir_;
  fs::path probe_;
};

TEST_F(SetuidBinary, GainsNothingUnderNoNewPrivs) {
  Ran r =
      run_confined({probe_.string(), "euid"}, {.apply = true, .uid = 65534, .no_new_privs = true});
  EXPECT_EQ(r.out, "euid 65534\n");
  EXPECT_EQ(r.exit_code(), 0);
}

TEST_F(SetuidBinary, WouldGainRootWithoutTheLayer) {
  // The control: the same file run by the same uid without no_new_privs is
  // effectively root, so the test above pins a real protection (unless the
  // temp dir is on a nosuid mount, which would make both meaningless).
  Ran r = run_confined({probe_.string(), "euid"},
                       {.apply = false, .uid = 65534, .no_new_privs = false});
  EXPECT_EQ(r.out, "euid 0\n");
}

}  // namespace
}  // namespace lockstep::executor
