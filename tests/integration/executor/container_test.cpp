// One container: commands, output, environment, users, exits, reaping,
// timeouts, cancellation, limits, bind mounts, interactive shells.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "executor/interactive.hpp"
#include "harness.hpp"

namespace lockstep::executor::testing {
namespace {
namespace fs = std::filesystem;
using std::chrono::milliseconds;

TEST_F(ExecutorTest, RunsCommandAndCapturesStdout) {
  auto c = start(spec());
  ASSERT_TRUE(c);
  Output o = run(*c, {"echo", "hello", "world"});
  EXPECT_EQ(o.out, std::vector<std::string>{"hello world"});
  EXPECT_TRUE(o.err.empty());
  EXPECT_EQ(o.result.kind, ExitKind::kExited);
  EXPECT_EQ(o.result.reason, "exit code 0");
  EXPECT_TRUE(o.result.ok());
  ASSERT_TRUE(c->stop(milliseconds(100)));
}

TEST_F(ExecutorTest, StderrIsSeparateAndExitCodeKept) {
  auto c = start(spec());
  ASSERT_TRUE(c);
  Output o = sh(*c, "echo out1; echo err1 >&2; echo out2; printf 'no newline' >&2; exit 3");
  EXPECT_EQ(o.out, (std::vector<std::string>{"out1", "out2"}));
  EXPECT_EQ(o.err, (std::vector<std::string>{"err1", "no newline"}));
  EXPECT_EQ(o.result.kind, ExitKind::kExited);
  EXPECT_EQ(o.result.exit_code, 3);
  EXPECT_EQ(o.result.reason, "exit code 3");
}

TEST_F(ExecutorTest, EnvWorkdirHostnameUmask) {
  ContainerSpec s = spec();
  s.env.push_back("FOO=container");
  s.env.push_back("KEEP=1");
  s.workdir = "/tmp";
  s.hostname = "jobhost";
  s.umask = 027;
  auto c = start(s);
  ASSERT_TRUE(c);
  ProcessSpec p;
  p.env = {"FOO=process"};
  Output o = sh(*c, "echo $FOO $KEEP $HOME; pwd; hostname; umask; touch f; stat -c %a f", p);
  EXPECT_EQ(o.out, (std::vector<std::string>{"process 1 /root", "/tmp", "jobhost", "0027", "640"}));
  p.workdir = "/home";
  o = run(*c, {"pwd"}, p);
  EXPECT_EQ(o.out_text(), "/home");
}

TEST_F(ExecutorTest, UsersByNameNumberAndGroups) {
  ContainerSpec s = spec();
  s.user = "user";
  s.supplementary_groups = {3000};
  auto c = start(s);
  ASSERT_TRUE(c);
  Output o = sh(*c, "id -u; id -g; id -G; echo $HOME");
  EXPECT_EQ(o.out, (std::vector<std::string>{"1000", "1000", "1000 2000 3000", "/home/user"}));
  ProcessSpec p;
  p.user = "4242:77";
  o = sh(*c, "id -u; id -g", p);
  EXPECT_EQ(o.out, (std::vector<std::string>{"4242", "77"}));
  p.user = "nobody:builders";
  o = sh(*c, "id -u; id -g", p);
  EXPECT_EQ(o.out, (std::vector<std::string>{"65534", "2000"}));
  p.user = "ghost";
  p.argv = {"true"};
  auto r = c->exec(p, nullptr);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "user 'ghost' not found in the image's /etc/passwd");
}

TEST_F(ExecutorTest, SignalsAndMissingCommands) {
  auto c = start(spec());
  ASSERT_TRUE(c);
  Output o = sh(*c, "kill -TERM $$");
  EXPECT_EQ(o.result.kind, ExitKind::kSignaled);
  EXPECT_EQ(o.result.signal, SIGTERM);
  EXPECT_EQ(o.result.reason, "killed by signal 15 (Terminated)");
  ProcessSpec p;
  p.argv = {"no-such-command"};
  auto r = c->exec(p, nullptr);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "container " + prefix_ + "c: exec no-such-command: No such file or directory");
}

