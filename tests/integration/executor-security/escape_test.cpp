// Escape attempts from inside a default container (issue 3, "Must show"):
// each test starts a container from a busybox rootfs through the real Linux
// executor, runs the static escape_probe helper in it and asserts that the
// attempt failed. The probe's own controls (confinement_test.cpp) show the
// same attempts succeed where nothing stops them.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/fd.hpp"
#include "common/fs.hpp"
#include "executor/cgroup.hpp"
#include "executor/executor.hpp"

namespace lockstep::executor {
namespace {
namespace fs = std::filesystem;

struct Ran {
  std::string out;
  ProcessResult result;
};

class Escape : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (namespaces, mounts, cgroups)";
    if (!fs::exists("/bin/busybox")) GTEST_SKIP() << "needs /bin/busybox (busybox-static)";
    auto tmp = TempDir::create(fs::temp_directory_path(), "lockstep-escape-");
    ASSERT_TRUE(tmp) << tmp.error().message();
    tmp_ = std::move(*tmp);
    ::chmod(tmp_.path().c_str(), 0755);
    build_rootfs(layer());
    executor_ = make_linux_executor(tmp_.path() / "state");
    static std::atomic<int> n{0};
    id_ = "sec-escape-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
  }

  void TearDown() override {
    container_.reset();
    if (tmp_.path().empty()) return;
    // Nothing of the container may remain: no cgroup, no child process.
    auto roots = CgroupRoots::detect();
    ASSERT_TRUE(roots);
    std::vector<fs::path> hierarchies;
    if (roots->is_v2()) hierarchies.push_back(roots->unified);
    for (const auto& [c, p] : roots->v1) hierarchies.push_back(p);
    for (const fs::path& h : hierarchies) {
      EXPECT_FALSE(fs::exists(h / Cgroup::kParent / id_)) << h;
    }
    EXPECT_EQ(children(), 0) << "a container process outlived its container";
  }

  // Processes whose parent is this test process.
  static int children() {
    int n = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/proc", ec)) {
      auto stat = read_file(e.path() / "stat");
      if (!stat) continue;
      const size_t paren = stat->rfind(')');
      int ppid = 0;
      char state = 0;
      if (paren != std::string::npos &&
          std::sscanf(stat->c_str() + paren + 1, " %c %d", &state, &ppid) == 2 &&
          ppid == ::getpid()) {
        ++n;
      }
    }
    return n;
  }

  fs::path layer() const { return tmp_.path() / "layer"; }

  // busybox with its applets, the probe (setuid root, so that the setuid
  // test has something to gain), passwd and group.
  static void build_rootfs(const fs::path& root) {
    for (const char* d : {"bin", "etc", "tmp", "proc", "dev", "sys", "root", "mnt"}) {
      fs::create_directories(root / d);
    }
    fs::permissions(root / "tmp", fs::perms(01777));
    fs::copy_file("/bin/busybox", root / "bin/busybox");
    for (const char* applet : {"sh", "cat", "ls", "echo", "id", "mount", "umount", "nc"}) {
      fs::create_symlink("busybox", root / "bin" / applet);
    }
    fs::copy_file(ESCAPE_PROBE, root / "bin/escape_probe");
    ASSERT_EQ(::chown((root / "bin/escape_probe").c_str(), 0, 0), 0);
    ASSERT_EQ(::chmod((root / "bin/escape_probe").c_str(), 04755), 0);
    std::ofstream(root / "etc/passwd") << "root:x:0:0:root:/root:/bin/sh\n"
                                          "user:x:1000:1000:user:/tmp:/bin/sh\n";
    std::ofstream(root / "etc/group") << "root:x:0:\nuser:x:1000:\n";
  }

  // Starts the default container (no cap_add, default seccomp, network none).
  void start() {
    ContainerSpec spec;
    spec.id = id_;
    spec.layers = {layer()};
    spec.env = {"PATH=/bin"};
    auto c = executor_->start(spec);
    ASSERT_TRUE(c) << c.error().message();
    container_ = std::move(*c);
  }

  Ran run(std::vector<std::string> argv, const std::string& user = "") {
    Ran r;
    ProcessSpec p;
    p.argv = std::move(argv);
    p.user = user;
    p.timeout = std::chrono::seconds(30);
    auto res = container_->exec(p, [&](Stream s, std::string_view line, auto) {
      if (s == Stream::kStdout) r.out += std::string(line) + "\n";
    });
    EXPECT_TRUE(res) << res.error().message();
    if (res) r.result = *res;
    return r;
  }

  // Runs one attempt and asserts the probe reported a refusal for one of the
  // expected reasons (strerror text). Pinning the reason matters: an attempt
  // refused for an unrelated reason (a typo'd path, a bad argument) proves
  // nothing.
  void expect_refused(std::vector<std::string> args, const std::vector<std::string>& reasons) {
    start();
    if (HasFatalFailure()) return;
    args.insert(args.begin(), "/bin/escape_probe");
    Ran r = run(args);
    EXPECT_TRUE(r.result.ok()) << r.result.reason << "\n" << r.out;
    ASSERT_EQ(r.out.rfind("refused: ", 0), 0u) << r.out;
    bool expected = false;
    for (const std::string& why : reasons)
      expected |= r.out.find(": " + why + "\n") != std::string::npos;
    EXPECT_TRUE(expected) << r.out;
  }

  TempDir tmp_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<Container> container_;
  std::string id_;
};

