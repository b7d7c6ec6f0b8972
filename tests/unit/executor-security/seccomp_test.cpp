// seccomp: profile parsing errors, and the compiled default filter loaded in
// a forked child (no root needed: no_new_privs allows an unprivileged load).
// Every probe passes arguments the kernel would reject anyway, so a filter
// that failed to block could not do harm; the probe then reports the
// kernel's own errno instead of EPERM and the test fails.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/sched.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <sstream>
#include <string>

#include "executor/seccomp.hpp"

namespace lockstep::executor {
namespace {

struct Probe {
  const char* name;
  std::function<long()> call;  // the syscall's return value
};

// Every probe, run under `program` in one forked child: name -> errno after
// the call (0 when it succeeded).
std::map<std::string, int> run_probes(const SeccompProgram& program,
                                      const std::vector<Probe>& probes) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return {};
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (set_no_new_privs() != 0 || load_seccomp(program) != 0) ::_exit(100);
    std::string report;
    for (const Probe& p : probes) {
      errno = 0;
      const long rc = p.call();
      report += std::string(p.name) + " " + std::to_string(rc < 0 ? errno : 0) + "\n";
    }
    ::_exit(::write(fds[1], report.data(), report.size()) == static_cast<ssize_t>(report.size())
                ? 0
                : 101);
  }
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) out.append(buf, n);
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "probe child status " << status;
  std::map<std::string, int> result;
  std::istringstream in(out);
  std::string name;
  for (int e; in >> name >> e;) result[name] = e;
  return result;
}

long fork_and_reap() {
  const pid_t p = ::fork();  // glibc: clone(SIGCHLD) without namespace flags
  if (p == 0) ::_exit(0);
  if (p < 0) return -1;
  return ::waitpid(p, nullptr, 0) == p ? 0 : -1;
}

const std::vector<Probe>& escape_probes() {
  static const std::vector<Probe> probes = {
      {"mount",
       [] { return ::syscall(SYS_mount, "none", "/nonexistent-lockstep", "tmpfs", 0, nullptr); }},
      {"umount2", [] { return ::syscall(SYS_umount2, "/nonexistent-lockstep", 0); }},
      {"unshare", [] { return ::syscall(SYS_unshare, 0); }},
      {"setns", [] { return ::syscall(SYS_setns, -1, 0); }},
      {"ptrace", [] { return ::syscall(SYS_ptrace, -1, 0, 0, 0); }},
      {"kexec_load", [] { return ::syscall(SYS_kexec_load, 0, 0, nullptr, 0xffffffffUL); }},
      {"reboot", [] { return ::syscall(SYS_reboot, 0, 0, 0, nullptr); }},
      {"init_module", [] { return ::syscall(SYS_init_module, nullptr, 0, ""); }},
      {"finit_module", [] { return ::syscall(SYS_finit_module, -1, "", 0); }},
      {"delete_module", [] { return ::syscall(SYS_delete_module, "", 0); }},
      {"open_by_handle_at", [] { return ::syscall(SYS_open_by_handle_at, -1, nullptr, 0); }},
      {"name_to_handle_at",
       [] { return ::syscall(SYS_name_to_handle_at, -1, "", nullptr, nullptr, 0); }},
      {"keyctl", [] { return ::syscall(SYS_keyctl, 9999, 0, 0, 0, 0); }},
      {"add_key", [] { return ::syscall(SYS_add_key, nullptr, nullptr, nullptr, 0, 0); }},
      {"request_key", [] { return ::syscall(SYS_request_key, nullptr, nullptr, nullptr, 0); }},
      {"bpf", [] { return ::syscall(SYS_bpf, 9999, nullptr, 0); }},
      {"perf_event_open", [] { return ::syscall(SYS_perf_event_open, nullptr, 0, -1, -1, 0); }},
      {"clone_newns",
       [] { return ::syscall(SYS_clone, CLONE_NEWNS | CLONE_FS | SIGCHLD, 0, 0, 0, 0); }},
      {"clone_newuser",
       [] { return ::syscall(SYS_clone, CLONE_NEWUSER | CLONE_FS | SIGCHLD, 0, 0, 0, 0); }},
      {"personality_exec", [] { return ::syscall(SYS_personality, READ_IMPLIES_EXEC); }},
      {"socket_vsock", [] { return ::syscall(SYS_socket, AF_VSOCK, SOCK_STREAM, 0); }},
      {"sethostname", [] { return ::syscall(SYS_sethostname, nullptr, 100000); }},
      {"settimeofday", [] { return ::syscall(SYS_settimeofday, nullptr, nullptr); }},
      {"acct", [] { return ::syscall(SYS_acct, "/nonexistent-lockstep"); }},
      {"swapon", [] { return ::syscall(SYS_swapon, "/nonexistent-lockstep", 0); }},
      {"iopl", [] { return ::syscall(SYS_iopl, 99); }},
      {"process_vm_readv",
       [] { return ::syscall(SYS_process_vm_readv, 0, nullptr, 0, nullptr, 0, 1); }},
      {"userfaultfd", [] { return ::syscall(SYS_userfaultfd, -1); }},
      {"io_uring_setup", [] { return ::syscall(SYS_io_uring_setup, 0, nullptr); }},
  };
  return probes;
}