TEST_F(ExecutorTest, StepsStartWithNoSignalBlockedOrIgnored) {
  // As a runner has them: SIGTERM blocked in its threads (lockstep run waits
  // for it in one), SIGPIPE ignored (systemd's default for services).
  sigset_t term, old_mask;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &term, &old_mask), 0);
  struct sigaction ign {
  }, old_pipe{};
  ign.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGPIPE, &ign, &old_pipe), 0);
  auto c = start(spec());
  Output o;
  if (c) {
    o = sh(*c,
           "grep -E '^Sig(Blk|Ign):' /proc/self/status; sleep 30 & kill -TERM $!; wait $!; "
           "echo status $?; yes | head -n 1");
  }
  ::sigaction(SIGPIPE, &old_pipe, nullptr);
  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  ASSERT_TRUE(c);
  EXPECT_TRUE(o.result.ok()) << o.result.reason;
  EXPECT_EQ(o.out_text(), "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\nstatus 143\ny");
}

TEST_F(ExecutorTest, InitReapsOrphanedZombies) {
  auto c = start(spec());
  ASSERT_TRUE(c);
  // The subshells' children are orphaned to pid 1 and exit soon.
  Output o = sh(*c, "(true & ) ; (sleep 0.05 &) ; echo started");
  EXPECT_EQ(o.out_text(), "started");
  // Wait (bounded) until only pid 1 and the probe remain: no zombie is left.
  std::vector<std::string> left;
  for (int i = 0; i < 500; ++i) {
    left = other_processes(*c);
    if (left.empty()) break;
    usleep(10000);
  }
  EXPECT_EQ(left, std::vector<std::string>{});
}

TEST_F(ExecutorTest, TimeoutKillsDoubleForkedDaemon) {
  auto c = start(spec());
  ASSERT_TRUE(c);
  ProcessSpec p;
  p.timeout = milliseconds(1000);
  p.timeout_grace = milliseconds(200);
  // The daemon ignores SIGTERM, starts a new session and closes its output.
  Output o = sh(*c,
                "setsid sh -c 'trap \"\" TERM; exec sleep 1000' </dev/null >/dev/null 2>&1 & "
                "echo forked; exec sleep 1000",
                p);
  EXPECT_EQ(o.result.kind, ExitKind::kTimedOut);
  EXPECT_EQ(o.result.reason, "timed out after 1s");
  EXPECT_EQ(o.out_text(), "forked");
  EXPECT_EQ(other_processes(*c), std::vector<std::string>{});
  p = {};
  p.timeout = milliseconds(1000);
  o = run(*c, {"sleep", "1000"}, p);
  EXPECT_EQ(o.result.reason, "timed out after 1s");
}

TEST_F(ExecutorTest, CancelFromAnotherThread) {
  auto c = start(spec());
  ASSERT_TRUE(c);
  Output o;
  std::thread t([&] { o = sh(*c, "echo running; trap '' TERM; while true; do sleep 1; done"); });
  // Cancel once the loop's `sleep` runs: the echo and the trap came before it.
  auto sleeping = [&] {
    for (const auto& p : other_processes(*c))
      if (p.find(" (sleep) ") != std::string::npos) return true;
    return false;
  };
  for (int i = 0; i < 500 && !sleeping(); ++i) usleep(10000);
  c->cancel(milliseconds(100));
  t.join();
  EXPECT_EQ(o.result.kind, ExitKind::kCancelled);
  EXPECT_EQ(o.result.reason, "cancelled");
  EXPECT_EQ(o.out_text(), "running");
  // The container still takes new steps.
  EXPECT_EQ(run(*c, {"echo", "after"}).out_text(), "after");
}

TEST_F(ExecutorTest, BindMountsReadWriteAndReadOnly) {
  fs::path rw = base() / "rw", ro = base() / "ro";
  fs::create_directories(rw);
  fs::create_directories(ro);
  std::ofstream(ro / "data") << "from host\n";
  ContainerSpec s = spec();
  s.mounts = {{rw, "/workspace", false}, {ro, "/inputs/ro", true}};
  auto c = start(s);
  ASSERT_TRUE(c);
  Output o = sh(*c, "echo written > /workspace/out && cat /inputs/ro/data");
  EXPECT_EQ(o.out_text(), "from host");
  EXPECT_TRUE(o.result.ok());
  std::ifstream in(rw / "out");
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "written");
  o = sh(*c, "echo x > /inputs/ro/new");
  EXPECT_NE(o.result.exit_code, 0);
  ASSERT_EQ(o.err.size(), 1u);
  EXPECT_NE(o.err[0].find("Read-only file system"), std::string::npos) << o.err[0];
  EXPECT_FALSE(fs::exists(ro / "new"));
}

