#include "pipeline/options.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

namespace lockstep::pipeline {
namespace {

tl::unexpected<Error> bad_option(std::string message) {
  return fail(std::move(message), ErrorKind::kWorkflow);
}

std::string upper_cap(std::string_view v) {
  std::string out;
  for (char c : v) out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (out.rfind("CAP_", 0) == 0) out.erase(0, 4);
  return out;
}

// "1.5" -> 1500; at most three decimals (docker's NanoCPUs is finer, but a
// milli-CPU is the unit cgroups round to anyway).
Result<int64_t> parse_cpus(std::string_view v) {
  int64_t whole = 0, frac = 0;
  int frac_digits = 0;
  size_t i = 0;
  bool any = false;
  while (i < v.size() && std::isdigit(static_cast<unsigned char>(v[i]))) {
    whole = whole * 10 + (v[i++] - '0');
    any = true;
    if (whole > 1000000) break;
  }
  if (i < v.size() && v[i] == '.') {
    ++i;
    while (i < v.size() && std::isdigit(static_cast<unsigned char>(v[i]))) {
      if (frac_digits == 3) return tl::unexpected(Error());
      frac = frac * 10 + (v[i++] - '0');
      ++frac_digits;
      any = true;
    }
  }
  if (!any || i != v.size() || whole > 1000000) return tl::unexpected(Error());
  while (frac_digits++ < 3) frac *= 10;
  int64_t milli = whole * 1000 + frac;
  if (milli <= 0) return tl::unexpected(Error());
  return milli;
}

Result<int64_t> parse_int(std::string_view v) {
  if (v.empty() || v.size() > 18) return tl::unexpected(Error());
  size_t i = v[0] == '-' ? 1 : 0;
  if (i == v.size()) return tl::unexpected(Error());
  int64_t n = 0;
  for (; i < v.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(v[i]))) return tl::unexpected(Error());
    n = n * 10 + (v[i] - '0');
  }
  return v[0] == '-' ? -n : n;
}

enum class Opt {
  kCpus,
  kMemory,
  kMemorySwap,
  kPidsLimit,
  kNetwork,
  kUser,
  kEnv,
  kWorkdir,
  kCapAdd,
  kCapDrop,
  kHostname,
  kHealthCmd,
  kHealthInterval,
  kHealthTimeout,
  kHealthRetries,
  kHealthStartPeriod,
  kEntrypoint,
};

struct OptSpec {
  std::string_view long_name;
  std::string_view short_name;
  Opt opt;
};

constexpr OptSpec kOptions[] = {
    {"--cpus", "", Opt::kCpus},
    {"--memory", "-m", Opt::kMemory},
    {"--memory-swap", "", Opt::kMemorySwap},
    {"--pids-limit", "", Opt::kPidsLimit},
    {"--network", "", Opt::kNetwork},
    {"--user", "-u", Opt::kUser},
    {"--env", "-e", Opt::kEnv},
    {"--workdir", "-w", Opt::kWorkdir},
    {"--cap-add", "", Opt::kCapAdd},
    {"--cap-drop", "", Opt::kCapDrop},
    {"--hostname", "-h", Opt::kHostname},
    {"--health-cmd", "", Opt::kHealthCmd},
    {"--health-interval", "", Opt::kHealthInterval},
    {"--health-timeout", "", Opt::kHealthTimeout},
    {"--health-retries", "", Opt::kHealthRetries},
    {"--health-start-period", "", Opt::kHealthStartPeriod},
    {"--entrypoint", "", Opt::kEntrypoint},
};