const std::vector<Probe>& ordinary_probes() {
  static const std::vector<Probe> probes = {
      {"getpid", [] { return ::syscall(SYS_getpid); }},
      {"open_dev_null",
       [] {
         const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
         return fd < 0 ? -1L : ::close(fd);
       }},
      {"socket_unix",
       [] {
         const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
         return fd < 0 ? -1L : ::close(fd);
       }},
      {"socket_inet",
       [] {
         const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
         return fd < 0 ? -1L : ::close(fd);
       }},
      {"fork", fork_and_reap},
      {"personality_query", [] { return ::syscall(SYS_personality, 0xffffffffUL) < 0 ? -1L : 0L; }},
      {"personality_linux", [] { return ::syscall(SYS_personality, PER_LINUX) < 0 ? -1L : 0L; }},
      {"uname",
       [] {
         utsname u{};
         return static_cast<long>(::uname(&u));
       }},
      {"chroot_missing", [] { return ::syscall(SYS_chroot, "/nonexistent-lockstep"); }},
      {"clone3", [] { return ::syscall(SYS_clone3, nullptr, 0); }},
  };
  return probes;
}

TEST(Seccomp, DefaultRefusesEscapeSyscallsWithEperm) {
  auto prog = compile_seccomp("");
  ASSERT_TRUE(prog) << prog.error().message();
  ASSERT_FALSE(prog->unconfined());
  auto got = run_probes(*prog, escape_probes());
  ASSERT_EQ(got.size(), escape_probes().size());
  for (const Probe& p : escape_probes()) EXPECT_EQ(got[p.name], EPERM) << p.name;
}

TEST(Seccomp, DefaultAllowsOrdinarySyscalls) {
  auto prog = compile_seccomp("");
  ASSERT_TRUE(prog) << prog.error().message();
  auto got = run_probes(*prog, ordinary_probes());
  EXPECT_EQ(got["getpid"], 0);
  EXPECT_EQ(got["open_dev_null"], 0);
  EXPECT_EQ(got["socket_unix"], 0);
  EXPECT_EQ(got["socket_inet"], 0);
  EXPECT_EQ(got["fork"], 0);
  EXPECT_EQ(got["personality_query"], 0);
  EXPECT_EQ(got["personality_linux"], 0);
  EXPECT_EQ(got["uname"], 0);
  // chroot is allowed with CAP_SYS_CHROOT (in the default set): the kernel
  // answers, not the filter.
  EXPECT_EQ(got["chroot_missing"], ENOENT);
  // clone3 fails with ENOSYS so that libc falls back to the filterable clone.
  EXPECT_EQ(got["clone3"], ENOSYS);
}

TEST(Seccomp, CapabilityConditionalRulesFollowTheCapSet) {
  auto caps = resolve_capabilities({"SYS_ADMIN"}, {"SYS_CHROOT"});
  ASSERT_TRUE(caps);
  auto prog = compile_seccomp("", *caps);
  ASSERT_TRUE(prog) << prog.error().message();
  auto got =
      run_probes(*prog, {{"unshare", [] { return ::syscall(SYS_unshare, 0); }},
                         {"setns", [] { return ::syscall(SYS_setns, -1, 0); }},
                         {"chroot", [] { return ::syscall(SYS_chroot, "/nonexistent-lockstep"); }},
                         {"reboot", [] { return ::syscall(SYS_reboot, 0, 0, 0, nullptr); }}});
  EXPECT_EQ(got["unshare"], 0);     // unshare(0) is a no-op once allowed
  EXPECT_EQ(got["setns"], EBADF);   // the kernel's answer
  EXPECT_EQ(got["chroot"], EPERM);  // CAP_SYS_CHROOT dropped: filtered
  EXPECT_EQ(got["reboot"], EPERM);  // no CAP_SYS_BOOT
}

TEST(Seccomp, UnconfinedIsNoFilter) {
  auto prog = compile_seccomp("unconfined");
  ASSERT_TRUE(prog);
  EXPECT_TRUE(prog->unconfined());
  EXPECT_EQ(prog->profile_digest, sha256_of("unconfined"));
  EXPECT_EQ(load_seccomp(*prog), 0);  // no-op, safe even in the test process
}

TEST(Seccomp, DefaultIsDeterministic) {
  auto a = compile_seccomp("");
  auto b = compile_seccomp("");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->profile_digest, b->profile_digest);
  EXPECT_EQ(a->profile_digest, sha256_of(default_seccomp_profile_json()));
  ASSERT_EQ(a->filter.size(), b->filter.size());
  EXPECT_EQ(
      0, std::memcmp(a->filter.data(), b->filter.data(), a->filter.size() * sizeof(sock_filter)));
  EXPECT_LE(a->filter.size(), 4096u);
}