// Appends land in the container's own upper dir: the layer and a host file
// bind-mounted on the same path are untouched; the image's symlinks are
// followed inside the rootfs; a missing file is made with its directories,
// from its seed when it has one.
TEST_F(ExecutorTest, AppendsWriteTheContainersOwnCopy) {
  fs::create_directories(layer() / "etc/pki/certs");
  std::ofstream(layer() / "etc/pki/certs/bundle.pem") << "image\n";
  fs::create_directories(layer() / "etc/ssl");
  fs::create_directory_symlink("/etc/pki/certs", layer() / "etc/ssl/certs");
  fs::create_directory_symlink("/", layer() / "up");
  fs::path host = base() / "host.txt";
  std::ofstream(host) << "host\n";
  ContainerSpec s = spec();
  fs::create_directories(layer() / "etc/pki/tls");
  std::ofstream(layer() / "etc/pki/tls/ca-bundle.crt") << "roots\n";
  s.appends = {{"/etc/ssl/certs/bundle.pem", "added\n", {"/etc/pki/tls/ca-bundle.crt"}},
               {"/etc/other/ca.crt", "run\n", {"/etc/none.pem", "/etc/pki/tls/ca-bundle.crt"}},
               {"/usr/local/share/new/ca.crt", "made\n"},
               {"/mnt/host.txt", "never\n"},
               {"/up/etc/escape.txt", "inside\n"}};
  s.mounts = {{host, "/mnt/host.txt", false}};
  auto c = start(s);
  ASSERT_TRUE(c);
  Output o = sh(*c,
                "cat /etc/pki/certs/bundle.pem /usr/local/share/new/ca.crt /mnt/host.txt "
                "/etc/escape.txt /etc/other/ca.crt");
  // A file that exists is not seeded; a missing one starts as its seed.
  EXPECT_EQ(o.out_text(), "image\nadded\nmade\nhost\ninside\nroots\nrun");
  EXPECT_TRUE(o.result.ok());
  auto layer_text = read_file(layer() / "etc/pki/certs/bundle.pem");
  EXPECT_EQ(layer_text.value_or(""), "image\n");
  EXPECT_EQ(read_file(host).value_or(""), "host\n");
  EXPECT_FALSE(fs::exists("/etc/escape.txt"));
  EXPECT_FALSE(fs::exists(layer() / "usr/local/share/new"));
}

TEST_F(ExecutorTest, BindMountTargetSymlinkCannotEscapeTheRootfs) {
  fs::create_directory_symlink("/etc", layer() / "escape");
  fs::path src = base() / "src";
  fs::create_directories(src);
  ContainerSpec s = spec();
  s.mounts = {{src, "/escape/inner", false}};
  auto c = executor_->start(s);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message(), "start container " + s.id +
                                     ": create mount point /escape/inner: "
                                     "Too many levels of symbolic links");
  EXPECT_FALSE(fs::exists("/etc/inner"));
}

TEST_F(ExecutorTest, RootfsChangesStayInTheUpperDir) {
  auto c = start(spec());
  ASSERT_TRUE(c);
  Output o = sh(*c, "echo changed > /etc/motd && rm /bin/yes && cat /etc/motd");
  EXPECT_EQ(o.out_text(), "changed");
  EXPECT_FALSE(fs::exists(layer() / "etc/motd"));
  EXPECT_TRUE(fs::is_symlink(layer() / "bin/yes"));
}

TEST_F(ExecutorTest, DevProcAndSysAreMinimal) {
  auto c = start(spec());
  ASSERT_TRUE(c);
  Output o = sh(*c, "ls /dev | tr '\\n' ' '");
  EXPECT_EQ(o.out_text(),
            "fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero ");
  o = sh(*c, "head -c 4 /dev/zero | wc -c; echo x > /dev/null && echo ok");
  EXPECT_EQ(o.out, (std::vector<std::string>{"4", "ok"}));
  o = sh(*c, "(touch /sys/x; echo 1 > /proc/sys/kernel/domainname) 2>&1");
  EXPECT_EQ(o.out, (std::vector<std::string>{"touch: /sys/x: Read-only file system",
                                             "sh: can't create /proc/sys/kernel/domainname: "
                                             "Read-only file system"}));
  // Masked: /proc/keys and /proc/timer_list read as /dev/null (/proc/kcore
  // is masked too where the kernel has it), /proc/acpi as an empty dir.
  o = sh(*c, "cat /proc/keys /proc/timer_list | wc -c; ls -A /proc/acpi | wc -l");
  EXPECT_EQ(o.out, (std::vector<std::string>{"0", "0"}));
}

