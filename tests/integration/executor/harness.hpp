#pragma once
// Shared fixture for executor integration tests: a busybox rootfs built from
// Debian's busybox-static in a temp dir, a private state dir, and helpers to
// run a command and collect its output. Needs root.
#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/fs.hpp"
#include "executor/executor.hpp"

namespace lockstep::executor::testing {

struct Output {
  std::vector<std::string> out, err;
  ProcessResult result;
  std::string out_text() const;  // lines joined with '\n'
};

class ExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // A spec over the busybox layer with a unique id.
  ContainerSpec spec(const std::string& id_suffix = "c") const;
  std::unique_ptr<Container> start(const ContainerSpec& s);
  Output run(Container& c, std::vector<std::string> argv, ProcessSpec extra = {});
  Output sh(Container& c, const std::string& script, ProcessSpec extra = {});
  // /proc/<pid>/stat lines of every process in the container except pid 1
  // and the probe itself.
  std::vector<std::string> other_processes(Container& c);

  std::filesystem::path base() const { return tmp_.path(); }
  std::filesystem::path state() const { return tmp_.path() / "state"; }
  std::filesystem::path layer() const { return tmp_.path() / "layer"; }

  std::string prefix_;  // unique per test process: names containers and cgroups
  std::unique_ptr<Executor> executor_;

 private:
  TempDir tmp_;
};

// Builds <root>/bin/busybox with applet symlinks, /etc/passwd, /etc/group.
void build_busybox_rootfs(const std::filesystem::path& root);

// Counting what a container may leak.
size_t count_mounts();
size_t count_children(pid_t parent);                          // processes whose ppid is parent
size_t count_cgroups_with_prefix(const std::string& prefix);  // lockstep/<prefix>* anywhere
size_t count_entries(const std::filesystem::path& dir);       // without the shared ".mnt"

}  // namespace lockstep::executor::testing
