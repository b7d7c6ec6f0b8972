// The cgroup v2 path against a fake tree of plain files (the development
// machines have v1 limits only), hierarchy detection from mountinfo text, and
// the byte formatting of OOM messages.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/fs.hpp"
#include "executor/cgroup.hpp"

namespace lockstep::executor {
namespace {
namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  auto text = read_file(p);
  return text ? *text : "<missing " + p.string() + ">";
}

void put(const fs::path& p, const std::string& text) {
  std::ofstream(p) << text;
}

class FakeV2 : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::create(fs::temp_directory_path(), "lockstep-cg2-");
    ASSERT_TRUE(dir) << dir.error().message();
    tmp_ = std::move(*dir);
    root_ = tmp_.path() / "cgroup";
    fs::create_directory(root_);
    put(root_ / "cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n");
    roots_.unified = root_;
    roots_.fake_files = true;
  }
  TempDir tmp_;
  fs::path root_;
  CgroupRoots roots_;
};

TEST_F(FakeV2, CreateWritesLimitsInUnifiedFiles) {
  Limits limits;
  limits.memory_bytes = 256 * 1024 * 1024;
  limits.pids = 64;
  limits.cpus = 0.5;
  limits.cpuset = "0-1";
  auto cg = Cgroup::create(roots_, "job1", limits);
  ASSERT_TRUE(cg) << cg.error().message();
  const fs::path dir = root_ / "lockstep" / "job1";
  EXPECT_EQ(cg->dirs(), std::vector<fs::path>{dir});
  EXPECT_EQ(slurp(dir / "memory.max"), "268435456");
  EXPECT_EQ(slurp(dir / "pids.max"), "64");
  EXPECT_EQ(slurp(dir / "cpu.max"), "50000 100000");
  EXPECT_EQ(slurp(dir / "cpuset.cpus"), "0-1");
  // Each controller is enabled for the children of the root and of lockstep/;
  // the fake file keeps the last write.
  EXPECT_EQ(slurp(root_ / "cgroup.subtree_control"), "+cpuset");
  EXPECT_EQ(slurp(root_ / "lockstep" / "cgroup.subtree_control"), "+cpuset");
  EXPECT_GE(cg->v2_dir_fd(), 0);
  ASSERT_TRUE(cg->remove()) << "remove";
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_FALSE(cg->valid());
}

TEST_F(FakeV2, UnsetLimitsWriteNoFiles) {
  // memory.swap.max is written only where the kernel offers it (absent in
  // this fake); limits left unset write nothing.
  auto cg = Cgroup::create(roots_, "job2", Limits{});
  ASSERT_TRUE(cg) << cg.error().message();
  EXPECT_FALSE(fs::exists(root_ / "lockstep" / "job2" / "memory.swap.max"));
  EXPECT_FALSE(fs::exists(root_ / "lockstep" / "job2" / "memory.max"));
}

TEST_F(FakeV2, ControllersTheRootLacksAreSkippedUnlessALimitNeedsThem) {
  put(root_ / "cgroup.controllers", "memory pids\n");  // no cpu, no cpuset
  auto plain = Cgroup::create(roots_, "nocpu", Limits{});
  ASSERT_TRUE(plain) << plain.error().message();
  EXPECT_EQ(slurp(root_ / "cgroup.subtree_control"), "+pids");
  Limits limits;
  limits.cpus = 1.5;
  auto cg = Cgroup::create(roots_, "wantscpu", limits);
  ASSERT_FALSE(cg);
  EXPECT_EQ(cg.error().message(), "cgroup v2 controller cpu is not available in " +
                                      (root_ / "cgroup.controllers").string());
  EXPECT_FALSE(fs::exists(root_ / "lockstep" / "wantscpu"));
}

TEST_F(FakeV2, UsageReadsPeakOomAndCpu) {
  auto cg = Cgroup::create(roots_, "job3", Limits{});
  ASSERT_TRUE(cg) << cg.error().message();
  const fs::path dir = root_ / "lockstep" / "job3";
  put(dir / "memory.peak", "123456789\n");
  put(dir / "memory.events", "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n");
  put(dir / "cpu.stat", "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n");
  ResourceUsage u = cg->usage();
  EXPECT_EQ(u.peak_memory_bytes, 123456789u);
  EXPECT_TRUE(u.oom_killed);
  EXPECT_EQ(u.cpu_time, std::chrono::milliseconds(2500));
}

TEST_F(FakeV2, UsageFallsBackToMemoryCurrentAndReportsNoOom) {
  auto cg = Cgroup::create(roots_, "job4", Limits{});
  ASSERT_TRUE(cg) << cg.error().message();
  const fs::path dir = root_ / "lockstep" / "job4";
  put(dir / "memory.current", "4096\n");
  put(dir / "memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n");
  ResourceUsage u = cg->usage();
  EXPECT_EQ(u.peak_memory_bytes, 4096u);
  EXPECT_FALSE(u.oom_killed);
  EXPECT_EQ(u.cpu_time.count(), 0);
}

TEST_F(FakeV2, KillAllOfAnEmptyCgroupReturnsAtOnce) {
  auto cg = Cgroup::create(roots_, "job5", Limits{});
  ASSERT_TRUE(cg) << cg.error().message();
  const fs::path dir = root_ / "lockstep" / "job5";
  put(dir / "cgroup.kill", "");
  ASSERT_TRUE(cg->kill_all());
  // Nothing listed: no kill needed, the file stays untouched.
  EXPECT_EQ(slurp(dir / "cgroup.kill"), "");
  EXPECT_TRUE(cg->pids().empty());
}

