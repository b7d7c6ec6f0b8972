#include "runner/records/artifact_compare.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <string_view>
#include <tuple>

#include "common/fd.hpp"
#include "common/fs.hpp"

namespace lockstep::runner {
namespace fs = std::filesystem;

namespace {

constexpr size_t kChunk = 64 * 1024;

// A named byte range of an ELF file: a section or one of the header tables.
struct ElfSection {
  std::string name;
  uint64_t begin = 0, end = 0;
};

ElfSection find_elf_section(const fs::path& file, uint64_t offset);
constexpr size_t kContextBefore = 8, kContextAfter = 15;

std::string hex_offset(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string hex_byte(unsigned char c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", c);
  return buf;
}

// Reads up to `len` bytes at `off`; short only at end of file.
Result<std::string> read_at(int fd, uint64_t off, size_t len, const fs::path& name) {
  std::string out(len, '\0');
  size_t got = 0;
  while (got < len) {
    ssize_t n = ::pread(fd, out.data() + got, len - got, static_cast<off_t>(off + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("read " + name.string());
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  out.resize(got);
  return out;
}

Result<UniqueFd> open_file(const fs::path& p) {
  UniqueFd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return fail_errno("open " + p.string());
  return fd;
}

// One line of context: the bytes around `off` in hex, the differing byte in
// brackets, then the printable characters.
std::string context_line(const std::string& label, int fd, uint64_t off, const fs::path& name) {
  uint64_t start = off >= kContextBefore ? off - kContextBefore : 0;
  auto bytes = read_at(fd, start, static_cast<size_t>(off - start) + 1 + kContextAfter, name);
  if (!bytes) return "  " + label + ": " + bytes.error().message();
  std::string line = "  " + label + " at " + hex_offset(start) + ":";
  std::string text;
  for (size_t i = 0; i < bytes->size(); ++i) {
    auto c = static_cast<unsigned char>((*bytes)[i]);
    char buf[8];
    bool here = start + i == off;
    std::snprintf(buf, sizeof buf, here ? " [%02x]" : " %02x", c);
    line += buf;
    text += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '.';
  }
  if (start + bytes->size() <= off) line += " [end of file]";
  return line + "  |" + text + "|";
}

template <class T>
bool get_le(const std::string& buf, size_t at, T& out) {
  if (at + sizeof(T) > buf.size()) return false;
  out = 0;
  for (size_t i = 0; i < sizeof(T); ++i)
    out |= static_cast<T>(static_cast<unsigned char>(buf[at + i])) << (8 * i);
  return true;
}

std::string find_diffoscope() {
  const char* path = std::getenv("PATH");
  if (!path) return "";
  std::string all = path;
  for (size_t b = 0; b <= all.size();) {
    size_t e = all.find(':', b);
    if (e == std::string::npos) e = all.size();
    std::string dir = all.substr(b, e - b);
    if (!dir.empty()) {
      std::string cand = dir + "/diffoscope";
      if (::access(cand.c_str(), X_OK) == 0) return cand;
    }
    b = e + 1;
  }
  return "";
}

// The messages diffoscope writes into its report when it cuts it short.
constexpr std::string_view kOwnTimeout = "Timeout exceeded; details may be incomplete.";
constexpr std::string_view kOwnSizeLimit = "Max text output size reached.";

DiffoscopeReport run_diffoscope(const std::string& exe, const std::string& a, const std::string& b,
                                const fs::path& cwd, const DiffoscopeBudget& budget) {
  DiffoscopeReport rep;
  auto failed = [&](std::string why) {
    rep.failed = true;
    rep.text = "[diffoscope failed: " + why + "]\n";
    return rep;
  };
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return failed("pipe: " + std::string(strerror(errno)));
  UniqueFd out_r(out_pipe[0]), out_w(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return failed("pipe: " + std::string(strerror(errno)));
  UniqueFd err_r(err_pipe[0]), err_w(err_pipe[1]);
  // --timeout: diffoscope stops going into further archive members (an ar
  // archive's objects, say) and marks what it skipped; its report then comes
  // out soon after. --max-text-report-size: it stops writing near our cut.
  std::vector<std::string> argv_s = {exe,
                                     "--text",
                                     "-",
                                     "--timeout",
                                     std::to_string(budget.seconds),
                                     "--max-text-report-size",
                                     std::to_string(budget.max_bytes),
                                     a,
                                     b};
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  // The report must not depend on the caller's locale. The environment is
  // built before fork: the child of a threaded process may only exec.
  std::vector<std::string> env_s;
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "LC_ALL=", 7) != 0) env_s.emplace_back(*e);
  env_s.emplace_back("LC_ALL=C.UTF-8");
  std::vector<char*> envp;
  for (auto& s : env_s) envp.push_back(s.data());
  envp.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return failed("fork: " + std::string(strerror(errno)));
  if (pid == 0) {
    ::setpgid(0, 0);
    ::dup2(out_w.get(), 1);
    ::dup2(err_w.get(), 2);
    int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null >= 0) ::dup2(null, 0);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(126);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::setpgid(pid, pid);
  out_w = UniqueFd();
  err_w = UniqueFd();
  std::string out, err;
  bool stopped = false;  // killed by us: out of time, or the report is long enough
  bool out_of_time = false;
  const auto started = std::chrono::steady_clock::now();
  const auto deadline = started + std::chrono::seconds(budget.stop_after());
  pollfd fds[2] = {{out_r.get(), POLLIN, 0}, {err_r.get(), POLLIN, 0}};
  char buf[kChunk];
  while ((fds[0].fd >= 0 || fds[1].fd >= 0) && !stopped) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      out_of_time = stopped = true;
      break;
    }
    int n = ::poll(fds, 2, static_cast<int>(std::min<long long>(left, 1000)));
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < 2 && !stopped; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got <= 0) {
        fds[i].fd = -1;
        continue;
      }
      std::string& sink = i == 0 ? out : err;
      size_t room = budget.max_bytes > sink.size() ? budget.max_bytes - sink.size() : 0;
      sink.append(buf, std::min(room, static_cast<size_t>(got)));
      // The rest of the report would be thrown away: no need to wait for it.
      if (static_cast<size_t>(got) > room && i == 0) rep.cut = stopped = true;
    }
  }
  if (stopped) ::kill(-pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!out.empty() && out.back() != '\n') out += '\n';
  rep.text = out;
  if (!stopped) {
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127) return failed("could not run " + exe);
    // 0: no differences, 1: differences; anything else is a failure.
    if (!WIFEXITED(status) || WEXITSTATUS(status) > 1) {
      std::string why = WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                          : "signal " + std::to_string(WTERMSIG(status));
      rep.failed = true;
      rep.text = out + "[diffoscope failed (" + why + ")]\n" + err;
      return rep;
    }
  }
  if (!stopped && out.empty()) rep.text = "[diffoscope found no differences]\n";
  rep.cut = rep.cut || out.find(kOwnSizeLimit) != std::string::npos;
  // Its own timeout is written into the report, but a cut report may end
  // before the first such note; having run that long tells the same.
  bool own_timeout =
      out.find(kOwnTimeout) != std::string::npos ||
      std::chrono::steady_clock::now() - started >= std::chrono::seconds(budget.seconds);
  rep.timed_out = out_of_time || own_timeout;
  if (out_of_time)
    rep.text += "[diffoscope stopped after " + std::to_string(budget.stop_after()) +
                " s: details incomplete]\n";
  else if (own_timeout)
    rep.text += "[diffoscope's budget of " + std::to_string(budget.seconds) +
                " s ran out: details may be incomplete]\n";
  if (rep.cut)
    rep.text += "[diffoscope report cut at " + std::to_string(budget.max_bytes) + " bytes]\n";
  return rep;
}

