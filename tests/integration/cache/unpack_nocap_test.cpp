// Without CAP_MKNOD (e.g. in a user namespace or a restricted container):
// device nodes are skipped with a note, while whiteouts (0/0 char devices,
// which Linux >= 5.8 lets anyone create) still work.
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "cache/layer_unpack.hpp"
#include "common/fs.hpp"
#include "tests/integration/cache/tar_builder.hpp"

namespace lockstep::cache {
namespace {
namespace fs = std::filesystem;
using namespace lockstep::cache::testing;

bool drop_mknod() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capget, &hdr, data) != 0) return false;
  data[CAP_MKNOD / 32].effective &= ~(1u << (CAP_MKNOD % 32));
  return ::syscall(SYS_capset, &hdr, data) == 0;
}

// Runs `entries` through unpack_tar_fd in a child without CAP_MKNOD; returns
// "ok <skipped>" or the error message.
std::string unpack_without_mknod(const std::vector<TarEntry>& entries, const fs::path& dest) {
  BuiltTar t = build_tar(entries, Filter::kGzip);
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return "pipe failed";
  pid_t pid = ::fork();
  if (pid == 0) {
    std::string msg;
    if (!drop_mknod()) {
      msg = "capset failed";
    } else {
      int in[2];
      if (::pipe(in) != 0) ::_exit(3);
      if (::write(in[1], t.blob.data(), t.blob.size()) != static_cast<ssize_t>(t.blob.size()))
        ::_exit(3);
      ::close(in[1]);
      UnpackOptions o;
      o.name = "layer nocap";
      auto r = unpack_tar_fd(in[0], dest, o);
      msg = r ? "ok " + std::to_string(r->skipped_nodes) : r.error().message();
    }
    if (::write(out[1], msg.data(), msg.size()) < 0) ::_exit(4);
    ::_exit(0);
  }
  ::close(out[1]);
  std::string msg;
  char buf[512];
  ssize_t n;
  while ((n = ::read(out[0], buf, sizeof buf)) > 0) msg.append(buf, static_cast<size_t>(n));
  ::close(out[0]);
  int st = 0;
  ::waitpid(pid, &st, 0);
  return msg;
}

TEST(UnpackNoCap, DeviceNodesSkippedWhiteoutsKept) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root (to drop CAP_MKNOD from)";
  auto d = TempDir::create(fs::temp_directory_path(), "ls-nocap-");
  ASSERT_TRUE(d);
  fs::create_directories(d->path() / "one");
  TarEntry null;
  null.path = "dev/null";
  null.type = S_IFCHR;
  null.mode = 0666;
  null.rdev_major = 1;
  null.rdev_minor = 3;
  EXPECT_EQ(
      unpack_without_mknod({directory("dev/"), null, file("dev/keep", "k")}, d->path() / "one"),
      "ok 1");
  EXPECT_TRUE(fs::exists(d->path() / "one/dev/keep"));
  EXPECT_FALSE(fs::exists(fs::symlink_status(d->path() / "one/dev/null")));
  fs::create_directories(d->path() / "two");
  EXPECT_EQ(
      unpack_without_mknod({directory("etc/"), file("etc/.wh.passwd", "")}, d->path() / "two"),
      "ok 0");
  struct stat st {};
  ASSERT_EQ(::lstat((d->path() / "two/etc/passwd").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, 0u);
}

}  // namespace
}  // namespace lockstep::cache
