// Compiling a seccomp Profile into classic BPF with libseccomp (in the
// parent, where allocation is fine) and loading it in the child.
#include "executor/seccomp.hpp"

#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "common/fd.hpp"
#include "executor/seccomp_profile.hpp"

namespace lockstep::executor {
namespace {

using seccomp::Profile;
using seccomp::Rule;

constexpr int kEperm = 1;

// Docker's Go architecture names, for includes/excludes "arches".
#if defined(__x86_64__)
constexpr const char* kNativeGoArch = "amd64";
#elif defined(__aarch64__)
constexpr const char* kNativeGoArch = "arm64";
#elif defined(__riscv) && __riscv_xlen == 64
constexpr const char* kNativeGoArch = "riscv64";
#else
constexpr const char* kNativeGoArch = "unknown";
#endif

struct CtxDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using Ctx = std::unique_ptr<void, CtxDeleter>;

tl::unexpected<Error> failed(const std::string& what, int rc) {
  return fail(Error::from_errno("seccomp profile: " + what, -rc));
}

Result<uint32_t> action_of(const std::string& name, std::optional<int> errno_ret) {
  if (name == "SCMP_ACT_ALLOW") return SCMP_ACT_ALLOW;
  if (name == "SCMP_ACT_ERRNO")
    return SCMP_ACT_ERRNO(static_cast<uint16_t>(errno_ret.value_or(kEperm)));
  if (name == "SCMP_ACT_KILL" || name == "SCMP_ACT_KILL_THREAD") return SCMP_ACT_KILL_THREAD;
  if (name == "SCMP_ACT_KILL_PROCESS") return SCMP_ACT_KILL_PROCESS;
  if (name == "SCMP_ACT_TRAP") return SCMP_ACT_TRAP;
  if (name == "SCMP_ACT_TRACE")
    return SCMP_ACT_TRACE(static_cast<uint16_t>(errno_ret.value_or(kEperm)));
  if (name == "SCMP_ACT_LOG") return SCMP_ACT_LOG;
  return fail("seccomp profile: unknown action '" + name + "'", ErrorKind::kUsage);
}

scmp_compare op_of(const std::string& op) {
  static const std::map<std::string, scmp_compare> ops = {
      {"SCMP_CMP_NE", SCMP_CMP_NE},
      {"SCMP_CMP_LT", SCMP_CMP_LT},
      {"SCMP_CMP_LE", SCMP_CMP_LE},
      {"SCMP_CMP_EQ", SCMP_CMP_EQ},
      {"SCMP_CMP_GE", SCMP_CMP_GE},
      {"SCMP_CMP_GT", SCMP_CMP_GT},
      {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
  };
  return ops.at(op);  // parse_profile admits known operators only
}

// "SCMP_ARCH_X86_64" -> libseccomp token; 0 when unknown.
uint32_t arch_token(std::string name) {
  if (name.rfind("SCMP_ARCH_", 0) == 0) name.erase(0, 10);
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return seccomp_arch_resolve_name(name.c_str());
}

// Running kernel >= "major.minor"?
bool kernel_at_least(const std::string& version) {
  utsname u{};
  if (::uname(&u) != 0) return true;
  int have_major = 0, have_minor = 0, want_major = 0, want_minor = 0;
  std::sscanf(u.release, "%d.%d", &have_major, &have_minor);
  std::sscanf(version.c_str(), "%d.%d", &want_major, &want_minor);
  return have_major != want_major ? have_major > want_major : have_minor >= want_minor;
}

// Docker's rule selection: includes need every listed cap and the native
// arch; excludes drop the rule if any listed cap or the native arch matches.
bool rule_applies(const Rule& r, const CapSet& caps) {
  auto has_cap = [&](const std::string& name) {
    auto c = capability_from_name(name);
    return c && caps.has(*c);
  };
  auto native = [](const std::vector<std::string>& arches) {
    return std::find(arches.begin(), arches.end(), kNativeGoArch) != arches.end();
  };
  if (!std::all_of(r.includes.caps.begin(), r.includes.caps.end(), has_cap)) return false;
  if (!r.includes.arches.empty() && !native(r.includes.arches)) return false;
  if (!r.includes.min_kernel.empty() && !kernel_at_least(r.includes.min_kernel)) return false;
  if (std::any_of(r.excludes.caps.begin(), r.excludes.caps.end(), has_cap)) return false;
  if (!r.excludes.arches.empty() && native(r.excludes.arches)) return false;
  if (!r.excludes.min_kernel.empty() && kernel_at_least(r.excludes.min_kernel)) return false;
  return true;
}

Status add_architectures(scmp_filter_ctx ctx, const Profile& p) {
  std::vector<std::string> arches = p.architectures;
  const uint32_t native = seccomp_arch_native();
  for (const auto& [arch, subs] : p.arch_map) {
    if (arch_token(arch) != native) continue;
    arches.push_back(arch);
    arches.insert(arches.end(), subs.begin(), subs.end());
  }
  for (const std::string& a : arches) {
    const uint32_t token = arch_token(a);
    if (token == 0)
      return fail("seccomp profile: unknown architecture '" + a + "'", ErrorKind::kUsage);
    const int rc = seccomp_arch_add(ctx, token);
    if (rc != 0 && rc != -EEXIST) return failed("add architecture " + a, rc);
  }
  return {};
}

Status add_rule(scmp_filter_ctx ctx, const Rule& r, uint32_t action) {
  // libseccomp cannot compare one argument twice in a rule; Docker then adds
  // one rule per comparison (an OR), and so does this.
  bool repeated = false;
  for (size_t i = 0; i < r.args.size(); ++i) {
    for (size_t k = i + 1; k < r.args.size(); ++k) repeated |= r.args[i].index == r.args[k].index;
  }
  std::vector<std::vector<scmp_arg_cmp>> groups;
  std::vector<scmp_arg_cmp> all;
  for (const seccomp::Arg& a : r.args) {
    scmp_arg_cmp cmp{a.index, op_of(a.op), a.value, a.value_two};
    if (repeated)
      groups.push_back({cmp});
    else
      all.push_back(cmp);
  }
  if (!repeated) groups.push_back(all);
  for (const std::string& name : r.names) {
    const int nr = seccomp_syscall_resolve_name(name.c_str());
    if (nr == __NR_SCMP_ERROR) continue;  // not a syscall of these architectures
    for (const auto& g : groups) {
      const int rc =
          seccomp_rule_add_array(ctx, action, nr, static_cast<unsigned>(g.size()), g.data());
      if (rc != 0) return failed("add rule for " + name, rc);
    }
  }
  return {};
}

Result<std::vector<sock_filter>> export_bpf(scmp_filter_ctx ctx) {
  UniqueFd fd(::memfd_create("lockstep-seccomp", MFD_CLOEXEC));
  if (!fd) return fail_errno("seccomp profile: memfd_create");
  if (const int rc = seccomp_export_bpf(ctx, fd.get()); rc != 0) return failed("export BPF", rc);
  const off_t size = ::lseek(fd.get(), 0, SEEK_END);
  if (size < 0 || size % sizeof(sock_filter) != 0)
    return fail("seccomp profile: bad BPF export size");
  std::vector<sock_filter> prog(static_cast<size_t>(size) / sizeof(sock_filter));
  if (::pread(fd.get(), prog.data(), static_cast<size_t>(size), 0) != size) {
    return fail_errno("seccomp profile: read exported BPF");
  }
  if (prog.size() > BPF_MAXINSNS) {
    return fail("seccomp profile: filter of " + std::to_string(prog.size()) +
                    " instructions exceeds the kernel's limit of " + std::to_string(BPF_MAXINSNS),
                ErrorKind::kUsage);
  }
  return prog;
}

Result<std::vector<sock_filter>> compile(const Profile& p, const CapSet& caps) {
  LS_TRY_ASSIGN(const uint32_t default_action, action_of(p.default_action, p.default_errno_ret));
  Ctx ctx(seccomp_init(default_action));
  if (!ctx) return fail("seccomp profile: seccomp_init failed");
  // A binary tree of syscall numbers instead of a linear scan: an allow-list
  // of ~400 names would otherwise cost every syscall hundreds of compares.
  (void)seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2);
  LS_TRY(add_architectures(ctx.get(), p));
  for (const Rule& r : p.rules) {
    if (!rule_applies(r, caps)) continue;
    LS_TRY_ASSIGN(const uint32_t action, action_of(r.action, r.errno_ret));
    if (action == default_action) continue;  // libseccomp refuses such rules
    LS_TRY(add_rule(ctx.get(), r, action));
  }
  return export_bpf(ctx.get());
}

}  // namespace

std::string default_seccomp_profile_json() {
  auto text = canonical_json(seccomp::to_json(seccomp::default_profile()));
  return text ? *text : std::string();  // the default has no floating point
}

Result<SeccompProgram> compile_seccomp(const std::string& profile) {
  return compile_seccomp(profile, default_capabilities());
}

Result<SeccompProgram> compile_seccomp(const std::string& profile, const CapSet& caps) {
  SeccompProgram out;
  if (profile == "unconfined") {
    out.profile_digest = sha256_of("unconfined");
    return out;
  }
  static const Digest default_digest = sha256_of(default_seccomp_profile_json());
  out.profile_digest = profile.empty() ? default_digest : sha256_of(profile);

  // Compiling costs ~10 ms (libseccomp, two architectures) and every container
  // of a run uses the same few profiles: compile each (profile, caps) once per
  // process. Bounded so that a pathological caller cannot grow it forever.
  static std::mutex mu;
  static std::map<std::pair<Digest, uint64_t>, std::vector<sock_filter>> cache;
  const auto key = std::make_pair(out.profile_digest, caps.bits);
  {
    std::lock_guard lock(mu);
    if (auto it = cache.find(key); it != cache.end()) {
      out.filter = it->second;
      return out;
    }
  }
  Profile p;
  if (profile.empty()) {
    p = seccomp::default_profile();
  } else {
    LS_TRY_ASSIGN(p, seccomp::parse_profile(profile));
  }
  LS_TRY_ASSIGN(out.filter, compile(p, caps));
  std::lock_guard lock(mu);
  if (cache.size() >= 64) cache.clear();
  cache.emplace(key, out.filter);
  return out;
}

int load_seccomp(const SeccompProgram& program) noexcept {
  if (program.filter.empty()) return 0;
  sock_fprog prog{};
  prog.len = static_cast<unsigned short>(program.filter.size());
  prog.filter = const_cast<sock_filter*>(program.filter.data());
  if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0) return errno;
  return 0;
}

}  // namespace lockstep::executor