std::string build_list(const std::vector<size_t>& builds) {
  std::string s;
  for (size_t i = 0; i < builds.size(); ++i) {
    if (i > 0) s += i + 1 == builds.size() ? " and " : ", ";
    s += std::to_string(builds[i]);
  }
  return s;
}

std::string mode_str(uint32_t m) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", m);
  return buf;
}

// Hard links (or copies) the two stored files as build-<i>/<name> under
// `dir`, so that diffoscope's report names them by build, not by digest.
Result<std::pair<std::string, std::string>> stage_pair(const fs::path& dir, const fs::path& a,
                                                       size_t ai, const fs::path& b, size_t bi,
                                                       const std::string& name) {
  std::pair<std::string, std::string> rel;
  for (auto [src, idx, out] : {std::tuple{a, ai, &rel.first}, std::tuple{b, bi, &rel.second}}) {
    fs::path r = fs::path("build-" + std::to_string(idx)) / fs::path(name).filename();
    std::error_code ec;
    fs::create_directories((dir / r).parent_path(), ec);
    if (ec) return fail(Error("create " + (dir / r).parent_path().string() + ": " + ec.message()));
    if (::link(src.c_str(), (dir / r).c_str()) != 0) {
      fs::copy_file(src, dir / r, ec);
      if (ec) return fail(Error("copy " + src.string() + ": " + ec.message()));
    }
    *out = r.string();
  }
  return rel;
}

