#pragma once
// Comparing one artifact across N builds of the same job (lockstep verify):
// which files are present in only some builds, which differ, and for a
// differing file where: the first differing byte with the bytes around it,
// the ELF section that byte falls in, and diffoscope's report when diffoscope
// is installed.
#include <cstdint>
#include <filesystem>
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
  // diffoscope's text report between build 1 and the first build that
  // differs from it, cut at 64 KiB; empty when not asked for, not on PATH,
  // or the file is missing in a build.
  std::string diffoscope;
};

// Compares `builds` (the same artifact uploaded by each build; at least one)
// file by file. Differences come sorted by path; identical files are not
// listed, so an empty result means every build uploaded the same files with
// the same bytes and modes. Errors: a stored file that cannot be read.
Result<std::vector<FileDifference>> compare_artifacts(
    const cache::ArtifactStore& store, const std::vector<cache::ArtifactInfo>& builds,
    bool use_diffoscope);

// The first differing byte of two files, described as above ("" when the
// files are equal), with build numbers `a_build` and `b_build` in the text.
Result<std::string> describe_first_difference(const std::filesystem::path& a,
                                              const std::filesystem::path& b, size_t a_build = 1,
                                              size_t b_build = 2);

// The name of the ELF64 (little-endian) section holding file offset `offset`
// ("ELF header", "program headers" and "section headers" for those tables),
// or "" when the file is not such an ELF file or no section holds the offset.
std::string elf_section_at(const std::filesystem::path& file, uint64_t offset);

// diffoscope's text report comparing `a` and `b`, cut at `max_bytes`, or ""
// when diffoscope is not on PATH. A run that takes longer than `timeout_s`
// is killed and reported as timed out; a diffoscope failure (exit 2) returns
// its message in the report.
std::string diffoscope_report(const std::filesystem::path& a, const std::filesystem::path& b,
                              size_t max_bytes = 64 * 1024, int timeout_s = 120);

}  // namespace lockstep::runner