const std::string kEperm = "Operation not permitted";
const std::string kEacces = "Permission denied";
const std::string kErofs = "Read-only file system";
const std::string kEnoent = "No such file or directory";

TEST_F(Escape, Mount) {
  expect_refused({"mount"}, {kEperm});
}
TEST_F(Escape, UmountRoot) {
  expect_refused({"umount"}, {kEperm});
}
TEST_F(Escape, Unshare) {
  expect_refused({"unshare"}, {kEperm});
}
TEST_F(Escape, SetnsIntoInitNamespaces) {
  expect_refused({"setns"}, {kEperm, kEacces});
}
TEST_F(Escape, PtraceHostPid) {
  // The host pid either does not exist in the container's pid namespace or
  // names one of its own processes; either way ptrace is filtered.
  expect_refused({"ptrace", std::to_string(::getpid())}, {kEperm});
}
TEST_F(Escape, KexecLoad) {
  expect_refused({"kexec_load"}, {kEperm});
}
TEST_F(Escape, Reboot) {
  expect_refused({"reboot"}, {kEperm});
}
TEST_F(Escape, InitModule) {
  expect_refused({"init_module"}, {kEperm});
}
TEST_F(Escape, FinitModule) {
  expect_refused({"finit_module"}, {kEperm});
}
TEST_F(Escape, RawSocket) {
  expect_refused({"raw_socket"}, {kEperm});
}
TEST_F(Escape, WriteProcSys) {
  expect_refused({"proc_sys"}, {kErofs, kEacces});
}
TEST_F(Escape, WriteSys) {
  expect_refused({"sys"}, {kErofs, kEacces});
}
TEST_F(Escape, WriteSysrqTrigger) {
  expect_refused({"sysrq"}, {kErofs, kEacces, kEnoent});
}
TEST_F(Escape, ReadProcKcore) {
  // Masked: absent, unreadable, or /dev/null bound over it (reads as empty).
  expect_refused({"kcore"}, {kEnoent, kEacces, "/proc/kcore reads as empty (0)"});
}
TEST_F(Escape, OpenByHandleAt) {
  expect_refused({"shocker"}, {kEperm});
}
TEST_F(Escape, Keyctl) {
  expect_refused({"keyctl"}, {kEperm});
}
TEST_F(Escape, Bpf) {
  expect_refused({"bpf"}, {kEperm});
}
TEST_F(Escape, CgroupReleaseAgent) {
  // The v1 mount is refused; no release_agent is writable (read-only /sys,
  // or no cgroup hierarchy mounted in the container at all).
  expect_refused({"release_agent"}, {kEperm, kErofs, kEnoent, kEacces});
}