TEST_F(ExecutorTest, HostProcessesAreInvisible) {
  auto c = start(spec());
  ASSERT_TRUE(c);
  // Only init (1) and the probe itself.
  Output o = sh(*c, "cd /proc && exec echo [0-9]*");
  ASSERT_EQ(o.out.size(), 1u);
  EXPECT_TRUE(o.out[0].starts_with("1 ")) << o.out[0];
  EXPECT_EQ(o.out[0].find(' ', 2), std::string::npos) << o.out[0];
}

TEST_F(ExecutorTest, FastWriterLosesNoLine) {
  auto c = start(spec());
  ASSERT_TRUE(c);
  ProcessSpec p;
  p.argv = {"sh", "-c",
            "seq 1 300000 >&2 & yes 0123456789012345678901234567890123456789012345678901234567"
            "890123456789012345678901234567890123456789 | head -n 500000; seq 1 300000; wait"};
  size_t yes_lines = 0, bytes = 0;
  std::vector<long> seq_out, seq_err;
  auto r = c->exec(p, [&](Stream s, std::string_view line, auto) {
    bytes += line.size() + 1;
    if (s == Stream::kStderr) {
      seq_err.push_back(std::stol(std::string(line)));
    } else if (line.size() == 100) {
      ++yes_lines;
    } else {
      seq_out.push_back(std::stol(std::string(line)));
    }
  });
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_TRUE(r->ok()) << r->reason;
  EXPECT_EQ(yes_lines, 500000u);
  EXPECT_GT(bytes, 50u * 1000 * 1000);
  ASSERT_EQ(seq_out.size(), 300000u);
  ASSERT_EQ(seq_err.size(), 300000u);
  for (size_t i = 0; i < 300000; ++i) {
    ASSERT_EQ(seq_out[i], static_cast<long>(i + 1));
    ASSERT_EQ(seq_err[i], static_cast<long>(i + 1));
  }
}

TEST_F(ExecutorTest, MemoryHogIsReportedAsOutOfMemory) {
  ContainerSpec s = spec();
  s.limits.memory_bytes = 32ull << 20;
  auto c = start(s);
  ASSERT_TRUE(c);
  Output o = run(*c, {"dd", "if=/dev/zero", "of=/dev/null", "bs=200M", "count=1"});
  EXPECT_EQ(o.result.kind, ExitKind::kOutOfMemory);
  EXPECT_EQ(o.result.reason, "killed: out of memory (limit 32 MiB)");
  EXPECT_TRUE(c->usage().oom_killed);
}

TEST_F(ExecutorTest, InteractiveShellThroughAPty) {
  auto c = start(spec());
  ASSERT_TRUE(c);
  int in[2], out[2];
  ASSERT_EQ(::pipe2(in, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  std::string script = "tty; echo sum=$((40+2)); exit 7\n";
  ASSERT_EQ(::write(in[1], script.data(), script.size()), static_cast<ssize_t>(script.size()));
  ::close(in[1]);
  ProcessSpec p;
  p.argv = {"sh"};
  auto r = run_interactive(*c, p, in[0], out[1]);
  ::close(in[0]);
  ::close(out[1]);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*r, 7);
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(out[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  ::close(out[0]);
  EXPECT_NE(text.find("sum=42"), std::string::npos) << text;
  EXPECT_NE(text.find("/dev/pts/0"), std::string::npos) << text;
}

}  // namespace
}  // namespace lockstep::executor::testing

namespace lockstep::executor::testing {
namespace {

TEST_F(ExecutorTest, DefaultConfinementCapsNoNewPrivsSeccomp) {
  auto c = start(spec());
  ASSERT_TRUE(c);
  Output o = sh(*c, "grep -E '^(CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status");
  EXPECT_EQ(o.out, (std::vector<std::string>{
                       "CapEff:\t00000000800405fb", "CapBnd:\t00000000800405fb",
                       "CapAmb:\t0000000000000000", "NoNewPrivs:\t1", "Seccomp:\t2"}));
  ProcessSpec p;
  p.user = "user";
  o = sh(*c, "grep -E '^(CapEff|CapPrm):' /proc/self/status", p);
  EXPECT_EQ(o.out,
            (std::vector<std::string>{"CapPrm:\t0000000000000000", "CapEff:\t0000000000000000"}));
  o = sh(*c, "mount -t tmpfs none /mnt || unshare -n true || echo refused");
  EXPECT_EQ(o.out_text(), "refused");
}

TEST_F(ExecutorTest, CapAddAndBadProfilesAreErrors) {
  ContainerSpec s = spec();
  s.cap_add = {"NET_RAW"};
  s.cap_drop = {"CHOWN"};
  auto c = start(s);
  ASSERT_TRUE(c);
  Output o = sh(*c, "grep '^CapEff:' /proc/self/status");
  EXPECT_EQ(o.out_text(), "CapEff:\t00000000800425fa");
  ContainerSpec bad = spec("bad");
  bad.cap_add = {"FOO"};
  auto r = executor_->start(bad);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "container " + bad.id + ": cap_add: unknown capability 'FOO'");
}

}  // namespace
}  // namespace lockstep::executor::testing

