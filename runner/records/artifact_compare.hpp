#pragma once
// Comparing one artifact across N builds of the same job (lockstep verify):
// which files are present in only some builds, which differ, and for a
// differing file where: the first differing byte with the bytes around it,
// the ELF section that byte falls in, and diffoscope's report when diffoscope
// is installed, within a time and size budget per file.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "cache/artifacts.hpp"
#include "common/error.hpp"

namespace lockstep::runner {

struct FileDifference {
  std::string artifact;  // the artifact's name in the first build
  std::string path;      // the file's path inside the artifact
  // One per build, in the order given: "sha256:<hex>", or "" when the build
  // has no such file.
  std::vector<std::string> digests;
  // Multi-line, its first line a summary: "byte 4660 (0x1234) in ELF section
  // .rodata: 0x31 vs 0x32 (builds 1 and 2)", "missing in builds 2", or
  // "mode 0644 vs 0755"; then the bytes around the offset in each build.
  std::string first_difference;
  // The stored files that differ in bytes: build 1's and build
  // `other_build`'s (1-based; the first that differs from build 1). Empty when
  // a build lacks the file or only the mode differs: nothing for diffoscope.
  std::filesystem::path file_a, file_b;
  size_t other_build = 0;
  // diffoscope's text report between those two (see DiffoscopeReport); empty
  // when not asked for, not on PATH, or there is no pair to compare.
  std::string diffoscope;
  bool diffoscope_cut = false;        // longer than the budget's max_bytes
  bool diffoscope_timed_out = false;  // the budget's time ran out
};

// How much diffoscope may spend on one file. It is asked to stop going into
// further archive members after `seconds` (its own --timeout, which then marks
// the details incomplete) and is stopped when still running
// stop_after(seconds) seconds after it started; the report is cut at
// `max_bytes`, and diffoscope is stopped as soon as it has written that much.
struct DiffoscopeBudget {
  int seconds = 20;
  size_t max_bytes = 64 * 1024;
  // seconds + max(2, seconds / 2): time to write the report after its own
  // timeout.
  int stop_after() const;
};

// Compares `builds` (the same artifact uploaded by each build; at least one)
// file by file. Differences come sorted by path; identical files are not
// listed, so an empty result means every build uploaded the same files with
// the same bytes and modes. With `use_diffoscope`, each differing pair also
// gets diffoscope's report (add_diffoscope). Errors: a stored file that
// cannot be read.
Result<std::vector<FileDifference>> compare_artifacts(
    const cache::ArtifactStore& store, const std::vector<cache::ArtifactInfo>& builds,
    bool use_diffoscope, const DiffoscopeBudget& budget = {});

// Fills d.diffoscope (and its flags) for d.file_a vs d.file_b when diffoscope
// is on PATH; the files are staged under <state>/tmp as build-<n>/<name>, so
// the report names builds rather than digests, and removed afterwards.
Status add_diffoscope(const cache::ArtifactStore& store, FileDifference& d,
                      const DiffoscopeBudget& budget);

// The first differing byte of two files, described as above ("" when the
// files are equal), with build numbers `a_build` and `b_build` in the text.
Result<std::string> describe_first_difference(const std::filesystem::path& a,
                                              const std::filesystem::path& b, size_t a_build = 1,
                                              size_t b_build = 2);

// The name of the ELF64 (little-endian) section holding file offset `offset`
// ("ELF header", "program headers" and "section headers" for those tables),
// or "" when the file is not such an ELF file or no section holds the offset.
std::string elf_section_at(const std::filesystem::path& file, uint64_t offset);

struct DiffoscopeReport {
  // The report as far as it goes; when it is not complete, a last line in
  // brackets says why: "[diffoscope report cut at 65536 bytes]",
  // "[diffoscope's budget of 20 s ran out: details may be incomplete]" (it
  // said so, or ran that long),
  // "[diffoscope stopped after 30 s: details incomplete]",
  // "[diffoscope failed (exit 2)]" followed by its messages.
  std::string text;
  bool cut = false;
  bool timed_out = false;
  bool failed = false;
};

// diffoscope's path, or "" when no PATH entry has an executable one.
std::string diffoscope_path();

// diffoscope's text report comparing `a` and `b` (paths as given, relative
// to `cwd` when that is not empty) within `budget`; nullopt when diffoscope
// is not on PATH.
std::optional<DiffoscopeReport> diffoscope_report(const std::filesystem::path& a,
                                                  const std::filesystem::path& b,
                                                  const DiffoscopeBudget& budget = {},
                                                  const std::filesystem::path& cwd = {});

}  // namespace lockstep::runner
