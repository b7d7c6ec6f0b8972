// The rootfs plan (pure: built in the parent before the clone), with and
// without a user namespace.
#include "executor/rootfs.hpp"

#include <algorithm>

#include <gtest/gtest.h>

namespace lockstep::executor::detail {
namespace {

ContainerSpec base_spec() {
  ContainerSpec s;
  s.id = "c";
  s.layers = {"/layers/a", "/layers/b"};
  s.mounts = {{"/tmp", "/work", false}, {"/etc/passwd", "/etc/passwd", true}};
  return s;
}

RootfsDirs dirs() {
  return {"/s/.mnt/root", "/s/.mnt/upper", "/s/.mnt/work", "/s/.mnt", {}};
}

const RootfsStep* find(const RootfsPlan& p, const std::string& target) {
  auto it = std::find_if(p.steps.begin(), p.steps.end(),
                         [&](const RootfsStep& s) { return s.target == target; });
  return it == p.steps.end() ? nullptr : &*it;
}

TEST(RootfsPlan, WithoutUserNamespaceUsesHostPathsAndDeviceNodes) {
  auto p = build_rootfs_plan(base_spec(), dirs());
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_FALSE(p->userns);
  EXPECT_TRUE(p->trees.empty());
  EXPECT_EQ(p->overlay_data,
            "lowerdir=/layers/b:/layers/a,upperdir=/s/.mnt/upper,workdir=/s/.mnt/work,volatile");
  ASSERT_NE(find(*p, "dev/null"), nullptr);
  EXPECT_EQ(find(*p, "dev/null")->kind, RootfsStep::kMknod);
  EXPECT_EQ(find(*p, "dev/pts")->data, "newinstance,ptmxmode=0666,mode=0620,gid=5");
  EXPECT_EQ(find(*p, "sys")->kind, RootfsStep::kMount);
  EXPECT_EQ(find(*p, "work")->tree, -1);
}

TEST(RootfsPlan, AppendsComeBeforeTheBindMounts) {
  ContainerSpec s = base_spec();
  s.appends = {{"/etc/ssl/certs/ca-certificates.crt", "pem", {"/etc/pki/ca-bundle.crt"}}};
  auto p = build_rootfs_plan(s, dirs());
  ASSERT_TRUE(p) << p.error().message();
  const RootfsStep* a = find(*p, "etc/ssl/certs/ca-certificates.crt");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->kind, RootfsStep::kAppend);
  EXPECT_EQ(a->source, "pem");
  EXPECT_EQ(a->seed, std::vector<std::string>{"etc/pki/ca-bundle.crt"});
  EXPECT_LT(a, find(*p, "work"));
  EXPECT_LT(a, find(*p, "etc/passwd"));
  s.appends = {{"relative", "x"}};
  EXPECT_FALSE(build_rootfs_plan(s, dirs()));
}

TEST(RootfsPlan, UserNamespaceSendsLayersMountsAndDevicesAsTrees) {
  ContainerSpec s = base_spec();
  s.user_namespace = UserNamespace{{{0, 100000, 65536}}, {{0, 100000, 65536}}, false};
  RootfsDirs d = dirs();
  d.userns_base = "/s/.mnt";
  auto p = build_rootfs_plan(s, d);
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_TRUE(p->userns);
  EXPECT_EQ(p->base_dir, "/s/.mnt");
  EXPECT_EQ(p->n_layers, 2u);
  // Layers first, lowest first, idmapped and read-only; relative paths.
  ASSERT_GE(p->trees.size(), 2u);
  EXPECT_EQ(p->trees[0].source, "/layers/a");
  EXPECT_TRUE(p->trees[0].idmapped);
  EXPECT_TRUE(p->trees[0].read_only);
  EXPECT_EQ(p->trees[1].source, "/layers/b");
  EXPECT_EQ(p->overlay_data,
            "lowerdir=lower/1:lower/0,upperdir=upper,workdir=work,volatile,userxattr");
  // Devices are the host's, bound; bind mounts are trees, not idmapped.
  const RootfsStep* null = find(*p, "dev/null");
  ASSERT_NE(null, nullptr);
  EXPECT_EQ(null->kind, RootfsStep::kBind);
  ASSERT_GE(null->tree, 0);
  EXPECT_EQ(p->trees[static_cast<size_t>(null->tree)].source, "/dev/null");
  EXPECT_FALSE(null->target_dir);
  const RootfsStep* work = find(*p, "work");
  ASSERT_NE(work, nullptr);
  ASSERT_GE(work->tree, 0);
  const DetachedTree& wt = p->trees[static_cast<size_t>(work->tree)];
  EXPECT_EQ(wt.source, "/tmp");
  EXPECT_TRUE(wt.recursive);
  EXPECT_FALSE(wt.read_only);
  EXPECT_FALSE(wt.idmapped);
  const RootfsStep* host = find(*p, "etc/passwd");
  ASSERT_NE(host, nullptr);
  EXPECT_TRUE(p->trees[static_cast<size_t>(host->tree)].read_only);
  EXPECT_FALSE(host->target_dir);
  // gid 5 is mapped: devpts keeps the tty group; network none: a new sysfs.
  EXPECT_EQ(find(*p, "dev/pts")->data, "newinstance,ptmxmode=0666,mode=0620,gid=5");
  EXPECT_EQ(find(*p, "sys")->kind, RootfsStep::kMount);
}

TEST(RootfsPlan, UserNamespaceWithoutTtyGroupOrWithHostNetwork) {
  ContainerSpec s = base_spec();
  s.user_namespace = UserNamespace{{{0, 100000, 1}}, {{0, 100000, 1}}, false};
  s.network.mode = NetworkMode::kHost;
  RootfsDirs d = dirs();
  d.userns_base = "/s/.mnt";
  auto p = build_rootfs_plan(s, d);
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(find(*p, "dev/pts")->data, "newinstance,ptmxmode=0666,mode=0620");
  const RootfsStep* sys = find(*p, "sys");
  ASSERT_NE(sys, nullptr);
  ASSERT_GE(sys->tree, 0);
  const DetachedTree& t = p->trees[static_cast<size_t>(sys->tree)];
  EXPECT_EQ(t.source, "/sys");
  EXPECT_TRUE(t.recursive);
  EXPECT_TRUE(t.read_only);
}

}  // namespace
}  // namespace lockstep::executor::detail
