#include "runner/cli/cli.hpp"

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace lockstep::runner {

std::optional<std::string> ParsedArgs::get(const std::string& name) const {
  auto it = values.find(name);
  if (it == values.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::vector<std::string> ParsedArgs::all(const std::string& name) const {
  auto it = values.find(name);
  return it == values.end() ? std::vector<std::string>{} : it->second;
}

CommandLine::CommandLine(std::string usage, std::string summary, std::vector<OptionSpec> options)
    : usage_(std::move(usage)), summary_(std::move(summary)), options_(std::move(options)) {}

const OptionSpec* CommandLine::find(const std::string& name) const {
  for (const auto& o : options_)
    if (o.name == name) return &o;
  return nullptr;
}

const OptionSpec* CommandLine::find_short(char c) const {
  for (const auto& o : options_)
    if (o.short_name == c) return &o;
  return nullptr;
}

bool CommandLine::wants_help(const std::vector<std::string>& args) {
  for (const auto& a : args) {
    if (a == "--") break;
    if (a == "--help" || a == "-h") return true;
  }
  return false;
}

Result<ParsedArgs> CommandLine::parse(const std::vector<std::string>& args) const {
  ParsedArgs out;
  bool only_positionals = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (only_positionals || a.size() < 2 || a[0] != '-') {
      out.positionals.push_back(a);
      continue;
    }
    if (a == "--") {
      only_positionals = true;
      continue;
    }
    const OptionSpec* spec = nullptr;
    std::optional<std::string> inline_value;
    std::string shown = a;
    if (a.rfind("--", 0) == 0) {
      std::string name = a.substr(2);
      if (auto eq = name.find('='); eq != std::string::npos) {
        inline_value = name.substr(eq + 1);
        name = name.substr(0, eq);
        shown = "--" + name;
      }
      spec = find(name);
      if (!spec) {
        std::vector<std::string> names;
        for (const auto& o : options_) names.push_back(o.name);
        std::string hint = closest_match(name, names);
        return fail("unknown option '--" + name + "'" +
                        (hint.empty() ? "" : " (did you mean '--" + hint + "'?)"),
                    ErrorKind::kUsage);
      }
    } else {
      if (a.size() != 2) return fail("unknown option '" + a + "'", ErrorKind::kUsage);
      spec = find_short(a[1]);
      if (!spec) return fail("unknown option '" + a + "'", ErrorKind::kUsage);
    }
    auto& slot = out.values[spec->name];
    if (!slot.empty() && !spec->repeatable)
      return fail("option '" + shown + "' given more than once", ErrorKind::kUsage);
    if (spec->takes_value) {
      if (inline_value) {
        slot.push_back(*inline_value);
      } else {
        if (i + 1 >= args.size())
          return fail("option '" + shown + "' needs a value (" + spec->value_name + ")",
                      ErrorKind::kUsage);
        slot.push_back(args[++i]);
      }
    } else {
      if (inline_value) return fail("option '" + shown + "' takes no value", ErrorKind::kUsage);
      slot.push_back("");
    }
  }
  return out;
}

std::string CommandLine::help() const {
  std::ostringstream s;
  s << "usage: " << usage_ << "\n\n" << summary_ << "\n";
  if (!options_.empty()) {
    s << "\noptions:\n";
    for (const auto& o : options_) {
      std::string left = "  ";
      if (o.short_name) left += std::string("-") + o.short_name + ", ";
      left += "--" + o.name;
      if (o.takes_value) left += " " + o.value_name;
      if (left.size() < 28)
        left.resize(28, ' ');
      else
        left += "  ";
      s << left << o.help << "\n";
    }
  }
  std::string help_left = "  -h, --help";
  help_left.resize(28, ' ');
  s << help_left << "show this help\n";
  return s.str();
}

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
  auto distance = [](const std::string& a, const std::string& b) {
    std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      cur[0] = i;
      for (size_t j = 1; j <= b.size(); ++j)
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
      std::swap(prev, cur);
    }
    return prev[b.size()];
  };
  std::string best;
  size_t best_d = 3;  // at most 2 edits away
  for (const auto& c : candidates) {
    size_t d = distance(word, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  return best;
}

OptionSpec mirror_spec() {
  return {"mirror",
          0,
          true,
          false,
          "URL",
          "reach registries through this pull-through mirror (default: $LOCKSTEP_MIRROR, "
          "then mirror: in .lockstep.yml)"};
}

OptionSpec server_spec() {
  return {"server",
          0,
          true,
          false,
          "URL",
          "read runs, records and logs from this lockstep server (job ids as JOB "
          "or JOB:ATTEMPT)"};
}

OptionSpec state_dir_spec() {
  return {"state-dir",
          0,
          true,
          false,
          "DIR",
          "lockstep's state (default: $LOCKSTEP_HOME, then /var/lib/lockstep for root, "
          "~/.local/share/lockstep for other users)"};
}

Result<long> parse_number(const std::string& value, const std::string& option, long min, long max) {
  long n = 0;
  bool ok = !value.empty() && value.size() <= 18 &&
            std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (ok) n = std::stol(value);
  if (!ok || n < min || n > max)
    return fail(option + " '" + value + "': expected a number from " + std::to_string(min) +
                    " to " + std::to_string(max),
                ErrorKind::kUsage);
  return n;
}

int report_error(const Error& e) {
  std::fprintf(stderr, "lockstep: error: %s\n", e.message().c_str());
  return (e.kind() == ErrorKind::kUsage || e.kind() == ErrorKind::kWorkflow) ? 2 : 1;
}

int usage_error(const std::string& message) {
  return report_error(Error(message, 0, ErrorKind::kUsage));
}

}  // namespace lockstep::runner
