// Applying a capability set in a forked child, checked through what the
// kernel reports in /proc/self/status and through operations it refuses.
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <sstream>
#include <string>

#include "common/fs.hpp"
#include "executor/capabilities.hpp"

namespace lockstep::executor {
namespace {

// Runs body in a forked child whose stdout is captured; returns the output
// and the wait status.
struct Ran {
  std::string out;
  int status = 0;
};
template <class Body>
Ran run_child(Body body) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return {"pipe failed", -1};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::_exit(body());
  }
  ::close(fds[1]);
  Ran r;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) r.out.append(buf, n);
  ::close(fds[0]);
  ::waitpid(pid, &r.status, 0);
  return r;
}

// "CapBnd" -> mask, from /proc/<self>/status text.
std::map<std::string, uint64_t> cap_lines(const std::string& status) {
  std::map<std::string, uint64_t> out;
  std::istringstream in(status);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Cap", 0) == 0 || line.rfind("NoNewPrivs", 0) == 0) {
      const size_t colon = line.find(':');
      out[line.substr(0, colon)] =
          std::stoull(line.substr(colon + 1), nullptr, line.rfind("Cap", 0) == 0 ? 16 : 10);
    }
  }
  return out;
}

int print_status() {
  auto text = read_file("/proc/self/status");
  if (!text) return 2;
  return ::write(1, text->data(), text->size()) == static_cast<ssize_t>(text->size()) ? 0 : 3;
}

class Caps : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root (capabilities to drop)";
  }
};

TEST_F(Caps, DefaultSetLeavesExactlyPodmansMasks) {
  Ran r = run_child([] {
    if (int e = apply_capabilities(default_capabilities(), false)) return 100 + e;
    return print_status();
  });
  ASSERT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0) << r.status;
  auto caps = cap_lines(r.out);
  EXPECT_EQ(caps["CapBnd"], 0x800405fbu);
  EXPECT_EQ(caps["CapEff"], 0x800405fbu);
  EXPECT_EQ(caps["CapPrm"], 0x800405fbu);
  EXPECT_EQ(caps["CapInh"], 0u);
  EXPECT_EQ(caps["CapAmb"], 0u);
}

TEST_F(Caps, RawSocketIsRefusedWithoutNetRaw) {
  Ran r = run_child([] {
    if (apply_capabilities(default_capabilities(), false) != 0) return 100;
    const int fd = ::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
    return fd < 0 ? errno : 0;
  });
  ASSERT_TRUE(WIFEXITED(r.status));
  EXPECT_EQ(WEXITSTATUS(r.status), EPERM);
}

TEST_F(Caps, CapAddNetRawAllowsARawSocket) {
  auto set = resolve_capabilities({"NET_RAW"}, {});
  ASSERT_TRUE(set);
  Ran r = run_child([&] {
    if (apply_capabilities(*set, false) != 0) return 100;
    const int fd = ::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
    return fd < 0 ? errno : 0;
  });
  ASSERT_TRUE(WIFEXITED(r.status));
  EXPECT_EQ(WEXITSTATUS(r.status), 0);
}

TEST_F(Caps, UidChangeKeepsBoundingAndEndsEmptyAfterExec) {
  Ran r = run_child([] {
    if (apply_capabilities(default_capabilities(), true) != 0) return 100;
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) return 101;
    if (set_no_new_privs() != 0) return 102;
    ::execl("/bin/cat", "cat", "/proc/self/status", static_cast<char*>(nullptr));
    return 103;
  });
  ASSERT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0) << r.status;
  auto caps = cap_lines(r.out);
  EXPECT_EQ(caps["CapBnd"], 0x800405fbu);
  EXPECT_EQ(caps["CapEff"], 0u);
  EXPECT_EQ(caps["CapPrm"], 0u);
  EXPECT_EQ(caps["NoNewPrivs"], 1u);
}

TEST_F(Caps, RootKeepsExactlyTheSetAcrossExec) {
  auto set = resolve_capabilities({}, {"ALL"});
  ASSERT_TRUE(set);
  set->add(CAP_KILL);
  Ran r = run_child([&] {
    if (apply_capabilities(*set, false) != 0) return 100;
    ::execl("/bin/cat", "cat", "/proc/self/status", static_cast<char*>(nullptr));
    return 103;
  });
  ASSERT_TRUE(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0) << r.status;
  auto caps = cap_lines(r.out);
  EXPECT_EQ(caps["CapBnd"], uint64_t{1} << CAP_KILL);
  EXPECT_EQ(caps["CapEff"], uint64_t{1} << CAP_KILL);
  EXPECT_EQ(caps["CapInh"], 0u);
}

}  // namespace
}  // namespace lockstep::executor
