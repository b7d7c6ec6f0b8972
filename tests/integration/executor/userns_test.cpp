// Containers in their own user namespace: root inside is an unprivileged id
// on the host. Also: the network mode a process ran with is in its result.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "common/fs.hpp"
#include "harness.hpp"

namespace lockstep::executor::testing {
namespace {
namespace fs = std::filesystem;
using std::chrono::milliseconds;

constexpr uint32_t kHostBase = 100000;

UserNamespace mapping(bool allow_setgroups = false) {
  UserNamespace u;
  u.uid_map = {{0, kHostBase, 65536}};
  u.gid_map = {{0, kHostBase, 65536}};
  u.allow_setgroups = allow_setgroups;
  return u;
}

// "         0     100000      65536" -> "0 100000 65536"
std::string squeeze(const std::string& s) {
  std::istringstream in(s);
  std::string w, out;
  while (in >> w) out += (out.empty() ? "" : " ") + w;
  return out;
}

struct stat stat_of(const fs::path& p) {
  struct stat sb {};
  EXPECT_EQ(::lstat(p.c_str(), &sb), 0) << p;
  return sb;
}

class UserNamespaceTest : public ExecutorTest {};

TEST_F(UserNamespaceTest, RootInsideIsMappedOutside) {
  ContainerSpec s = spec();
  s.user_namespace = mapping();
  auto c = start(s);
  ASSERT_TRUE(c);
  Output o = run(*c, {"id", "-u"});
  ASSERT_TRUE(o.result.ok()) << o.result.reason;
  EXPECT_EQ(o.out, std::vector<std::string>{"0"});
  o = run(*c, {"cat", "/proc/self/uid_map", "/proc/self/gid_map"});
  ASSERT_EQ(o.out.size(), 2u);
  EXPECT_EQ(squeeze(o.out[0]), "0 100000 65536");
  EXPECT_EQ(squeeze(o.out[1]), "0 100000 65536");
  // The image's files keep their owners as seen inside (idmapped layers),
  // and the container's root may write anywhere in its rootfs.
  o = sh(*c, "stat -c '%u:%g' /bin/busybox /etc/passwd && echo ok > /etc/new && cat /etc/new");
  EXPECT_EQ(o.out, (std::vector<std::string>{"0:0", "0:0", "ok"})) << o.out_text();
  ASSERT_TRUE(c->stop(milliseconds(100)));
}

TEST_F(UserNamespaceTest, ProcessesRunAsTheMappedHostUid) {
  ContainerSpec s = spec();
  s.user_namespace = mapping();
  auto c = start(s);
  ASSERT_TRUE(c);
  // A process's credentials as the host sees them, read from outside
  // through the host's /proc (the container's pid is in a different
  // namespace, so find it by a unique argument).
  Output o = sh(*c, "sleep 7321 >/dev/null 2>&1 &");
  const std::string kSleepCmdline(
      "sleep\0"
      "7321\0",
      11);
  ASSERT_TRUE(o.result.ok());
  std::string uid_line;
  // The background process may not have exec'd yet: look for a while.
  for (int attempt = 0; attempt < 100 && uid_line.empty(); ++attempt) {
    for (const auto& e : fs::directory_iterator("/proc")) {
      auto cmd = read_file(e.path() / "cmdline");
      if (!cmd || *cmd != kSleepCmdline) continue;
      std::ifstream st(e.path() / "status");
      std::string line;
      while (std::getline(st, line))
        if (line.starts_with("Uid:")) uid_line = squeeze(line);
    }
    if (uid_line.empty()) std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_EQ(uid_line, "Uid: 100000 100000 100000 100000");
  ASSERT_TRUE(c->stop(milliseconds(100)));
}

TEST_F(UserNamespaceTest, WorkspaceFilesBelongToTheMappedHostIds) {
  fs::path ws = base() / "ws";
  fs::create_directories(ws);
  ASSERT_EQ(::chown(ws.c_str(), kHostBase, kHostBase), 0);
  fs::permissions(ws, fs::perms(0777));
  ContainerSpec s = spec();
  s.user_namespace = mapping();
  s.mounts.push_back({ws, "/ws", false});
  auto c = start(s);
  ASSERT_TRUE(c);
  Output o = sh(*c, "echo built > /ws/out && stat -c '%u' /ws /ws/out");
  ASSERT_TRUE(o.result.ok()) << o.result.reason;
  EXPECT_EQ(o.out, (std::vector<std::string>{"0", "0"}));
  ProcessSpec as_user;
  as_user.user = "1000:1000";
  o = run(*c, {"touch", "/ws/by-user"}, as_user);
  ASSERT_TRUE(o.result.ok()) << o.result.reason;
  ASSERT_TRUE(c->stop(milliseconds(100)));

  struct stat out = stat_of(ws / "out");
  EXPECT_EQ(out.st_uid, kHostBase);
  EXPECT_EQ(out.st_gid, kHostBase);
  struct stat by_user = stat_of(ws / "by-user");
  EXPECT_EQ(by_user.st_uid, kHostBase + 1000);
  EXPECT_EQ(by_user.st_gid, kHostBase + 1000);
  EXPECT_EQ(read_file(ws / "out").value_or(""), "built\n");
}

// The same writes through a bind mount of a host-root-owned directory:
// they work for a container whose root is the host's root, and fail in a
// user namespace.
TEST_F(UserNamespaceTest, HostRootFilesCannotBeWrittenThroughABindMount) {
  fs::path dir = base() / "host-owned";
  fs::create_directories(dir);
  fs::permissions(dir, fs::perms(0755));
  fs::path secret = dir / "secret";
  std::ofstream(secret) << "original\n";
  fs::permissions(secret, fs::perms(0644));
  ASSERT_EQ(stat_of(dir).st_uid, 0u);
  const std::string attack =
      "echo pwned > /host/secret; a=$?; touch /host/new; b=$?; chmod 666 /host/secret; c=$?; "
      "echo $a $b $c";

  {  // Real root: the attack works (this is what the namespace prevents).
    ContainerSpec s = spec("real");
    s.mounts.push_back({dir, "/host", false});
    auto c = start(s);
    ASSERT_TRUE(c);
    Output o = sh(*c, attack);
    EXPECT_EQ(o.out, std::vector<std::string>{"0 0 0"});
    ASSERT_TRUE(c->stop(milliseconds(100)));
    EXPECT_EQ(read_file(secret).value_or(""), "pwned\n");
    std::ofstream(secret) << "original\n";
    fs::permissions(secret, fs::perms(0644));
    fs::remove(dir / "new");
  }
  ContainerSpec s = spec("userns");
  s.user_namespace = mapping();
  s.mounts.push_back({dir, "/host", false});
  auto c = start(s);
  ASSERT_TRUE(c);
  Output o = sh(*c, "stat -c '%u' /host/secret; " + attack);
  ASSERT_EQ(o.out.size(), 2u) << o.out_text();
  EXPECT_EQ(o.out[0], "65534");  // host root is not mapped: "nobody" inside
  EXPECT_EQ(o.out[1], "1 1 1");
  ASSERT_TRUE(c->stop(milliseconds(100)));
  EXPECT_EQ(read_file(secret).value_or(""), "original\n");
  EXPECT_FALSE(fs::exists(dir / "new"));
  EXPECT_EQ(stat_of(secret).st_mode & 07777, 0644u);
}

// Capabilities inside are the namespace's: even with CAP_MKNOD added, root
// cannot make a device node, which the host's root can.
TEST_F(UserNamespaceTest, AddedCapabilitiesDoNotReachTheHost) {
  const std::string probe = "mknod /tmp/disk b 8 0 2>/dev/null; echo $?";
  {
    ContainerSpec s = spec("real");
    s.cap_add = {"MKNOD"};
    auto c = start(s);
    ASSERT_TRUE(c);
    EXPECT_EQ(sh(*c, probe).out, std::vector<std::string>{"0"});
    ASSERT_TRUE(c->stop(milliseconds(100)));
  }
  ContainerSpec s = spec("userns");
  s.user_namespace = mapping();
  s.cap_add = {"MKNOD"};
  auto c = start(s);
  ASSERT_TRUE(c);
  // CAP_MKNOD is bit 27: present in the effective set, and still refused.
  Output o = sh(*c, "grep CapEff /proc/self/status; " + probe);
  ASSERT_EQ(o.out.size(), 2u) << o.out_text();
  unsigned long long eff =
      std::stoull(o.out[0].substr(o.out[0].find_last_of(" \t") + 1), nullptr, 16);
  EXPECT_TRUE(eff & (1ULL << 27)) << o.out[0];
  EXPECT_NE(o.out[1], "0");
  ASSERT_TRUE(c->stop(milliseconds(100)));
}

TEST_F(UserNamespaceTest, ScratchOnDiskAndInMemoryBothWork) {
  for (bool in_memory : {true, false}) {
    SCOPED_TRACE(in_memory ? "in memory" : "on disk");
    ContainerSpec s = spec(in_memory ? "mem" : "disk");
    s.user_namespace = mapping();
    s.scratch_in_memory = in_memory;
    auto c = start(s);
    ASSERT_TRUE(c);
    // Replacing a directory of the image needs an opaque directory in the
    // upper layer (overlay's user.* xattrs in a user namespace).
    Output o = sh(*c,
                  "rm -r /www && mkdir /www && ls -A /www | wc -l && echo x > /tmp/f && "
                  "stat -c '%u' /tmp/f /www");
    ASSERT_TRUE(o.result.ok()) << o.result.reason << "\n" << o.out_text();
    EXPECT_EQ(o.out, (std::vector<std::string>{"0", "0", "0"}));
    ASSERT_TRUE(c->stop(milliseconds(100)));
  }
}

TEST_F(UserNamespaceTest, SetgroupsDenyAndAllow) {
  ContainerSpec s = spec("deny");
  s.user_namespace = mapping(false);
  auto c = start(s);
  ASSERT_TRUE(c);
  Output o = sh(*c, "cat /proc/self/setgroups; id -G");
  EXPECT_EQ(o.out, (std::vector<std::string>{"deny", "0"}));
  ASSERT_TRUE(c->stop(milliseconds(100)));

  s = spec("allow");
  s.user_namespace = mapping(true);
  c = start(s);
  ASSERT_TRUE(c);
  o = sh(*c, "cat /proc/self/setgroups; id -G");
  // root is listed in the image's group "builders" (2000).
  EXPECT_EQ(o.out, (std::vector<std::string>{"allow", "0 2000"}));
  ASSERT_TRUE(c->stop(milliseconds(100)));
}

TEST_F(UserNamespaceTest, NetworkNoneHasOnlyLoopbackUpAndTheHostname) {
  ContainerSpec s = spec();
  s.user_namespace = mapping();
  s.hostname = "inside";
  auto c = start(s);
  ASSERT_TRUE(c);
  Output o = sh(*c,
                "ls /sys/class/net; cat /sys/class/net/lo/flags; hostname; "
                "httpd -p 127.0.0.1:8080 -h /www && wget -q -O - http://127.0.0.1:8080/index.html");
  EXPECT_EQ(o.out, (std::vector<std::string>{"lo", "0x9", "inside", "hello from the service"}));
  ASSERT_TRUE(c->stop(milliseconds(100)));
}

// A job in its own user namespace joins a service's network (owned by the
// host's user namespace) and reaches the service on loopback.
TEST_F(UserNamespaceTest, JoinsTheNetworkOfAContainerOutsideItsUserNamespace) {
  auto netns_of_this_thread = [] {
    char buf[64] = {};
    return ::readlink("/proc/thread-self/ns/net", buf, sizeof buf - 1) > 0 ? std::string(buf)
                                                                           : std::string();
  };
  const std::string before = netns_of_this_thread();
  ASSERT_FALSE(before.empty());
  ContainerSpec svc = spec("svc");
  auto service = start(svc);
  ASSERT_TRUE(service);
  ASSERT_TRUE(sh(*service, "httpd -p 127.0.0.1:8080 -h /www").result.ok());
  ContainerSpec s = spec("job");
  s.user_namespace = mapping();
  s.network = {NetworkMode::kContainer, prefix_ + "svc"};
  auto c = start(s);
  ASSERT_TRUE(c);
  Output o = sh(*c, "id -u; wget -q -O - http://127.0.0.1:8080/index.html");
  EXPECT_EQ(o.out, (std::vector<std::string>{"0", "hello from the service"})) << o.result.reason;
  EXPECT_EQ(to_string(o.result.network), "container:" + prefix_ + "svc");
  // Both see the same network namespace.
  EXPECT_EQ(sh(*c, "readlink /proc/self/ns/net").out,
            sh(*service, "readlink /proc/self/ns/net").out);
  // The thread that started the job is back in its own network.
  EXPECT_EQ(netns_of_this_thread(), before);
  ASSERT_TRUE(c->stop(milliseconds(100)));
  ASSERT_TRUE(service->stop(milliseconds(100)));
}

TEST_F(UserNamespaceTest, HostNetworkBindsTheHostSysfs) {
  ContainerSpec s = spec();
  s.user_namespace = mapping();
  s.network.mode = NetworkMode::kHost;
  auto c = start(s);
  ASSERT_TRUE(c);
  Output o = sh(*c, "test -e /sys/class/net/lo && echo lo; touch /sys/x 2>/dev/null || echo ro");
  EXPECT_EQ(o.out, (std::vector<std::string>{"lo", "ro"}));
  ASSERT_TRUE(c->stop(milliseconds(100)));
}

TEST_F(UserNamespaceTest, BadMappingsAreRefusedWithAClearError) {
  ContainerSpec s = spec();
  s.user_namespace = UserNamespace{{{1, kHostBase, 10}}, {{0, kHostBase, 10}}, false};
  auto c = executor_->start(s);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().kind(), ErrorKind::kUsage);
  EXPECT_NE(c.error().message().find("uid_map: container id 0 is not mapped"), std::string::npos)
      << c.error().message();
  s.user_namespace = UserNamespace{{{0, kHostBase, 10}}, {}, false};
  c = executor_->start(s);
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("gid_map: empty"), std::string::npos) << c.error().message();
  EXPECT_EQ(count_entries(state() / "containers"), 0u);
}

TEST_F(ExecutorTest, ResultCarriesTheNetworkModeApplied) {
  auto none = start(spec("none"));
  ASSERT_TRUE(none);
  Output o = run(*none, {"true"});
  EXPECT_EQ(o.result.network.mode, NetworkMode::kNone);
  EXPECT_EQ(to_string(o.result.network), "none");

  ContainerSpec h = spec("host");
  h.network.mode = NetworkMode::kHost;
  auto host = start(h);
  ASSERT_TRUE(host);
  o = run(*host, {"true"});
  EXPECT_EQ(to_string(o.result.network), "host");

  ContainerSpec j = spec("join");
  j.network = {NetworkMode::kContainer, prefix_ + "none"};
  auto join = start(j);
  ASSERT_TRUE(join);
  o = run(*join, {"false"});
  EXPECT_EQ(o.result.exit_code, 1);
  EXPECT_EQ(to_string(o.result.network), "container:" + prefix_ + "none");
  ASSERT_TRUE(join->stop(milliseconds(100)));
  ASSERT_TRUE(host->stop(milliseconds(100)));
  ASSERT_TRUE(none->stop(milliseconds(100)));
}

}  // namespace
}  // namespace lockstep::executor::testing
