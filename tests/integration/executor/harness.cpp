#include "harness.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

namespace lockstep::executor::testing {
namespace fs = std::filesystem;

std::string Output::out_text() const {
  std::string s;
  for (size_t i = 0; i < out.size(); ++i) s += (i ? "\n" : "") + out[i];
  return s;
}

void build_busybox_rootfs(const fs::path& root) {
  for (const char* d : {"bin", "etc", "tmp", "root", "home/user", "www", "proc", "dev", "sys"})
    fs::create_directories(root / d);
  fs::permissions(root / "tmp", fs::perms(01777));
  fs::copy_file("/bin/busybox", root / "bin/busybox");
  FILE* p = ::popen("/bin/busybox --list", "r");
  ASSERT_NE(p, nullptr);
  char line[256];
  while (std::fgets(line, sizeof line, p)) {
    std::string name(line);
    while (!name.empty() && (name.back() == '\n' || name.back() == '\r')) name.pop_back();
    if (name.empty() || name == "busybox") continue;
    fs::create_symlink("busybox", root / "bin" / name);
  }
  ASSERT_EQ(::pclose(p), 0);
  std::ofstream(root / "etc/passwd") << "root:x:0:0:root:/root:/bin/sh\n"
                                        "user:x:1000:1000:user:/home/user:/bin/sh\n"
                                        "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
  std::ofstream(root / "etc/group") << "root:x:0:\n"
                                       "tty:x:5:\n"
                                       "user:x:1000:\n"
                                       "builders:x:2000:user,root\n"
                                       "nogroup:x:65534:\n";
  std::ofstream(root / "www/index.html") << "hello from the service\n";
}

void ExecutorTest::SetUp() {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (namespaces, mounts, cgroups)";
  if (!fs::exists("/bin/busybox")) GTEST_SKIP() << "needs /bin/busybox (busybox-static)";
  auto t = TempDir::create(fs::temp_directory_path(), "lockstep-exec-test-");
  ASSERT_TRUE(t) << t.error().message();
  tmp_ = std::move(*t);
  build_busybox_rootfs(layer());
  prefix_ = "t" + std::to_string(::getpid()) + "-";
  executor_ = make_linux_executor(state());
}

void ExecutorTest::TearDown() {
  if (::geteuid() != 0 || tmp_.path().empty()) return;
  // Every test stops its containers: nothing may remain.
  EXPECT_EQ(count_entries(state() / "containers"), 0u);
  EXPECT_EQ(count_cgroups_with_prefix(prefix_), 0u);
  EXPECT_EQ(count_children(::getpid()), 0u);
}

ContainerSpec ExecutorTest::spec(const std::string& id_suffix) const {
  ContainerSpec s;
  s.id = prefix_ + id_suffix;
  s.layers = {layer()};
  s.hostname = "lockstep";
  s.env = {"PATH=/bin", "LANG=C"};
  return s;
}

std::unique_ptr<Container> ExecutorTest::start(const ContainerSpec& s) {
  auto c = executor_->start(s);
  EXPECT_TRUE(c) << c.error().message();
  return c ? std::move(*c) : nullptr;
}

Output ExecutorTest::run(Container& c, std::vector<std::string> argv, ProcessSpec extra) {
  Output o;
  extra.argv = std::move(argv);
  auto r = c.exec(extra, [&](Stream s, std::string_view line, auto) {
    (s == Stream::kStdout ? o.out : o.err).emplace_back(line);
  });
  EXPECT_TRUE(r) << r.error().message();
  if (r) o.result = *r;
  return o;
}

Output ExecutorTest::sh(Container& c, const std::string& script, ProcessSpec extra) {
  return run(c, {"sh", "-c", script}, std::move(extra));
}

std::vector<std::string> ExecutorTest::other_processes(Container& c) {
  std::vector<std::string> left;
  Output o = run(c, {"sh", "-c", "exec cat /proc/[0-9]*/stat"});
  for (const auto& l : o.out)
    if (!l.starts_with("1 ") && l.find(" (cat) ") == std::string::npos) left.push_back(l);
  return left;
}

size_t count_mounts() {
  std::ifstream in("/proc/self/mountinfo");
  size_t n = 0;
  std::string line;
  while (std::getline(in, line)) ++n;
  return n;
}

size_t count_children(pid_t parent) {
  size_t n = 0;
  DIR* d = ::opendir("/proc");
  while (struct dirent* e = d ? ::readdir(d) : nullptr) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    auto text = read_file(std::string("/proc/") + e->d_name + "/stat");
    if (!text) continue;
    const std::string& s = *text;
    auto close = s.rfind(')');
    if (close == std::string::npos) continue;
    char state;
    int ppid;
    if (std::sscanf(s.c_str() + close + 1, " %c %d", &state, &ppid) == 2 && ppid == parent) ++n;
  }
  if (d) ::closedir(d);
  return n;
}

size_t count_cgroups_with_prefix(const std::string& prefix) {
  // v2: /sys/fs/cgroup/lockstep/<id>; v1: /sys/fs/cgroup/<controller>/lockstep/<id>.
  std::vector<fs::path> parents = {"/sys/fs/cgroup/lockstep"};
  std::error_code ec;
  for (auto& h : fs::directory_iterator("/sys/fs/cgroup", ec))
    parents.push_back(h.path() / "lockstep");
  size_t n = 0;
  for (const fs::path& dir : parents) {
    for (auto& e : fs::directory_iterator(dir, ec))
      if (e.is_directory(ec) && e.path().filename().string().starts_with(prefix)) ++n;
  }
  return n;
}

size_t count_entries(const fs::path& dir) {
  size_t n = 0;
  std::error_code ec;
  for (auto& e : fs::directory_iterator(dir, ec))
    if (e.path().filename() != ".mnt") ++n;  // the shared mount point stays
  return n;
}

}  // namespace lockstep::executor::testing
