#include "runner/verbs/run_options.hpp"

#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <cstring>

#include "common/fs.hpp"
#include "common/utf8.hpp"
#include "runner/engine/project.hpp"
#include "runner/engine/pull.hpp"

namespace lockstep::runner {

Result<std::pair<std::string, std::string>> split_key_value(const std::string& s,
                                                            const char* option, const char* form) {
  // Values become the job's env, secrets and hashes, which are text; the
  // message names the byte, never the value (it may be a secret).
  LS_TRY(check_utf8(s, std::string("--") + option, ErrorKind::kUsage));
  auto eq = s.find('=');
  if (eq == std::string::npos || eq == 0)
    return fail(std::string("--") + option + " '" + s + "': expected " + form, ErrorKind::kUsage);
  return std::make_pair(s.substr(0, eq), s.substr(eq + 1));
}

Result<std::filesystem::path> workflow_argument(const ParsedArgs& p) {
  if (p.positionals.size() > 1)
    return fail("expected at most one WORKFLOW, got " + std::to_string(p.positionals.size()),
                ErrorKind::kUsage);
  if (p.positionals.empty()) return default_workflow();
  return std::filesystem::path(p.positionals[0]);
}

Status add_selection_options(const ParsedArgs& p, RunOptions& o) {
  for (const auto& j : p.all("job")) o.jobs.push_back(j);
  for (const auto& m : p.all("matrix")) {
    LS_TRY_ASSIGN(auto kv, split_key_value(m, "matrix"));
    o.matrix_filter.push_back(kv);
  }
  // --env-file first: --env sets what a file also sets.
  for (const auto& f : p.all("env-file")) {
    LS_TRY_ASSIGN(pipeline::EnvList vars, read_dotenv_file(f, "env-file"));
    for (auto& kv : vars) o.env.push_back(std::move(kv));
  }
  for (const auto& e : p.all("env")) {
    LS_TRY_ASSIGN(auto kv, split_key_value(e, "env"));
    o.env.push_back(kv);
  }
  for (const auto& s : p.all("platform")) {
    LS_TRY_ASSIGN(auto kv, split_key_value(s, "platform", "LABEL=IMAGE"));
    o.platforms[kv.first] = kv.second;
  }
  return {};
}

Status add_secret_and_pull_options(const ParsedArgs& p, RunOptions& o) {
  for (const auto& s : p.all("secret")) {
    LS_TRY_ASSIGN(auto kv, split_key_value(s, "secret"));
    o.secrets[kv.first] = kv.second;
  }
  for (const auto& f : p.all("secret-file")) {
    LS_TRY_ASSIGN(auto secrets, read_secret_file(f));
    for (auto& [k, v] : secrets) o.secrets[k] = v;
  }
  o.insecure_registries = p.all("insecure-registry");
  LS_TRY_ASSIGN(o.mirror, mirror_option(p));
  if (auto u = p.get("actions-url")) {
    if (u->empty()) return fail("--actions-url: expected a URL or a directory", ErrorKind::kUsage);
    o.actions.base_url = *u;
    o.actions_url_given = true;
  }
  return {};
}

Result<std::string> mirror_option(const ParsedArgs& p) {
  if (auto m = p.get("mirror")) return normalize_mirror_url(*m, "--mirror");
  if (const char* env = std::getenv("LOCKSTEP_MIRROR"); env && *env)
    return normalize_mirror_url(env, "LOCKSTEP_MIRROR");
  return std::string();
}

namespace {

bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
}

bool is_blank(char c) {
  return c == ' ' || c == '\t';
}

}  // namespace