ElfSection find_elf_section(const fs::path& file, uint64_t offset) {
  auto fd = open_file(file);
  if (!fd) return {};
  auto hdr = read_at(fd->get(), 0, 64, file);
  if (!hdr || hdr->size() < 64 ||
      hdr->compare(0, 4,
                   "\x7f"
                   "ELF") != 0)
    return {};
  if ((*hdr)[4] != 2 || (*hdr)[5] != 1) return {};  // ELFCLASS64, ELFDATA2LSB
  uint64_t phoff = 0, shoff = 0;
  uint16_t phentsize = 0, phnum = 0, shentsize = 0, shnum = 0, shstrndx = 0;
  get_le(*hdr, 0x20, phoff);
  get_le(*hdr, 0x28, shoff);
  get_le(*hdr, 0x36, phentsize);
  get_le(*hdr, 0x38, phnum);
  get_le(*hdr, 0x3a, shentsize);
  get_le(*hdr, 0x3c, shnum);
  get_le(*hdr, 0x3e, shstrndx);
  if (offset < 64) return {"ELF header", 0, 64};
  uint64_t ph_end = phoff + uint64_t{phentsize} * phnum;
  if (phnum > 0 && offset >= phoff && offset < ph_end) return {"program headers", phoff, ph_end};
  if (shnum == 0 || shentsize < 64) return {};
  uint64_t sh_end = shoff + uint64_t{shentsize} * shnum;
  if (offset >= shoff && offset < sh_end) return {"section headers", shoff, sh_end};
  auto table = read_at(fd->get(), shoff, size_t{shentsize} * shnum, file);
  if (!table || table->size() < size_t{shentsize} * shnum) return {};
  auto field = [&](size_t i, size_t at, auto& out) {
    return get_le(*table, i * shentsize + at, out);
  };
  constexpr uint32_t kShtNobits = 8;
  ElfSection found;
  size_t index = 0;
  for (size_t i = 1; i < shnum && index == 0; ++i) {
    uint32_t type = 0;
    uint64_t off = 0, size = 0;
    field(i, 0x04, type);
    field(i, 0x18, off);
    field(i, 0x20, size);
    if (type != kShtNobits && size > 0 && offset >= off && offset - off < size) {
      index = i;
      found = {"section " + std::to_string(i), off, off + size};
    }
  }
  if (index == 0 || shstrndx >= shnum) return found;
  uint32_t name_off = 0;
  uint64_t str_off = 0, str_size = 0;
  field(index, 0x00, name_off);
  field(shstrndx, 0x18, str_off);
  field(shstrndx, 0x20, str_size);
  if (name_off >= str_size) return found;
  auto name = read_at(fd->get(), str_off + name_off,
                      static_cast<size_t>(std::min<uint64_t>(str_size - name_off, 256)), file);
  if (name && !name->empty() && (*name)[0] != '\0') found.name = name->substr(0, name->find('\0'));
  return found;
}

}  // namespace