TEST_F(FakeV2, AttachWritesThePid) {
  auto cg = Cgroup::create(roots_, "job6", Limits{});
  ASSERT_TRUE(cg) << cg.error().message();
  const fs::path dir = root_ / "lockstep" / "job6";
  ASSERT_TRUE(cg->attach(4242));
  EXPECT_EQ(slurp(dir / "cgroup.procs"), "4242");
  EXPECT_EQ(cg->pids(), std::vector<pid_t>{4242});
  put(dir / "cgroup.procs", "");  // the fake pid "left"; never signal it
}

TEST_F(FakeV2, CreateRefusesAnExistingCgroup) {
  fs::create_directories(root_ / "lockstep" / "dup");
  auto cg = Cgroup::create(roots_, "dup", Limits{});
  ASSERT_FALSE(cg);
  EXPECT_EQ(cg.error().message(),
            "create cgroup " + (root_ / "lockstep" / "dup").string() + ": File exists");
}

TEST_F(FakeV2, CreateRefusesBadNames) {
  for (const char* bad : {"", ".", "..", "a/b"}) {
    auto cg = Cgroup::create(roots_, bad, Limits{});
    ASSERT_FALSE(cg) << bad;
    EXPECT_EQ(cg.error().message(), std::string("invalid cgroup name '") + bad + "'");
  }
}

TEST_F(FakeV2, ReapStaleRemovesOnlyStaleOnes) {
  fs::create_directories(root_ / "lockstep" / "dead");
  fs::create_directories(root_ / "lockstep" / "alive");
  put(root_ / "lockstep" / "dead" / "memory.max", "1");
  ASSERT_TRUE(Cgroup::reap_stale(roots_, [](const std::string& id) { return id == "dead"; }));
  EXPECT_FALSE(fs::exists(root_ / "lockstep" / "dead"));
  EXPECT_TRUE(fs::exists(root_ / "lockstep" / "alive"));
}

TEST(CgroupRoots, PureV2HostUsesTheUnifiedMount) {
  auto dir = TempDir::create(fs::temp_directory_path(), "lockstep-mi-");
  ASSERT_TRUE(dir);
  put(dir->path() / "cgroup.controllers", "cpuset cpu io memory pids\n");
  const std::string mi =
      "25 1 0:22 / / rw - ext4 /dev/vda1 rw\n"
      "30 25 0:26 / " +
      dir->path().string() + " rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
  auto roots = CgroupRoots::from_mountinfo(mi);
  ASSERT_TRUE(roots) << roots.error().message();
  EXPECT_TRUE(roots->is_v2());
  EXPECT_EQ(roots->unified, dir->path());
  EXPECT_TRUE(roots->v1.empty());
}

TEST(CgroupRoots, HybridHostUsesV1WhenCgroup2HasNoControllers) {
  auto dir = TempDir::create(fs::temp_directory_path(), "lockstep-mi-");
  ASSERT_TRUE(dir);
  put(dir->path() / "cgroup.controllers", "\n");
  std::string mi = "41 31 0:38 / " + dir->path().string() + " rw - cgroup2 cgroup2 rw\n";
  for (const char* c : {"memory", "pids", "freezer", "cpuset"}) {
    mi += std::string("35 31 0:32 / /sys/fs/cgroup/") + c + " rw - cgroup cgroup rw," + c + "\n";
  }
  mi += "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
  mi += "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\n";
  auto roots = CgroupRoots::from_mountinfo(mi);
  ASSERT_TRUE(roots) << roots.error().message();
  EXPECT_FALSE(roots->is_v2());
  EXPECT_EQ(roots->v1.at("memory"), "/sys/fs/cgroup/memory");
  EXPECT_EQ(roots->v1.at("cpu"), "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(roots->v1.at("cpuacct"), "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(roots->v1.size(), 6u);
}

TEST(CgroupRoots, MountPointEscapesAreDecoded) {
  std::string mi;
  for (const char* c : {"memory", "pids", "cpu", "cpuacct", "freezer"}) {
    mi += std::string("35 31 0:32 / /cg\\040root/") + c + " rw - cgroup cgroup rw," + c + "\n";
  }
  auto roots = CgroupRoots::from_mountinfo(mi);
  ASSERT_TRUE(roots) << roots.error().message();
  EXPECT_EQ(roots->v1.at("pids"), "/cg root/pids");
}

TEST(CgroupRoots, MissingControllersAreNamed) {
  const std::string mi = "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
  auto roots = CgroupRoots::from_mountinfo(mi);
  ASSERT_FALSE(roots);
  EXPECT_EQ(roots.error().message(),
            "no usable cgroup hierarchy: no cgroup2 mount offers memory and pids, and cgroup "
            "v1 lacks pids, cpu, cpuacct, freezer");
}

TEST(FormatBytes, BinaryUnits) {
  EXPECT_EQ(format_bytes(0), "0 B");
  EXPECT_EQ(format_bytes(1023), "1023 B");
  EXPECT_EQ(format_bytes(1024), "1 KiB");
  EXPECT_EQ(format_bytes(256ull << 20), "256 MiB");
  EXPECT_EQ(format_bytes(64ull << 20), "64 MiB");
  EXPECT_EQ(format_bytes(3ull << 29), "1.5 GiB");
  EXPECT_EQ(format_bytes((1ull << 20) + 1), "1.0 MiB");
  EXPECT_EQ(format_bytes(2ull << 40), "2 TiB");
  EXPECT_EQ(format_bytes(~0ull), "16.0 EiB");
}

}  // namespace
}  // namespace lockstep::executor