Result<pipeline::EnvList> parse_dotenv(std::string_view text, const std::string& file) {
  LS_TRY(check_utf8(text, file, ErrorKind::kUsage));
  std::string src(text);
  // CRLF files: line ends are line ends, in quoted values too.
  std::erase(src, '\r');
  pipeline::EnvList out;
  size_t pos = 0, line = 1;
  auto error = [&](size_t at_line, const std::string& what) {
    return fail(file + ":" + std::to_string(at_line) + ": " + what, ErrorKind::kUsage);
  };
  auto skip_blanks = [&] {
    while (pos < src.size() && is_blank(src[pos])) ++pos;
  };
  while (pos < src.size()) {
    const size_t start_line = line;
    skip_blanks();
    if (pos >= src.size()) break;
    if (src[pos] == '\n' || src[pos] == '#') {  // blank line, comment
      size_t nl = src.find('\n', pos);
      pos = nl == std::string::npos ? src.size() : nl + 1;
      ++line;
      continue;
    }
    if (src.compare(pos, 7, "export ") == 0 || src.compare(pos, 7, "export\t") == 0) {
      pos += 7;
      skip_blanks();
    }
    size_t name_start = pos;
    while (pos < src.size() && is_name_char(src[pos])) ++pos;
    std::string name = src.substr(name_start, pos - name_start);
    skip_blanks();
    if (name.empty() || pos >= src.size() || src[pos] != '=') {
      size_t nl = src.find('\n', name_start);
      std::string shown = src.substr(name_start, nl == std::string::npos ? nl : nl - name_start);
      if (shown.find('=') != std::string::npos && !name.empty())
        return error(start_line, "invalid name '" + shown.substr(0, shown.find('=')) +
                                     "' (names are letters, digits, '_', '.' and '-')");
      return error(start_line, "expected KEY=VALUE");
    }
    ++pos;  // '='
    skip_blanks();
    std::string value;
    char quote = pos < src.size() ? src[pos] : '\0';
    if (quote == '"' || quote == '\'') {
      ++pos;
      bool closed = false;
      while (pos < src.size()) {
        char c = src[pos++];
        if (c == quote) {
          closed = true;
          break;
        }
        if (c == '\n') ++line;
        if (c == '\\' && quote == '"' && pos < src.size()) {
          char e = src[pos++];
          switch (e) {
            case 'n':
              value += '\n';
              break;
            case 'r':
              value += '\r';
              break;
            case 't':
              value += '\t';
              break;
            case 'a':
              value += '\a';
              break;
            case 'b':
              value += '\b';
              break;
            case 'f':
              value += '\f';
              break;
            case 'v':
              value += '\v';
              break;
            case '\\':
            case '"':
            case '\'':
              value += e;
              break;
            default:  // not an escape: kept as written
              value += '\\';
              value += e;
              if (e == '\n') ++line;
          }
          continue;
        }
        value += c;
      }
      if (!closed)
        return error(start_line, std::string("the value of ") + name + " opens a " +
                                     (quote == '"' ? "double" : "single") +
                                     "-quoted string that never closes");
      skip_blanks();
      if (pos < src.size() && src[pos] != '\n' && src[pos] != '#')
        return error(line, "unexpected text after the closing quote of " + name);
    } else {
      // Unquoted: to the end of the line; " #" starts a comment.
      size_t v_start = pos;
      while (pos < src.size() && src[pos] != '\n' &&
             !(src[pos] == '#' && pos > v_start && is_blank(src[pos - 1])))
        ++pos;
      value = src.substr(v_start, pos - v_start);
      while (!value.empty() && is_blank(value.back())) value.pop_back();
    }
    size_t nl = src.find('\n', pos);
    pos = nl == std::string::npos ? src.size() : nl + 1;
    ++line;
    bool replaced = false;
    for (auto& [k, v] : out)
      if (k == name) {
        v = value;  // the last one wins, as in a shell
        replaced = true;
      }
    if (!replaced) out.emplace_back(std::move(name), std::move(value));
  }
  return out;
}

Result<pipeline::EnvList> read_dotenv_file(const std::string& f, const char* option) {
  auto text = read_file(f);
  if (!text)
    return fail(
        std::move(text.error()).context(std::string("--") + option).set_kind(ErrorKind::kUsage));
  return parse_dotenv(*text, f);
}

Result<std::map<std::string, std::string>> read_secret_file(const std::string& f) {
  LS_TRY_ASSIGN(pipeline::EnvList list, read_dotenv_file(f, "secret-file"));
  return std::map<std::string, std::string>(list.begin(), list.end());
}

Status apply_config_mirror(const pipeline::ProjectConfig& config, std::string& mirror) {
  if (!mirror.empty() || config.mirror.empty()) return {};
  auto m = normalize_mirror_url(config.mirror, ".lockstep.yml mirror");
  if (!m) return fail(std::move(m.error()).set_kind(ErrorKind::kUsage));
  mirror = *m;
  return {};
}

void apply_config_actions(const pipeline::ProjectConfig& config, ActionsConfig& actions,
                          bool url_given) {
  auto place = [&](const std::string& u) {
    if (u.find("://") != std::string::npos || u.empty() || u[0] == '/' || config.file.empty())
      return u;
    return (std::filesystem::absolute(config.file).parent_path() / u).lexically_normal().string();
  };
  if (!url_given && !config.actions_url.empty()) actions.base_url = place(config.actions_url);
  for (const auto& [owner, url] : config.action_owners) actions.owners[owner] = place(url);
}

Status apply_project_config(const pipeline::ProjectConfig& config, RunOptions& o) {
  apply_config_actions(config, o.actions, o.actions_url_given);
  for (const auto& [label, image] : config.platforms) o.platforms.emplace(label, image);
  LS_TRY(apply_config_mirror(config, o.mirror));
  o.userns = o.userns || config.userns;
  o.default_options = config.default_options;
  o.egress_allow = config.egress_allow;
  o.egress_unpinned = config.egress_unpinned;
  o.egress_inspect = config.egress_inspect;
  for (const auto& f : config.egress_ca) {
    std::filesystem::path p(f);
    if (p.is_relative() && !config.file.empty())
      p = std::filesystem::absolute(config.file).parent_path() / p;
    o.egress_ca.push_back(p.lexically_normal());
    // Checked before anything runs; what the file holds, when the CA is made.
    if (::access(o.egress_ca.back().c_str(), R_OK) != 0)
      return fail(config.file + ": egress.ca: read " + o.egress_ca.back().string() + ": " +
                      std::strerror(errno),
                  ErrorKind::kUsage);
  }
  return {};
}

}  // namespace lockstep::runner
