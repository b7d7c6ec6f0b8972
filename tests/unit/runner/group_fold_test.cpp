// ::group:: folding: one line per group on a terminal, every line in the log.
#include <gtest/gtest.h>

#include <cstdio>

#include "common/fs.hpp"
#include "runner/engine/job_internal.hpp"

namespace lockstep::runner::detail {
namespace {

std::string console_text(FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string s;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  return s;
}

struct Fixture {
  explicit Fixture(bool tty) : out(std::tmpfile()), console(out, tty) {
    auto d = TempDir::create(std::filesystem::temp_directory_path(), "fold");
    EXPECT_TRUE(d);
    dir = std::move(*d);
  }
  ~Fixture() { std::fclose(out); }
  FILE* out;
  Console console;
  Masker masker;
  TempDir dir;
};

void log_group(JobLog& log) {
  auto now = std::chrono::system_clock::now();
  log.line(executor::Stream::kStdout, "before", now);
  log.begin_group("Install deps");
  for (int i = 0; i < 3; ++i) log.line(executor::Stream::kStdout, "dep " + std::to_string(i), now);
  log.end_group();
  log.line(executor::Stream::kStdout, "after", now);
}

TEST(GroupFold, OnATerminalAGroupIsOneLineAndTheLogKeepsEverything) {
  Fixture f(true);
  {
    JobLog log(f.console, f.masker, "build", f.dir.path() / "log.txt");
    log_group(log);
  }
  std::string shown = console_text(f.out);
  EXPECT_NE(shown.find("before"), std::string::npos) << shown;
  EXPECT_NE(shown.find("after"), std::string::npos) << shown;
  EXPECT_EQ(shown.find("dep 1"), std::string::npos) << shown;
  EXPECT_NE(shown.find("\u25b8 Install deps (3 lines)"), std::string::npos) << shown;
  auto file = read_file(f.dir.path() / "log.txt");
  ASSERT_TRUE(file);
  EXPECT_NE(file->find("-- group: Install deps"), std::string::npos) << *file;
  EXPECT_NE(file->find("O dep 0"), std::string::npos) << *file;
  EXPECT_NE(file->find("O dep 2"), std::string::npos) << *file;
}

TEST(GroupFold, ElsewhereTheTitleIsALineAndTheLinesFollow) {
  Fixture f(false);
  {
    JobLog log(f.console, f.masker, "build", f.dir.path() / "log.txt");
    log_group(log);
  }
  std::string shown = console_text(f.out);
  EXPECT_NE(shown.find("[build] \u25b8 Install deps\n"), std::string::npos) << shown;
  EXPECT_NE(shown.find("[build] dep 1\n"), std::string::npos) << shown;
  EXPECT_EQ(shown.find("lines)"), std::string::npos) << shown;
}

TEST(GroupFold, AnUnclosedGroupIsPrintedWhenTheStepEnds) {
  Fixture f(true);
  JobLog log(f.console, f.masker, "build", f.dir.path() / "log.txt");
  log.begin_group("Never closed");
  log.line(executor::Stream::kStderr, "oops", std::chrono::system_clock::now());
  log.end_group();
  log.end_group();  // idempotent
  std::string shown = console_text(f.out);
  EXPECT_NE(shown.find("\u25b8 Never closed (1 line)"), std::string::npos) << shown;
  EXPECT_EQ(shown.find("Never closed (1 line)", shown.find("(1 line)") + 1), std::string::npos);
}

}  // namespace
}  // namespace lockstep::runner::detail