namespace lockstep::executor::testing {
namespace {

TEST_F(ExecutorTest, InitBinaryAndHostFdsAreOutOfReach) {
  // A host fd without O_CLOEXEC in the runner must not reach the container.
  int leaky = ::open("/etc/hostname", O_RDONLY);
  ASSERT_GE(leaky, 0);
  auto c = start(spec());
  ASSERT_TRUE(c);
  Output o = sh(*c, "exec ls /proc/self/fd");
  ::close(leaky);
  EXPECT_EQ(o.out, (std::vector<std::string>{"0", "1", "2", "3"}));  // 3: ls's own dir fd
  // pid 1 was exec'd from a memfd of the init program, which made itself not
  // dumpable: nothing inside may open /proc/1/exe (CVE-2019-5736).
  o = sh(*c, "cat /proc/1/exe > /dev/null; echo > /proc/1/exe; ls -l /proc/1/exe; echo done");
  ASSERT_EQ(o.out.size(), 2u);
  EXPECT_EQ(o.out[0].find("->"), std::string::npos) << o.out[0];  // the link target stays hidden
  EXPECT_EQ(o.out[1], "done");
  EXPECT_EQ(o.err.size(), 3u) << ::testing::PrintToString(o.err);
  for (const auto& e : o.err) EXPECT_NE(e.find("Permission denied"), std::string::npos) << e;
}

TEST_F(ExecutorTest, Pid1IsTheSmallInitProgramNotACopyOfTheRunner) {
  auto c = start(spec());
  ASSERT_TRUE(c);
  // Its name, its arguments (the control and report channels), and a resident
  // size a copy of the runner (this test binary: tens of MiB) could not have.
  Output o = sh(*c,
                "cat /proc/1/comm; tr '\\0' ' ' < /proc/1/cmdline; echo;"
                " sed -n 's/^VmRSS:[^0-9]*\\([0-9]*\\) kB/\\1/p' /proc/1/status;"
                " sed -n 's/^Threads:[^0-9]*//p' /proc/1/status");
  ASSERT_EQ(o.out.size(), 4u) << ::testing::PrintToString(o.out) << ::testing::PrintToString(o.err);
  EXPECT_EQ(o.out[0], "lockstep-init");
  EXPECT_EQ(o.out[1].rfind("lockstep-init ", 0), 0u) << o.out[1];
  EXPECT_LT(std::stol(o.out[2]), 4096) << "VmRSS of pid 1 in kB";
  EXPECT_EQ(o.out[3], "1");
}

}  // namespace
}  // namespace lockstep::executor::testing

namespace lockstep::executor::testing {
namespace {

TEST_F(ExecutorTest, RlimitsAreAppliedAndClampedToTheHardLimit) {
  struct rlimit host;
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &host), 0);
  ContainerSpec s = spec();
  // Asking for more than our own hard limit would need CAP_SYS_RESOURCE.
  s.rlimits = {{RLIMIT_NOFILE, 256, RLIM_INFINITY}, {RLIMIT_CORE, 0, 0}};
  auto c = start(s);
  ASSERT_TRUE(c);
  Output o = sh(*c, "ulimit -Sn; ulimit -Hn; ulimit -Sc; ulimit -Hc");
  std::string hard = host.rlim_max == RLIM_INFINITY ? "unlimited" : std::to_string(host.rlim_max);
  EXPECT_EQ(o.out, (std::vector<std::string>{"256", hard, "0", "0"}));
}

}  // namespace
}  // namespace lockstep::executor::testing