std::string elf_section_at(const fs::path& file, uint64_t offset) {
  return find_elf_section(file, offset).name;
}

namespace {

// The first offset >= `from` where the files differ (or one ends), with the
// two bytes there (-1 past an end); nullopt when they are equal from `from`.
struct Mismatch {
  uint64_t offset = 0;
  int a = -1, b = -1;
};

Result<std::optional<Mismatch>> first_mismatch(int fa, int fb, uint64_t from, const fs::path& a,
                                               const fs::path& b) {
  for (uint64_t off = from;;) {
    LS_TRY_ASSIGN(std::string ca, read_at(fa, off, kChunk, a));
    LS_TRY_ASSIGN(std::string cb, read_at(fb, off, kChunk, b));
    size_t n = std::min(ca.size(), cb.size());
    auto mis = std::mismatch(ca.begin(), ca.begin() + static_cast<ptrdiff_t>(n), cb.begin());
    size_t i = static_cast<size_t>(mis.first - ca.begin());
    if (i < n || ca.size() != cb.size()) {
      Mismatch m;
      m.offset = off + i;
      if (i < ca.size()) m.a = static_cast<unsigned char>(ca[i]);
      if (i < cb.size()) m.b = static_cast<unsigned char>(cb[i]);
      return m;
    }
    if (ca.empty()) return std::nullopt;
    off += n;
  }
}

std::string describe_at(const Mismatch& m, const std::string& builds, size_t a_build,
                        size_t b_build, const ElfSection& section) {
  if (m.a < 0 || m.b < 0)
    return "build " + std::to_string(m.a < 0 ? a_build : b_build) + " ends at byte " +
           std::to_string(m.offset) + "; the other goes on " + builds;
  return "byte " + std::to_string(m.offset) + " (" + hex_offset(m.offset) + ")" +
         (section.name.empty() ? "" : " in ELF section " + section.name) + ": " +
         hex_byte(static_cast<unsigned char>(m.a)) + " vs " +
         hex_byte(static_cast<unsigned char>(m.b)) + " " + builds;
}

}  // namespace

Result<std::string> describe_first_difference(const fs::path& a, const fs::path& b, size_t a_build,
                                              size_t b_build) {
  LS_TRY_ASSIGN(UniqueFd fa, open_file(a));
  LS_TRY_ASSIGN(UniqueFd fb, open_file(b));
  LS_TRY_ASSIGN(std::optional<Mismatch> m, first_mismatch(fa.get(), fb.get(), 0, a, b));
  if (!m) return std::string();
  struct stat sa {};
  struct stat sb {};
  ::fstat(fa.get(), &sa);
  ::fstat(fb.get(), &sb);
  const std::string builds =
      "(builds " + std::to_string(a_build) + " and " + std::to_string(b_build) + ")";
  const std::string la = "build " + std::to_string(a_build),
                    lb = "build " + std::to_string(b_build);
  ElfSection section = m->a >= 0 && m->b >= 0 ? find_elf_section(a, m->offset) : ElfSection{};
  std::string text = describe_at(*m, builds, a_build, b_build, section);
  if (sa.st_size != sb.st_size)
    text += "; sizes " + std::to_string(sa.st_size) + " vs " + std::to_string(sb.st_size);
  text += "\n" + context_line(la, fa.get(), m->offset, a) + "\n" +
          context_line(lb, fb.get(), m->offset, b) + "\n";
  // The build id is a hash of the rest of the file: it differs whenever
  // anything else does, so the difference that explains it comes after it.
  if (section.name == ".note.gnu.build-id") {
    LS_TRY_ASSIGN(std::optional<Mismatch> next,
                  first_mismatch(fa.get(), fb.get(), section.end, a, b));
    if (next) {
      ElfSection s2 =
          next->a >= 0 && next->b >= 0 ? find_elf_section(a, next->offset) : ElfSection{};
      text += "first difference after the build id: " +
              describe_at(*next, builds, a_build, b_build, s2) + "\n" +
              context_line(la, fa.get(), next->offset, a) + "\n" +
              context_line(lb, fb.get(), next->offset, b) + "\n";
    }
  }
  return text;
}