TEST(Seccomp, TheDefaultRoundTripsThroughItsOwnJson) {
  const std::string json = default_seccomp_profile_json();
  auto from_json = compile_seccomp(json);
  auto builtin = compile_seccomp("");
  ASSERT_TRUE(from_json) << from_json.error().message();
  ASSERT_TRUE(builtin);
  ASSERT_EQ(from_json->filter.size(), builtin->filter.size());
  EXPECT_EQ(0, std::memcmp(from_json->filter.data(), builtin->filter.data(),
                           builtin->filter.size() * sizeof(sock_filter)));
}

TEST(Seccomp, JsonProfileWithCustomErrnoAndArgs) {
  const std::string profile = R"({
    "defaultAction": "SCMP_ACT_ALLOW",
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
    "syscalls": [
      {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42},
      {"names": ["dup3"], "action": "SCMP_ACT_ERRNO",
       "args": [{"index": 2, "value": 524288, "op": "SCMP_CMP_EQ"}]},
      {"names": ["getpgrp"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
      {"names": ["no_such_syscall"], "action": "SCMP_ACT_ERRNO"}
    ]})";
  auto prog = compile_seccomp(profile);
  ASSERT_TRUE(prog) << prog.error().message();
  EXPECT_EQ(prog->profile_digest, sha256_of(profile));
  auto got =
      run_probes(*prog, {{"getppid", [] { return ::syscall(SYS_getppid); }},
                         {"dup3_cloexec", [] { return ::syscall(SYS_dup3, 0, 100, O_CLOEXEC); }},
                         {"dup3_plain",
                          [] {
                            const long fd = ::syscall(SYS_dup3, 0, 101, 0);
                            return fd < 0 ? -1L : ::close(101);
                          }},
                         {"getpgrp", [] { return ::syscall(SYS_getpgid, 0) < 0 ? -1L : 0L; }}});
  EXPECT_EQ(got["getppid"], 42);
  EXPECT_EQ(got["dup3_cloexec"], EPERM);
  EXPECT_EQ(got["dup3_plain"], 0);
  EXPECT_EQ(got["getpgrp"], 0);  // rule needs CAP_SYS_ADMIN, not in the default set
}

TEST(Seccomp, WithoutAFilterTheKernelAnswersTheProbesDifferently) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root: unprivileged, the kernel says EPERM itself";
  auto got = run_probes(SeccompProgram{}, escape_probes());
  for (const Probe& p : escape_probes()) EXPECT_NE(got[p.name], EPERM) << p.name;
}

struct BadProfile {
  const char* json;
  const char* message;
};

class SeccompBadProfile : public ::testing::TestWithParam<BadProfile> {};

TEST_P(SeccompBadProfile, ErrorNamesTheProblem) {
  auto prog = compile_seccomp(GetParam().json);
  ASSERT_FALSE(prog) << GetParam().json;
  EXPECT_EQ(prog.error().message(), GetParam().message);
  EXPECT_EQ(prog.error().kind(), ErrorKind::kUsage);
}

INSTANTIATE_TEST_SUITE_P(
    Errors, SeccompBadProfile,
    ::testing::Values(
        BadProfile{"[]", "seccomp profile: must be a JSON object"},
        BadProfile{R"({"syscalls": []})", "seccomp profile: missing defaultAction"},
        BadProfile{R"({"defaultAction": "SCMP_ACT_MAYBE"})",
                   "seccomp profile: defaultAction: unknown action 'SCMP_ACT_MAYBE'"},
        BadProfile{R"({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                       {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
                       {"names": ["write"], "action": "SCMP_ACT_FOO"}]})",
                   "seccomp profile: syscalls[1]: unknown action 'SCMP_ACT_FOO'"},
        BadProfile{R"({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                       {"names": ["read"], "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_XX"}]}]})",
                   "seccomp profile: syscalls[0].args[0]: unknown operator 'SCMP_CMP_XX'"},
        BadProfile{R"({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                       {"names": ["read"], "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]})",
                   "seccomp profile: syscalls[0].args[0]: index 6 out of range 0..5"},
        BadProfile{
            R"({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": "read", "action": "SCMP_ACT_ALLOW"}]})",
            "seccomp profile: syscalls[0].names: must be a list of strings"},
        BadProfile{R"({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"]}]})",
                   "seccomp profile: syscalls[0]: missing action"},
        BadProfile{R"({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_VAX"]})",
                   "seccomp profile: unknown architecture 'SCMP_ARCH_VAX'"}));

TEST(Seccomp, InvalidJsonSaysWhere) {
  auto prog = compile_seccomp("{\"defaultAction\": ");
  ASSERT_FALSE(prog);
  EXPECT_EQ(prog.error().message().rfind("seccomp profile: invalid JSON: ", 0), 0u)
      << prog.error().message();
}

}  // namespace
}  // namespace lockstep::executor