Status apply(ContainerOptions& o, const OptSpec& spec, const std::string& v) {
  std::string name(spec.long_name);
  auto invalid = [&](std::string_view expected) {
    return bad_option("invalid value '" + v + "' for '" + name + "': expected " +
                      std::string(expected));
  };
  switch (spec.opt) {
    case Opt::kCpus: {
      auto m = parse_cpus(v);
      if (!m) return invalid("a positive number of CPUs such as 1.5 (at most 3 decimals)");
      o.cpus_milli = *m;
      return {};
    }
    case Opt::kMemory:
    case Opt::kMemorySwap: {
      if (spec.opt == Opt::kMemorySwap && v == "-1") {
        o.memory_swap_bytes = -1;
        return {};
      }
      auto b = parse_size(v);
      if (!b) return invalid("a size such as 512m or 1g");
      (spec.opt == Opt::kMemory ? o.memory_bytes : o.memory_swap_bytes) = *b;
      return {};
    }
    case Opt::kPidsLimit: {
      auto n = parse_int(v);
      if (!n) return invalid("an integer");
      o.pids_limit = *n;
      return {};
    }
    case Opt::kNetwork:
      if (v != "none" && v != "host" && v != "egress" && v != "bridge") {
        return bad_option("unsupported network '" + v +
                          "' for '--network' (lockstep supports egress, none and host)");
      }
      o.network = v == "bridge" ? "egress" : v;  // docker's name for the same
      return {};
    case Opt::kUser:
      if (v.empty()) return invalid("a user such as 1000:1000");
      o.user = v;
      return {};
    case Opt::kEnv: {
      size_t eq = v.find('=');
      if (eq == std::string::npos || eq == 0) return invalid("NAME=VALUE");
      o.env.emplace_back(v.substr(0, eq), v.substr(eq + 1));
      return {};
    }
    case Opt::kWorkdir:
      if (v.empty() || v[0] != '/') return invalid("an absolute path");
      o.workdir = v;
      return {};
    case Opt::kCapAdd:
    case Opt::kCapDrop:
      if (v.empty()) return invalid("a capability name such as NET_ADMIN");
      (spec.opt == Opt::kCapAdd ? o.cap_add : o.cap_drop).push_back(upper_cap(v));
      return {};
    case Opt::kHostname:
      if (v.empty()) return invalid("a host name");
      o.hostname = v;
      return {};
    case Opt::kEntrypoint:
      o.entrypoint = v;
      return {};
    case Opt::kHealthCmd:
      o.health.cmd = v;
      return {};
    case Opt::kHealthInterval:
    case Opt::kHealthTimeout:
    case Opt::kHealthStartPeriod: {
      auto ms = parse_duration_ms(v);
      if (!ms) return invalid("a duration such as 10s or 1m30s");
      (spec.opt == Opt::kHealthInterval  ? o.health.interval_ms
       : spec.opt == Opt::kHealthTimeout ? o.health.timeout_ms
                                         : o.health.start_period_ms) = *ms;
      return {};
    }
    case Opt::kHealthRetries: {
      auto n = parse_int(v);
      if (!n || *n < 0) return invalid("a non-negative integer");
      o.health.retries = *n;
      return {};
    }
  }
  return {};
}

}  // namespace

Result<std::vector<std::string>> split_shell_words(std::string_view text) {
  std::vector<std::string> words;
  std::string cur;
  bool in_word = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (in_word) words.push_back(std::move(cur));
      cur.clear();
      in_word = false;
      continue;
    }
    in_word = true;
    if (c == '\\') {
      if (i + 1 >= text.size()) return bad_option("a lone '\\' at the end");
      if (text[i + 1] != '\n') cur += text[i + 1];
      ++i;
    } else if (c == '\'') {
      size_t end = text.find('\'', i + 1);
      if (end == std::string_view::npos) return bad_option("unterminated ' quote");
      cur.append(text.substr(i + 1, end - i - 1));
      i = end;
    } else if (c == '"') {
      size_t j = i + 1;
      for (; j < text.size() && text[j] != '"'; ++j) {
        if (text[j] == '\\' && j + 1 < text.size() &&
            (text[j + 1] == '"' || text[j + 1] == '\\' || text[j + 1] == '$' ||
             text[j + 1] == '`')) {
          ++j;
        }
        cur += text[j];
      }
      if (j >= text.size()) return bad_option("unterminated \" quote");
      i = j;
    } else {
      cur += c;
    }
  }
  if (in_word) words.push_back(std::move(cur));
  return words;
}