TEST_F(Escape, CgroupV2LimitCannotBeLifted) {
  // No cgroup2 mount inside, none can be made, and nothing of the host's
  // hierarchy is reachable under the read-only /sys.
  expect_refused({"cgroup2_limit"}, {kEperm});
}

TEST_F(Escape, CgroupNamespaceHidesTheHostTree) {
  // The container's own cgroup is its root: "0::/" on v2, "N:<controllers>:/"
  // on v1, for the step's process and for the container's init alike.
  start();
  if (HasFatalFailure()) return;
  Ran r = run({"cat", "/proc/self/cgroup", "/proc/1/cgroup"});
  ASSERT_TRUE(r.result.ok()) << r.result.reason << "\n" << r.out;
  std::istringstream in(r.out);
  int lines = 0;
  for (std::string line; std::getline(in, line); ++lines) {
    EXPECT_TRUE(line.ends_with(":/")) << line;
  }
  EXPECT_GE(lines, 2) << r.out;
  EXPECT_EQ(r.out.find(Cgroup::kParent), std::string::npos) << r.out;
  auto roots = CgroupRoots::detect();
  ASSERT_TRUE(roots);
  if (roots->is_v2()) {
    EXPECT_EQ(r.out, "0::/\n0::/\n");
  }
}

TEST_F(Escape, SetuidRootBinaryGainsNothing) {
  start();
  if (HasFatalFailure()) return;
  Ran r = run({"/bin/escape_probe", "euid"}, "1000");
  EXPECT_EQ(r.out, "euid 1000\n");
  EXPECT_TRUE(r.result.ok()) << r.result.reason;
}

TEST_F(Escape, HostLoopbackPortUnreachableUnderNetworkNone) {
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(listener);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(listener.get(), 4), 0);
  socklen_t len = sizeof a;
  ASSERT_EQ(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
  // The control: the same port is reachable from the host.
  UniqueFd probe(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(::connect(probe.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  expect_refused({"connect", std::to_string(ntohs(a.sin_port))}, {"Connection refused"});
}

TEST_F(Escape, RunnerBinaryNotWritableThroughProcExe) {
  start();
  if (HasFatalFailure()) return;
  Ran r = run({"/bin/escape_probe", "proc_exe"});
  EXPECT_TRUE(r.result.ok()) << r.result.reason << "\n" << r.out;
  // Not even readable: no exe the probe could open is the runner's own binary.
  struct stat self {};
  ASSERT_EQ(::stat("/proc/self/exe", &self), 0);
  const std::string runner = std::to_string(self.st_dev) + ":" + std::to_string(self.st_ino);
  EXPECT_EQ(r.out.find(" " + runner + "\n"), std::string::npos) << r.out;
}

TEST_F(Escape, NoHostProcessVisibleInProc) {
  start();
  if (HasFatalFailure()) return;
  Ran r = run({"/bin/escape_probe", "ps"});
  ASSERT_TRUE(r.result.ok()) << r.result.reason;
  // Only the container's own processes: its init and the probe, numbered
  // from 1 in its own pid namespace.
  std::istringstream in(r.out);
  int count = 0;
  bool saw_probe = false;
  for (std::string line; std::getline(in, line);) {
    ++count;
    saw_probe |= line.find("/bin/escape_probe ps") != std::string::npos;
    int pid = 0;
    ASSERT_EQ(std::sscanf(line.c_str(), "pid %d", &pid), 1) << line;
    EXPECT_LT(pid, 100) << line;
  }
  EXPECT_TRUE(saw_probe) << r.out;
  EXPECT_LE(count, 3) << r.out;
  EXPECT_EQ(r.out.find(std::to_string(::getpid()) + " "), std::string::npos) << r.out;
}

}  // namespace
}  // namespace lockstep::executor
