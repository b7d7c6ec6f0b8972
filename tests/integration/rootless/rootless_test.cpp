// Rootless runs end to end: each test (as root) creates an ordinary user with
// subordinate id ranges, drives the real binary as that user through
// setpriv(1), and removes the user again, pass or fail. The egress tests run
// it inside the network tests' own "internet" (tests/integration/network).
#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/digest.hpp"
#include "common/fs.hpp"
#include "tests/integration/network/world.hpp"
#include "tests/integration/rootless/test_user.hpp"
#include "tests/support/lockstep_process.hpp"

namespace lockstep::testing {
namespace {
namespace fs = std::filesystem;

class Rootless : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!is_root()) GTEST_SKIP() << "needs root to create the test's user";
    ASSERT_TRUE(fs::exists("/usr/bin/newuidmap")) << "install Debian's uidmap";
    ASSERT_TRUE(fs::exists("/usr/bin/setpriv")) << "install Debian's util-linux";
    ASSERT_EQ(::chmod(tmp_.root().c_str(), 0755), 0);
    user_ = std::make_unique<TestUser>(home(), with_ranges());
    ASSERT_TRUE(user_->error().empty()) << user_->error();
    fs::create_directories(home());
    chown_tree(tmp_.root());
  }

  void TearDown() override {
    user_.reset();  // the user first: its state dir is removed with tmp_
  }

  virtual bool with_ranges() const { return true; }

  fs::path home() const { return tmp_.root() / "user"; }
  // The default state dir of the user (no LOCKSTEP_HOME, no XDG_DATA_HOME).
  fs::path state() const { return home() / ".local/share/lockstep"; }

  void chown_tree(const fs::path& p) const { user_->give_tree(p); }

  // lockstep as the test's user, in its home, with its default state dir;
  // `wrapper` goes before the binary (e.g. timeout(1)).
  ProcessOutput as_user(std::vector<std::string> args,
                        std::vector<std::string> wrapper = {}) const {
    std::vector<std::string> argv = {"/usr/bin/setpriv", "--reuid=" + std::to_string(user_->uid()),
                                     "--regid=" + std::to_string(user_->gid()), "--clear-groups",
                                     "--"};
    argv.insert(argv.end(), wrapper.begin(), wrapper.end());
    argv.push_back(LOCKSTEP_BINARY);
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(
        argv, {"HOME=" + home().string(), "LOCKSTEP_HOME=", "XDG_DATA_HOME=", "USER=", "LOGNAME="},
        home());
  }

  // A directory image: busybox and its applets, plus escape_probe.
  void import_image(const std::string& tag, bool probe) {
    fs::path rootfs = tmp_.root() / ("rootfs-" + std::to_string(probe));
    auto r =
        run_process({"/bin/bash", std::string(LOCKSTEP_SOURCE_DIR) + "/scripts/busybox-rootfs.sh",
                     rootfs.string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    if (probe) fs::copy_file(ESCAPE_PROBE, rootfs / "bin/escape_probe");
    ::chmod(rootfs.c_str(), 0755);
    r = as_user({"image", "import", rootfs.string(), "--tag", tag});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }

  fs::path write(const std::string& name, const std::string& text) {
    return user_->write_file(home() / name, text);
  }

  LockstepHome tmp_;
  std::unique_ptr<TestUser> user_;
};

int count(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (size_t p = haystack.find(needle); p != std::string::npos; p = haystack.find(needle, p + 1))
    ++n;
  return n;
}

TEST_F(Rootless, HelloRunsAndItsRecordReplaysInTheUsersStateDir) {
  import_image("localhost/busybox:1.35", false);
  if (HasFatalFailure()) return;
  std::string hello = std::string(LOCKSTEP_SOURCE_DIR) + "/examples/hello/ci.yml";
  for (const char* net : {"none", "host"}) {
    auto r = as_user({"run", hello, "--network", net});
    EXPECT_EQ(r.exit_code, 0) << net << "\n" << r.out << r.err;
    EXPECT_NE(r.out.find("4 of 4 jobs passed"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("[greet (hello, world)] hostname: lockstep, user: 0"), std::string::npos)
        << r.out;
    // This host has no delegated cgroup v2 subtree: one warning line.
    EXPECT_EQ(count(r.err, "limits are not enforced"), 1) << r.err;
  }
  ASSERT_TRUE(fs::exists(state() / "runs")) << "the default state dir of an ordinary user";
  std::vector<std::string> runs;
  for (const auto& e : fs::directory_iterator(state() / "runs"))
    runs.push_back(e.path().filename().string());
  std::sort(runs.begin(), runs.end());
  ASSERT_EQ(runs.size(), 2u);
  // The record says the limits were not enforced, and which mapping ran.
  auto record = read_file(state() / "runs" / runs[0] / "record.json");
  ASSERT_TRUE(record) << record.error().message();
  EXPECT_NE(record->find("user_namespace"), std::string::npos);

  auto r = as_user({"replay", runs[0]});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("4 of 4 environment hashes match the record"), std::string::npos)
      << r.out << r.err;

  // Nothing of the containers is left in the state dir.
  std::error_code ec;
  size_t left = 0;
  for (auto it = fs::directory_iterator(state() / "containers", ec); !ec && it != fs::end(it);
       it.increment(ec))
    if (it->path().filename().string()[0] != '.') ++left;  // .mnt is lockstep's own
  EXPECT_EQ(left, 0u);
}

TEST_F(Rootless, EscapeProbesThatMountUnshareOrLoadBpfAreRefused) {
  import_image("localhost/probe:1", true);
  if (HasFatalFailure()) return;
  auto wf = write("probe.yml", R"(name: probe
on: push
jobs:
  probe:
    runs-on: ubuntu-latest
    container: localhost/probe:1
    steps:
      - run: /bin/escape_probe mount
      - run: /bin/escape_probe umount
      - run: /bin/escape_probe unshare
      - run: /bin/escape_probe setns
      - run: /bin/escape_probe bpf
      - run: /bin/escape_probe keyctl
      - run: /bin/escape_probe proc_exe
      - run: /bin/escape_probe sys
      - run: grep -E '^(NoNewPrivs|Seccomp|CapEff):' /proc/self/status
)");
  auto r = as_user({"run", wf.string(), "--network", "none"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(count(r.out, "] refused: "), 8) << r.out;
  EXPECT_EQ(r.out.find("ESCAPED"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("refused: mount tmpfs: Operation not permitted"), std::string::npos)
      << r.out;
  // As under root: no_new_privs, a seccomp filter, and no CAP_SYS_ADMIN
  // (bit 21) even in the user namespace.
  EXPECT_NE(r.out.find("] NoNewPrivs:\t1\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("] Seccomp:\t2\n"), std::string::npos) << r.out;
  std::smatch cap;
  ASSERT_TRUE(std::regex_search(r.out, cap, std::regex(R"(\] CapEff:\t([0-9a-f]+)\n)"))) << r.out;
  EXPECT_EQ(std::stoull(cap[1].str(), nullptr, 16) & (1ull << 21), 0u) << cap[1];
}

TEST_F(Rootless, LayerOwnersAreMappedIntoTheSubordinateRangeAndDevicesSkipped) {
  fs::path oci = tmp_.root() / "oci";
  auto r = run_process(
      {"/usr/bin/python3",
       std::string(LOCKSTEP_SOURCE_DIR) + "/tests/integration/rootless/make_owners_image.py",
       oci.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  chown_tree(oci);
  r = as_user({"image", "import", oci.string(), "--tag", "localhost/owners:1"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto wf = write("owners.yml", R"(name: owners
on: push
jobs:
  a:
    runs-on: ubuntu-latest
    container: localhost/owners:1
    steps:
      - run: stat -c '%n %u:%g %a' /data/f5 /data/suid /data/far /data/d5 && cat /data/d5/inner
)");
  r = as_user({"run", wf.string(), "--network", "none"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("] /data/f5 5:7 644\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("] /data/suid 1000:1000 4755\n"), std::string::npos) << r.out;
  // Outside the mapping: the user's, root inside.
  EXPECT_NE(r.out.find("] /data/far 0:0 644\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("] /data/d5 5:5 700\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("] in\n"), std::string::npos) << r.out;
  // On disk the files belong to the subordinate ids, and no device node was
  // made.
  bool found = false;
  for (const auto& e : fs::recursive_directory_iterator(state() / "layers")) {
    if (e.path().filename() == "mynull") ADD_FAILURE() << "device node unpacked: " << e.path();
    if (e.path().filename() != "f5") continue;
    struct stat st {};
    ASSERT_EQ(::lstat(e.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, user_->first_subordinate() + 4);
    EXPECT_EQ(st.st_gid, user_->first_subordinate() + 6);
    found = true;
  }
  EXPECT_TRUE(found);
}

TEST_F(Rootless, VerifySaysReproducibleAndNamesWhatItCouldNotVary) {
  import_image("localhost/busybox:1.35", false);
  if (HasFatalFailure()) return;
  auto wf = write("art.yml", R"yml(name: art
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    container:
      image: localhost/busybox:1.35
      options: --network none
    steps:
      - run: echo "built by $(id -u)" && mkdir -p out && echo same > out/result.txt
      - uses: actions/upload-artifact@v4
        with:
          name: result
          path: out/result.txt
)yml");
  auto r = as_user({"verify", wf.string()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("REPRODUCIBLE: "), std::string::npos) << r.out << r.err;
  EXPECT_EQ(r.out.find("NOT REPRODUCIBLE"), std::string::npos) << r.out;
  // The second build ran as another container uid.
  EXPECT_NE(r.out.find("built by 0\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("built by 1001\n"), std::string::npos) << r.out;
  // Directory order is not varied without root (FUSE under /run), and the
  // output says so once.
  EXPECT_EQ(count(r.err, "directory order is not varied") +
                count(r.err, "dir-order is not varied without root"),
            1)
      << r.err;
  EXPECT_EQ(count(r.err, "limits are not enforced"), 1) << r.err;
}

// Processes of `uid`, from /proc.
int processes_of(uid_t uid) {
  int n = 0;
  for (const auto& e : fs::directory_iterator("/proc")) {
    struct stat st {};
    std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") == std::string::npos &&
        ::stat(e.path().c_str(), &st) == 0 && st.st_uid == uid)
      ++n;
  }
  return n;
}

TEST_F(Rootless, ASigkilledRunnerLeavesNothingAfterTheNextRun) {
  import_image("localhost/busybox:1.35", false);
  if (HasFatalFailure()) return;
  // The step leaves files of another container owner in its workspace.
  auto wf = write("sleep.yml", R"(name: sleep
on: push
jobs:
  a:
    runs-on: ubuntu-latest
    container: localhost/busybox:1.35
    steps:
      - run: mkdir d && touch d/f && chown -R 5:5 d && echo started && sleep 600
)");
  auto r =
      as_user({"run", wf.string(), "--network", "none"}, {"/usr/bin/timeout", "-s", "KILL", "5"});
  EXPECT_EQ(r.exit_code, 137) << r.out << r.err;
  ASSERT_NE(r.out.find("started"), std::string::npos) << r.out << r.err;
  // The init saw its runner's end and took the job's processes with it.
  for (int i = 0; i < 100 && processes_of(user_->uid()) > 0; ++i) ::usleep(50000);
  EXPECT_EQ(processes_of(user_->uid()), 0);

  auto one = write("one.yml", R"(name: one
on: push
jobs:
  a:
    runs-on: ubuntu-latest
    container: localhost/busybox:1.35
    steps:
      - run: echo again
)");
  r = as_user({"run", one.string(), "--network", "none"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.err.find("cleaning up after an earlier run"), std::string::npos) << r.err;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(state() / "containers", ec))
    EXPECT_EQ(e.path().filename().string()[0], '.') << "left behind: " << e.path();
  EXPECT_EQ(processes_of(user_->uid()), 0);
}

class RootlessNoRanges : public Rootless {
 protected:
  bool with_ranges() const override { return false; }
};

TEST_F(RootlessNoRanges, OnlyTheUsersOwnIdIsMappedAndTheRunSaysWhatThatLimits) {
  import_image("localhost/busybox:1.35", false);
  if (HasFatalFailure()) return;
  auto wf = write("ids.yml", R"(name: ids
on: push
jobs:
  a:
    runs-on: ubuntu-latest
    container: localhost/busybox:1.35
    steps:
      - run: cat /proc/self/uid_map
)");
  auto r = as_user({"run", wf.string(), "--network", "none"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("has no subordinate ids in /etc/subuid and /etc/subgid: only container id "
                       "0 is mapped"),
            std::string::npos)
      << r.err;
  // One line of map: 0 -> the user's uid, 1 id.
  std::regex one(R"(\] +0 +)" + std::to_string(user_->uid()) + R"( +1\n)");
  EXPECT_TRUE(std::regex_search(r.out, one)) << r.out;
  EXPECT_EQ(count(r.out, "] uid_map"), 0);
}

// The egress network without root: the user's runner in the host namespace
// of a test-made internet (files.test at 198.51.100.10, a private server at
// 10.77.0.10, 169.254.169.254), going out through slirp4netns.
class RootlessEgress : public Rootless {
 protected:
  void SetUp() override {
    Rootless::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_TRUE(fs::exists("/usr/bin/slirp4netns")) << "install Debian's slirp4netns";
    world_ = std::make_unique<World>(tmp_.root() / "world");
    ASSERT_TRUE(world_->ok()) << world_->error();
    // slirp4netns opens /dev/net/tun as the user: Debian's udev makes it
    // 0666, a host without udev leaves it 0600. The runner gets a node of
    // mode 0666 over it in its own mount namespace; the host's stays as is.
    tun_ = tmp_.root() / "tun";
    ASSERT_EQ(::mknod(tun_.c_str(), S_IFCHR | 0666, makedev(10, 200)), 0) << std::strerror(errno);
    ASSERT_EQ(::chmod(tun_.c_str(), 0666), 0);
    fs::path rootfs = tmp_.root() / "net-rootfs";
    auto b = run_process({"/bin/bash",
                          std::string(LOCKSTEP_SOURCE_DIR) + "/tests/support/nettools-rootfs.sh",
                          rootfs.string()});
    ASSERT_EQ(b.exit_code, 0) << b.err;
    ::chmod(rootfs.c_str(), 0755);
    auto r = as_user({"image", "import", rootfs.string(), "--tag", "localhost/net:test"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }
  void TearDown() override {
    if (world_) {
      EXPECT_EQ(processes_of(user_->uid()), 0) << "the user's processes outlived the run";
    }
    world_.reset();
    Rootless::TearDown();
  }

  // lockstep as the test's user in the world's host namespace, with `tun`
  // (default: tun_) as its /dev/net/tun.
  ProcessOutput in_world(std::vector<std::string> args, std::vector<std::string> wrapper = {},
                         fs::path tun = {}) {
    std::vector<std::string> argv = {"/bin/sh",
                                     "-c",
                                     "mount --bind \"$0\" /dev/net/tun && exec \"$@\"",
                                     (tun.empty() ? tun_ : tun).string(),
                                     "/usr/bin/setpriv",
                                     "--reuid=" + std::to_string(user_->uid()),
                                     "--regid=" + std::to_string(user_->gid()),
                                     "--clear-groups",
                                     "--",
                                     "/usr/bin/env",
                                     "HOME=" + home().string(),
                                     "LOCKSTEP_HOME=",
                                     "XDG_DATA_HOME=",
                                     "USER=",
                                     "LOGNAME=",
                                     "/bin/sh",
                                     "-c",
                                     "cd \"$0\" && exec \"$@\"",
                                     home().string()};
    argv.insert(argv.end(), wrapper.begin(), wrapper.end());
    argv.push_back(LOCKSTEP_BINARY);
    argv.insert(argv.end(), args.begin(), args.end());
    return world_->run_in_host(argv);
  }

  nlohmann::json latest_record() {
    std::vector<std::string> runs;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(state() / "runs", ec))
      runs.push_back(e.path().filename().string());
    std::sort(runs.begin(), runs.end());
    if (runs.empty()) return {};
    last_run_ = state() / "runs" / runs.back();
    auto text = read_file(last_run_ / "record.json");
    return text ? nlohmann::json::parse(*text) : nlohmann::json();
  }

  static std::string job(const std::string& steps) {
    return "on: push\njobs:\n  j:\n    runs-on: ubuntu-latest\n    container: "
           "localhost/net:test\n    steps:\n" +
           steps;
  }

  std::unique_ptr<World> world_;
  fs::path tun_;
  fs::path last_run_;
};

TEST_F(RootlessEgress, IsTheDefaultAndRecordsFetchesWithTheirDigests) {
  auto wf =
      write("fetch.yml", job(R"WF(      - run: echo "proxy $(curl -fsS http://files.test/hello.txt)"
      - run: cat /etc/resolv.conf; echo "via $HTTP_PROXY"
      - run: echo "raw $(curl -fsS --noproxy '*' http://files.test/hello.txt)"
      - run: echo "raw6 $(curl -fsS --noproxy '*' -g 'http://[2001:db8:100::10]/hello.txt')"
)WF"));
  auto r = in_world({"run", wf.string()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  for (const char* line :
       {"proxy hello from the test internet", "raw hello from the test internet",
        "raw6 hello from the test internet", "nameserver 127.0.0.53", "via http://127.0.0.53:3128"})
    EXPECT_NE(r.out.find(line), std::string::npos) << line << "\n" << r.out;

  auto job = latest_record()["jobs"][0];
  EXPECT_EQ(job["network"], "egress");
  const auto& eg = job["egress"];
  std::string hello = sha256_of("hello from the test internet\n").str();
  int fetches = 0;
  for (const auto& f : eg["fetches"])
    if (f["kind"] == "http" && f["url"] == "http://files.test/hello.txt") {
      ++fetches;
      EXPECT_EQ(f["status"], 200) << f.dump();
      EXPECT_EQ(f["sha256"], hello) << f.dump();
      // The proxy connects from the host: either of the name's addresses.
      EXPECT_TRUE(f["address"] == kWorldServer4 || f["address"] == kWorldServer6) << f.dump();
    }
  EXPECT_EQ(fetches, 1) << eg.dump(2);
  // The job's own connection, from the connection tracking of its namespace
  // (the last step's: its byte counts come from the table's final dump,
  // which the helper asks for).
  int raw = 0, raw6 = 0;
  for (const auto& c : eg["connections"]) {
    EXPECT_FALSE(c.contains("refused")) << c.dump();
    // IPv6 as root has it: the host has an IPv6 default route.
    if (c["proto"] == "tcp" && c["address"] == kWorldServer6 && c["port"] == 80) ++raw6;
    if (c["proto"] != "tcp" || c["address"] != kWorldServer4 || c["port"] != 80) continue;
    ++raw;
    EXPECT_EQ(c["host"], "files.test");
    EXPECT_GT(c["bytes_in"].get<int64_t>(), 29) << c.dump();
    EXPECT_TRUE(c.contains("ended")) << c.dump();
  }
  EXPECT_EQ(raw, 1) << eg.dump(2);
  EXPECT_EQ(raw6, 1) << eg.dump(2);
  auto show = as_user({"runs", "show", last_run_.filename().string()});
  EXPECT_NE(show.out.find("fetch GET http://files.test/hello.txt  200 " + hello), std::string::npos)
      << show.out;
}

// A Docker action built from its Dockerfile without root: buildah runs as
// root of lockstep's user namespace, in the job's namespace, so RUN fetches
// through the job's proxy and the fetch is in the job's record, as with root.
// Under none the build has no network at all.
TEST_F(RootlessEgress, ADockerfileActionBuildsAndItsFetchIsRecorded) {
  ASSERT_TRUE(fs::exists("/usr/bin/buildah")) << "install Debian's buildah";
  fs::path action = home() / "forge" / "octo" / "fetcher";
  fs::create_directories(action);
  write("forge/octo/fetcher/action.yml",
        "name: fetcher\nruns:\n  using: docker\n  image: Dockerfile\n");
  write("forge/octo/fetcher/Dockerfile",
        "FROM localhost/net:test\n"
        "RUN wget -q -O /fetched http://files.test/hello.txt || echo offline > /fetched\n"
        "ENTRYPOINT [\"/bin/sh\", \"-c\", \"echo built with: $(cat /fetched)\"]\n");
  for (std::vector<std::string> a :
       std::vector<std::vector<std::string>>{{"init", "-q", "-b", "main"},
                                             {"add", "-A"},
                                             {"commit", "-qm", "fetcher"},
                                             {"tag", "v1"}}) {
    a.insert(a.begin(),
             {"/usr/bin/git", "-C", action.string(), "-c", "user.name=t", "-c", "user.email=t@e"});
    auto g = run_process(a);
    ASSERT_EQ(g.exit_code, 0) << g.err;
  }
  chown_tree(home() / "forge");
  auto wf = write("docker.yml", job("      - uses: octo/fetcher@v1\n"));
  auto r = in_world({"run", wf.string(), "--actions-url", (home() / "forge").string()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("built with: hello from the test internet"), std::string::npos) << r.out;
  bool fetched = false;
  auto eg = latest_record()["jobs"][0]["egress"];
  for (const auto& f : eg["fetches"])
    fetched = fetched || (f["kind"] == "http" && f["url"] == "http://files.test/hello.txt");
  EXPECT_TRUE(fetched) << eg.dump(2);

  // The same action under none: the build's RUN reaches nothing (a new
  // image: the network is part of the build's identity).
  r = in_world(
      {"run", wf.string(), "--actions-url", (home() / "forge").string(), "--network", "none"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("built with: offline"), std::string::npos) << r.out;
  // Nothing of the builds is left that the user could not remove.
  auto leftover = run_process({"/usr/bin/find", (state() / "tmp" / "builds").string(), "-mindepth",
                               "1", "-maxdepth", "1", "-name", "build-*"});
  EXPECT_EQ(leftover.out, "") << leftover.out;
}

TEST_F(RootlessEgress, TheHostMetadataAndPrivateRangesAreRefusedAtOnce) {
  // A server on every address of the host namespace, its loopback included.
  UniqueFd server;
  world_->net().in_host([&] {
    server = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int one = 1;
    ::setsockopt(server.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(8081);
    if (::bind(server.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(server.get(), 8) != 0)
      server.reset();
  });
  ASSERT_TRUE(server);
  // 10.213.255.2 is slirp4netns's way to the host's loopback.
  auto wf = write("refuse.yml", job(R"WF(      - run: |
          for u in http://169.254.169.254/ http://10.213.255.2:8081/ http://203.0.113.2:8081/ http://10.77.0.10/; do
            t0=$(date +%s); rc=0; curl -sS --noproxy '*' --max-time 60 "$u" 2>&1 || rc=$?
            echo "rc=$rc took=$(( $(date +%s) - t0 ))"
          done
          echo "proxy: $(curl -sS http://169.254.169.254/latest/meta-data)"
          echo "proxy to the host: $(curl -sS http://203.0.113.2:8081/)"
)WF"));
  auto r = in_world({"run", wf.string()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // curl's 7: could not connect (refused); a timeout would be 28.
  std::regex rc(R"(rc=(\d+) took=(\d+))");
  int n = 0;
  for (auto it = std::sregex_iterator(r.out.begin(), r.out.end(), rc); it != std::sregex_iterator();
       ++it, ++n) {
    EXPECT_EQ((*it)[1], "7") << r.out;
    EXPECT_LE(std::stoi((*it)[2]), 1) << r.out;
  }
  EXPECT_EQ(n, 4) << r.out;
  EXPECT_NE(r.out.find("proxy: lockstep egress: refused 169.254.169.254:80 (169.254.169.254: "
                       "link-local 169.254.0.0/16)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("proxy to the host: lockstep egress: refused 203.0.113.2:8081 "
                       "(203.0.113.2: the host's own address)"),
            std::string::npos)
      << r.out;
  pollfd p{server.get(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0) << "a job reached the host's server";

  auto eg = latest_record()["jobs"][0]["egress"];
  auto log = read_file(last_run_ / "jobs" / "1-j" / "log.txt");
  ASSERT_TRUE(log);
  for (const char* line :
       {"egress: refused tcp connection to 169.254.169.254:80 (link-local 169.254.0.0/16)",
        "egress: refused tcp connection to 10.213.255.2:8081 (lockstep's job network "
        "10.213.0.0/16)",
        "egress: refused tcp connection to 203.0.113.2:8081 (the host's own address)",
        "egress: refused tcp connection to 10.77.0.10:80 (private range 10.0.0.0/8, not in "
        "egress.allow)"})
    EXPECT_NE(log->find(line), std::string::npos) << line << "\n" << *log;
  int refused = 0;
  for (const auto& c : eg["connections"])
    if (c.contains("refused")) ++refused;
  EXPECT_EQ(refused, 4) << eg.dump(2);
  EXPECT_EQ(world_->served("/"), 0);  // nothing reached the private server
}

TEST_F(RootlessEgress, TheAllowListOpensNamesAndPrivateRangesAndClosesTheRest) {
  write(".lockstep.yml", "egress:\n  allow:\n    - files.test:80\n    - 10.77.0.0/16:80\n");
  auto wf = write("allow.yml", job(R"WF(      - run: |
          echo "named $(curl -fsS --noproxy '*' http://files.test/hello.txt)"
          echo "range $(curl -fsS --noproxy '*' http://10.77.0.10/hello.txt)"
          rc=0; curl -sS --noproxy '*' --max-time 60 http://198.51.100.20/hello.txt 2>&1 || rc=$?; echo "other rc=$rc"
          echo "proxy $(curl -sS http://other.test/hello.txt)"
)WF"));
  auto r = in_world({"run", wf.string()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("named hello from the test internet"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("range hello from the test internet"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("other rc=7"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("proxy lockstep egress: refused other.test:80 (198.51.100.20: not in "
                       "egress.allow)"),
            std::string::npos)
      << r.out;
}

TEST_F(RootlessEgress, ServicesAreReachedByNameAndLocalhostOnEgressHostAndNone) {
  fs::path rootfs = tmp_.root() / "web-rootfs";
  ASSERT_EQ(
      run_process({"/bin/bash", std::string(LOCKSTEP_SOURCE_DIR) + "/scripts/busybox-rootfs.sh",
                   rootfs.string()})
          .exit_code,
      0);
  fs::create_directories(rootfs / "www");
  std::ofstream(rootfs / "www" / "index.html") << "served by the service\n";
  fs::path layout = tmp_.root() / "web-layout";
  auto m = run_process({"/usr/bin/python3",
                        std::string(LOCKSTEP_SOURCE_DIR) + "/tests/support/make_oci_image.py",
                        rootfs.string(), layout.string(), "--cmd",
                        R"(["httpd", "-f", "-p", "8080", "-h", "/www"])"});
  ASSERT_EQ(m.exit_code, 0) << m.err;
  chown_tree(layout);
  auto i = as_user({"image", "import", layout.string(), "--tag", "localhost/web:test"});
  ASSERT_EQ(i.exit_code, 0) << i.out << i.err;
  auto wf = write("svc.yml", R"WF(on: push
jobs:
  c:
    runs-on: ubuntu-latest
    container: localhost/net:test
    services:
      web:
        image: localhost/web:test
        options: --health-cmd "wget -q -O /dev/null http://127.0.0.1:8080/" --health-interval 200ms --health-retries 20
    steps:
      - run: |
          echo "localhost: $(curl -fsS http://localhost:8080/)"
          echo "by name: $(curl -fsS http://web:8080/)"
)WF");
  // (none: the service joins the job container's own namespace, through the
  // descriptor its init sent the runner.)
  for (const char* mode : {"egress", "host", "none"}) {
    auto r = in_world({"run", wf.string(), "--network", mode});
    ASSERT_EQ(r.exit_code, 0) << mode << "\n" << r.out << r.err;
    EXPECT_NE(r.out.find("localhost: served by the service"), std::string::npos) << mode << "\n"
                                                                                 << r.out;
    EXPECT_NE(r.out.find("by name: served by the service"), std::string::npos) << mode << "\n"
                                                                               << r.out;
    EXPECT_EQ(latest_record()["jobs"][0]["network"], mode);
  }
}

TEST_F(RootlessEgress, AReplayServesTheRecordedBytesWithTheServerDown) {
  auto wf =
      write("pin.yml",
            job(R"WF(      - run: curl -fsS http://files.test/hello.txt > got.txt && cat got.txt
)WF"));
  auto r = in_world({"run", wf.string()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  latest_record();
  std::string recorded = last_run_.filename().string();
  world_->stop_nginx();
  auto replay = in_world({"replay", recorded});
  EXPECT_EQ(replay.exit_code, 0) << replay.out << replay.err;
  EXPECT_NE(replay.out.find("] hello from the test internet"), std::string::npos) << replay.out;
  EXPECT_NE(replay.out.find("1 of 1 environment hashes match the record"), std::string::npos)
      << replay.out << replay.err;
  auto f = latest_record()["jobs"][0]["egress"]["fetches"][0];
  EXPECT_EQ(f["served"], "store") << f.dump();
  EXPECT_EQ(f["sha256"], sha256_of("hello from the test internet\n").str());
}

TEST_F(RootlessEgress, ATunDeviceTheUserCannotOpenIsOneLineSayingWhatToDo) {
  fs::path closed = tmp_.root() / "tun-0600";
  ASSERT_EQ(::mknod(closed.c_str(), S_IFCHR | 0600, makedev(10, 200)), 0) << std::strerror(errno);
  auto r = in_world({"run", write("one.yml", job("      - run: echo hi\n")).string()}, {}, closed);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("lockstep: error: job j: network egress without root needs /dev/net/tun "
                       "readable and writable by the user, for slirp4netns (mode 0600); as root "
                       "run 'chmod 0666 /dev/net/tun' (what Debian's udev sets), or run with "
                       "--network none or --network host\n"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.out.find("] hi"), std::string::npos) << r.out;
}

TEST_F(RootlessEgress, ASigkilledRunnerLeavesNoHelperOrSlirp4netns) {
  auto wf = write("slow.yml", job("      - run: echo started; sleep 600\n"));
  auto r = in_world({"run", wf.string()}, {"/usr/bin/timeout", "-s", "KILL", "15"});
  EXPECT_EQ(r.exit_code, 137) << r.out << r.err;
  ASSERT_NE(r.out.find("started"), std::string::npos) << r.out << r.err;
  // The helper and slirp4netns saw the runner's end close, the job's init
  // its control pipe.
  for (int i = 0; i < 100 && processes_of(user_->uid()) > 0; ++i) ::usleep(50000);
  EXPECT_EQ(processes_of(user_->uid()), 0);
  r = in_world({"run", write("next.yml", job("      - run: echo next\n")).string()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.err.find("cleaning up after an earlier run"), std::string::npos) << r.err;
  // TearDown: no process of the user is left.
}

}  // namespace
}  // namespace lockstep::testing