Result<int64_t> parse_size(std::string_view text) {
  std::string_view s = text;
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  std::string num(s.substr(0, i));
  std::string_view unit = s.substr(i);
  if (!unit.empty() && unit[0] == ' ') unit.remove_prefix(1);
  char* end = nullptr;
  double value = num.empty() ? -1 : std::strtod(num.c_str(), &end);
  if (num.empty() || *end != '\0' || value < 0 || std::count(num.begin(), num.end(), '.') > 1) {
    return bad_option("invalid size '" + std::string(text) + "'");
  }
  int64_t mult = 1;
  if (!unit.empty()) {
    switch (std::tolower(static_cast<unsigned char>(unit[0]))) {
      case 'b':
        mult = 1;
        break;
      case 'k':
        mult = int64_t{1} << 10;
        break;
      case 'm':
        mult = int64_t{1} << 20;
        break;
      case 'g':
        mult = int64_t{1} << 30;
        break;
      case 't':
        mult = int64_t{1} << 40;
        break;
      case 'p':
        mult = int64_t{1} << 50;
        break;
      default:
        return bad_option("invalid size '" + std::string(text) + "'");
    }
    std::string_view rest = unit.substr(1);
    if (mult != 1 && !rest.empty() && (rest[0] == 'i' || rest[0] == 'I')) rest.remove_prefix(1);
    if (mult != 1 && !rest.empty() && (rest[0] == 'b' || rest[0] == 'B')) rest.remove_prefix(1);
    if (!rest.empty()) return bad_option("invalid size '" + std::string(text) + "'");
  }
  double bytes = value * static_cast<double>(mult);
  if (bytes >= 9.2e18) return bad_option("invalid size '" + std::string(text) + "'");
  return static_cast<int64_t>(bytes);
}

Result<int64_t> parse_duration_ms(std::string_view text) {
  auto invalid = [&] { return bad_option("invalid duration '" + std::string(text) + "'"); };
  if (text.empty()) return invalid();
  if (text == "0") return 0;
  double total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
      ++i;
    if (i == start) return invalid();
    std::string num(text.substr(start, i - start));
    char* end = nullptr;
    double v = std::strtod(num.c_str(), &end);
    if (*end != '\0') return invalid();
    size_t ustart = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    std::string_view unit = text.substr(ustart, i - ustart);
    double ms;
    if (unit == "ns")
      ms = 1e-6;
    else if (unit == "us" || unit == "\xc2\xb5s")
      ms = 1e-3;
    else if (unit == "ms")
      ms = 1;
    else if (unit == "s")
      ms = 1000;
    else if (unit == "m")
      ms = 60000;
    else if (unit == "h")
      ms = 3600000;
    else
      return invalid();
    total += v * ms;
  }
  if (total > 9e15) return invalid();
  return static_cast<int64_t>(std::llround(total));
}

Result<ContainerOptions> parse_container_options(std::string_view text) {
  auto words = split_shell_words(text);
  if (!words) return bad_option(words.error().message() + " in container options");
  ContainerOptions out;
  for (size_t i = 0; i < words->size(); ++i) {
    const std::string& w = (*words)[i];
    if (w.size() < 2 || w[0] != '-') {
      return bad_option("unexpected argument '" + w +
                        "' in container options (options start with '-')");
    }
    std::string name = w;
    std::optional<std::string> value;
    size_t eq = w.find('=');
    if (w.rfind("--", 0) == 0 && eq != std::string::npos) {
      name = w.substr(0, eq);
      value = w.substr(eq + 1);
    }
    const OptSpec* spec = nullptr;
    for (const auto& s : kOptions) {
      if (name == s.long_name || (!s.short_name.empty() && name == s.short_name)) spec = &s;
    }
    if (!spec) return bad_option("unknown option '" + name + "' in container options");
    if (!value) {
      if (i + 1 >= words->size()) {
        return bad_option("option '" + name + "' needs a value");
      }
      value = (*words)[++i];
    }
    LS_TRY(apply(out, *spec, *value));
  }
  return out;
}

}  // namespace lockstep::pipeline