std::string diffoscope_path() {
  return find_diffoscope();
}

int DiffoscopeBudget::stop_after() const {
  return seconds + std::max(2, seconds / 2);
}

std::optional<DiffoscopeReport> diffoscope_report(const fs::path& a, const fs::path& b,
                                                  const DiffoscopeBudget& budget,
                                                  const fs::path& cwd) {
  std::string exe = find_diffoscope();
  if (exe.empty()) return std::nullopt;
  return run_diffoscope(exe, a.string(), b.string(), cwd, budget);
}

Status add_diffoscope(const cache::ArtifactStore& store, FileDifference& d,
                      const DiffoscopeBudget& budget) {
  if (d.file_a.empty() || d.file_b.empty() || find_diffoscope().empty()) return {};
  fs::path tmp = store.root().parent_path() / "tmp";
  std::error_code ec;
  fs::create_directories(tmp, ec);
  LS_TRY_ASSIGN(TempDir stage, TempDir::create(tmp, "compare-"));
  LS_TRY_ASSIGN(auto rel, stage_pair(stage.path(), d.file_a, 1, d.file_b, d.other_build, d.path));
  auto rep = diffoscope_report(rel.first, rel.second, budget, stage.path());
  if (!rep) return {};
  d.diffoscope = std::move(rep->text);
  d.diffoscope_cut = rep->cut;
  d.diffoscope_timed_out = rep->timed_out;
  return {};
}

Result<std::vector<FileDifference>> compare_artifacts(
    const cache::ArtifactStore& store, const std::vector<cache::ArtifactInfo>& builds,
    bool use_diffoscope, const DiffoscopeBudget& budget) {
  if (builds.empty()) return fail("compare artifacts: no builds given", ErrorKind::kUsage);
  const std::string& artifact = builds[0].name;
  // path -> the file in each build (nullptr when absent)
  std::map<std::string, std::vector<const cache::ArtifactFile*>> files;
  for (size_t i = 0; i < builds.size(); ++i)
    for (const auto& f : builds[i].files) {
      auto& slot = files[f.path];
      slot.resize(builds.size(), nullptr);
      slot[i] = &f;
    }
  std::vector<FileDifference> out;
  for (auto& [path, per_build] : files) {
    per_build.resize(builds.size(), nullptr);
    FileDifference d;
    d.artifact = artifact;
    d.path = path;
    std::vector<size_t> missing;
    for (size_t i = 0; i < builds.size(); ++i) {
      d.digests.push_back(per_build[i] ? per_build[i]->digest.str() : "");
      if (!per_build[i]) missing.push_back(i + 1);
    }
    if (!missing.empty()) {
      d.first_difference = "missing in build" + std::string(missing.size() > 1 ? "s " : " ") +
                           build_list(missing) + "\n";
      out.push_back(std::move(d));
      continue;
    }
    const cache::ArtifactFile& first = *per_build[0];
    size_t other = 0;
    for (size_t i = 1; i < builds.size() && other == 0; ++i)
      if (per_build[i]->digest.hex() != first.digest.hex()) other = i;
    if (other == 0) {
      for (size_t i = 1; i < builds.size() && other == 0; ++i)
        if (per_build[i]->mode != first.mode) other = i;
      if (other == 0) continue;  // identical everywhere
      d.first_difference = "mode " + mode_str(first.mode) + " vs " +
                           mode_str(per_build[other]->mode) + " (builds 1 and " +
                           std::to_string(other + 1) + "); the bytes are equal\n";
      out.push_back(std::move(d));
      continue;
    }
    d.file_a = store.file_path(first.digest);
    d.file_b = store.file_path(per_build[other]->digest);
    d.other_build = other + 1;
    LS_TRY_ASSIGN(d.first_difference, describe_first_difference(d.file_a, d.file_b, 1, other + 1));
    out.push_back(std::move(d));
  }
  if (use_diffoscope)
    for (auto& d : out) LS_TRY(add_diffoscope(store, d, budget));
  return out;
}

}  // namespace lockstep::runner
