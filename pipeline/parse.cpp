// The workflow parser: the document, the top level, and the typed readers
// that the job parser (parse_job.cpp) shares.
#include "pipeline/parse.hpp"

#include <cctype>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "common/utf8.hpp"
#include "pipeline/diagnostic.hpp"
#include "pipeline/expr.hpp"
#include "pipeline/parse_internal.hpp"
#include "pipeline/yaml_documents.hpp"

namespace lockstep::pipeline {

bool is_valid_id(std::string_view id) {
  if (id.empty() || !(std::isalpha(static_cast<unsigned char>(id[0])) || id[0] == '_')) {
    return false;
  }
  for (char c : id) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  }
  return true;
}

namespace detail {
namespace {

bool is_int_text(const std::string& s) {
  size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  if (i == s.size()) return false;
  for (; i < s.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return s.size() < 19;
}

bool is_float_text(const std::string& s) {
  size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  size_t digits = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++digits;
  }
  if (digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    size_t e = i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    if (i == e) return false;
  }
  return i == s.size();
}

// A plain scalar typed by the YAML 1.2 core schema (what GitHub uses: `yes`
// and `on` are strings).
OrderedValue plain_scalar(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  if (is_int_text(s)) return std::stoll(s);
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
    bool ok = true;
    for (char c : s.substr(2)) {
      ok = ok && (s[1] == 'x' ? std::isxdigit(static_cast<unsigned char>(c)) != 0
                              : (c >= '0' && c <= '7'));
    }
    if (ok && s.size() < 16) return std::stoll(s.substr(2), nullptr, s[1] == 'x' ? 16 : 8);
  }
  if (is_float_text(s)) {
    double d = std::strtod(s.c_str(), nullptr);  // 1e999 -> inf, no exception
    if (!std::isfinite(d)) return s;
    if (std::trunc(d) == d && std::fabs(d) < 9e15) return static_cast<int64_t>(d);
    return d;
  }
  return s;
}

}  // namespace

WorkflowParser::WorkflowParser(std::string_view source, const std::string& file)
    : source_(source), file_(file) {}

SourceLoc WorkflowParser::loc(const YAML::Node& n) const {
  YAML::Mark m = n.Mark();
  // yaml-cpp marks an empty value at the next token; point at its key instead.
  if (n.IsNull() && n.Tag().empty()) return null_loc_;
  if (m.is_null()) return {};
  return {m.line + 1, m.column + 1};
}

tl::unexpected<Error> WorkflowParser::error(SourceLoc at, std::string message) const {
  return tl::unexpected(workflow_error(file_, source_, at, std::move(message)));
}

std::string WorkflowParser::kind_of(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a sequence";
    case YAML::NodeType::Scalar:
      return "a string";
    default:
      return "nothing";
  }
}

Status WorkflowParser::check_keys(const YAML::Node& map, const Keys& known, const Keys& unsupported,
                                  const std::string& where) const {
  std::set<std::string> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    const YAML::Node k = it->first;
    if (!k.IsScalar()) return error(k, "expected a string key in " + where + ", got " + kind_of(k));
    const std::string& key = k.Scalar();
    if (has_expression(key)) return unsupported_key(k, where);
    if (!seen.insert(key).second) return error(k, "duplicate key '" + key + "' in " + where);
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    if (std::find(unsupported.begin(), unsupported.end(), key) != unsupported.end()) {
      return error(k, "'" + key + "' in " + where + " is not supported by lockstep");
    }
    std::vector<std::string_view> cands = known;
    return error(k, "unknown key '" + key + "' in " + where + did_you_mean(key, cands));
  }
  return {};
}

tl::unexpected<Error> WorkflowParser::unsupported_key(const YAML::Node& key,
                                                      const std::string& where) const {
  // GitHub evaluates such a key; lockstep does so in strategy.matrix only.
  return error(key, "an expression as a key ('" + key.Scalar() + "') in " + where +
                        " is not supported by lockstep (only in strategy.matrix)");
}

Status WorkflowParser::expect_map(const YAML::Node& n, const std::string& what) const {
  if (!n.IsMap()) return error(n, "expected a mapping for " + what + ", got " + kind_of(n));
  return {};
}

Status WorkflowParser::expect_seq(const YAML::Node& n, const std::string& what) const {
  if (!n.IsSequence()) return error(n, "expected a sequence for " + what + ", got " + kind_of(n));
  return {};
}

Status WorkflowParser::check_tag(const YAML::Node& n) const {
  // A plain value starting with '!' is a YAML tag, not text: `if: !cancelled()`
  // would silently become an empty condition. GitHub's docs warn about it;
  // here it is an error.
  const std::string& tag = n.Tag();
  if (tag.empty() || tag == "?" || tag == "!" || tag.rfind("tag:yaml.org,2002:", 0) == 0) return {};
  return error(n, "YAML reads '" + tag +
                      "' as a tag; quote a value that starts with '!' or wrap it in ${{ }}");
}

Result<std::string> WorkflowParser::scalar(const YAML::Node& n, const std::string& what) const {
  if (!n.IsScalar()) return error(n, "expected a string for " + what + ", got " + kind_of(n));
  LS_TRY(check_tag(n));
  return n.Scalar();
}

Result<std::vector<std::string>> WorkflowParser::string_or_list(const YAML::Node& n,
                                                                const std::string& what) const {
  if (n.IsScalar()) {
    LS_TRY(check_tag(n));
    return std::vector<std::string>{n.Scalar()};
  }
  if (!n.IsSequence()) {
    return error(n, "expected a string or a sequence for " + what + ", got " + kind_of(n));
  }
  return string_list(n, what);
}

Result<std::vector<std::string>> WorkflowParser::string_list(const YAML::Node& n,
                                                             const std::string& what) const {
  LS_TRY(expect_seq(n, what));
  std::vector<std::string> out;
  for (const auto& e : n) {
    if (!e.IsScalar()) {
      return error(e, "expected strings in " + what + ", got " + kind_of(e));
    }
    LS_TRY(check_tag(e));
    out.push_back(e.Scalar());
  }
  return out;
}

Result<EnvList> WorkflowParser::env_map(const YAML::Node& n, const std::string& what) const {
  LS_TRY(expect_map(n, what));
  EnvList out;
  std::set<std::string> seen;
  for (auto it = n.begin(); it != n.end(); ++it) {
    null_loc_ = loc(it->first);
    if (!it->first.IsScalar()) return error(it->first, "expected a string key in " + what);
    const std::string key = it->first.Scalar();
    if (has_expression(key)) return unsupported_key(it->first, what);
    if (!seen.insert(key).second) return error(it->first, "duplicate key '" + key + "' in " + what);
    std::string value;
    if (!it->second.IsNull()) {
      LS_TRY_ASSIGN(value, scalar(it->second, "'" + key + "' in " + what));
    }
    out.emplace_back(key, value);
  }
  return out;
}

Result<std::map<std::string, std::string>> WorkflowParser::string_map(
    const YAML::Node& n, const std::string& what) const {
  LS_TRY_ASSIGN(EnvList list, env_map(n, what));
  return std::map<std::string, std::string>(list.begin(), list.end());
}

Status WorkflowParser::check_expr(const YAML::Node& n, const std::string& text,
                                  const std::string& what, bool condition,
                                  std::vector<ExprSite>* sites) const {
  if (!condition && !has_expression(text)) return {};
  auto ok = condition ? check_condition(text) : check_template(text);
  if (!ok) return error(n, ok.error().message());
  if (sites) sites->push_back({what, text, loc(n), condition});
  return {};
}

Result<std::string> WorkflowParser::bool_or_expr(const YAML::Node& n, const std::string& what,
                                                 const std::string& site,
                                                 std::vector<ExprSite>* sites) const {
  LS_TRY_ASSIGN(std::string s, scalar(n, what));
  if (has_expression(s)) {
    LS_TRY(check_expr(n, s, site, false, sites));
    return s;
  }
  if (s != "true" && s != "false") {
    return error(n, "expected true, false or an expression for " + what + ", got '" + s + "'");
  }
  return s;
}

Result<std::string> WorkflowParser::number_or_expr(const YAML::Node& n, const std::string& what,
                                                   const std::string& site,
                                                   std::vector<ExprSite>* sites) const {
  LS_TRY_ASSIGN(std::string s, scalar(n, what));
  if (has_expression(s)) {
    LS_TRY(check_expr(n, s, site, false, sites));
    return s;
  }
  OrderedValue v = plain_scalar(s);
  if (!v.is_number() || v.get<double>() <= 0) {
    return error(n,
                 "expected a positive number or an expression for " + what + ", got '" + s + "'");
  }
  return s;
}

Result<OrderedValue> WorkflowParser::to_value(const YAML::Node& n, const std::string& what,
                                              std::vector<ExprSite>* sites) const {
  switch (n.Type()) {
    case YAML::NodeType::Scalar: {
      LS_TRY(check_tag(n));
      const std::string& s = n.Scalar();
      LS_TRY(check_expr(n, s, what, false, sites));
      if (n.Tag() == "?") return plain_scalar(s);
      return OrderedValue(s);
    }
    case YAML::NodeType::Sequence: {
      OrderedValue out = OrderedValue::array();
      for (const auto& e : n) {
        LS_TRY_ASSIGN(OrderedValue v, to_value(e, what, sites));
        out.push_back(std::move(v));
      }
      return out;
    }
    case YAML::NodeType::Map: {
      OrderedValue out = OrderedValue::object();
      for (auto it = n.begin(); it != n.end(); ++it) {
        null_loc_ = loc(it->first);
        if (!it->first.IsScalar()) return error(it->first, "expected a string key in " + what);
        const std::string key = it->first.Scalar();
        if (out.contains(key)) return error(it->first, "duplicate key '" + key + "' in " + what);
        // A key may be an expression: evaluated with the values.
        LS_TRY(check_expr(it->first, key, "a key in " + what, false, sites));
        LS_TRY_ASSIGN(out[key], to_value(it->second, what, sites));
      }
      return out;
    }
    default:
      return OrderedValue(nullptr);
  }
}

// `concurrency: GROUP` or `{group: GROUP, cancel-in-progress: BOOL}`.
Result<Concurrency> WorkflowParser::concurrency(const YAML::Node& n) const {
  Concurrency c;
  c.loc = loc(n);
  c.cancel_in_progress = "false";
  if (n.IsScalar()) {
    LS_TRY_ASSIGN(c.group, scalar(n, "'concurrency'"));
  } else {
    LS_TRY(expect_map(n, "'concurrency'"));
    bool has_group = false;
    for (auto it = n.begin(); it != n.end(); ++it) {
      const std::string key = it->first.IsScalar() ? it->first.Scalar() : "";
      if (key == "group") {
        LS_TRY_ASSIGN(c.group, scalar(it->second, "'concurrency.group'"));
        has_group = true;
      } else if (key == "cancel-in-progress") {
        LS_TRY_ASSIGN(c.cancel_in_progress,
                      bool_or_expr(it->second, "'concurrency.cancel-in-progress'",
                                   "concurrency.cancel-in-progress", nullptr));
      } else {
        return error(it->first, "unknown key '" + key +
                                    "' in 'concurrency' (expected group, cancel-in-progress)");
      }
    }
    if (!has_group) return error(n, "'concurrency' needs a 'group'");
  }
  if (c.group.empty()) return error(n, "'concurrency' group is empty");
  LS_TRY(check_expr(n, c.group, "concurrency group", false, nullptr));
  return c;
}

Result<RunDefaults> WorkflowParser::defaults(const YAML::Node& n, const std::string& where) const {
  LS_TRY(expect_map(n, "'defaults' of " + where));
  LS_TRY(check_keys(n, {"run"}, {}, "'defaults' of " + where));
  RunDefaults out;
  if (!n["run"]) return out;
  null_loc_ = loc(n);
  const YAML::Node run = n["run"];
  const std::string what = "'defaults.run' of " + where;
  LS_TRY(expect_map(run, what));
  LS_TRY(check_keys(run, {"shell", "working-directory"}, {}, what));
  if (run["shell"]) {
    LS_TRY_ASSIGN(out.shell, scalar(run["shell"], "'shell' in " + what));
  }
  if (run["working-directory"]) {
    LS_TRY_ASSIGN(out.working_directory,
                  scalar(run["working-directory"], "'working-directory' in " + what));
  }
  return out;
}

Result<Workflow> WorkflowParser::run() {
  wf_.file = file_;
  wf_.source = std::string(source_);
  std::vector<YAML::Node> docs;
  try {
    docs = load_yaml_documents(std::string(source_));
  } catch (const YAML::ParserException& e) {
    SourceLoc at = e.mark.is_null() ? SourceLoc{} : SourceLoc{e.mark.line + 1, e.mark.column + 1};
    return error(at, "malformed YAML: " + e.msg);
  } catch (const YAML::Exception& e) {
    return error(SourceLoc{}, std::string("malformed YAML: ") + e.what());
  }
  if (docs.empty() || docs[0].IsNull()) return error(SourceLoc{1, 1}, "the workflow is empty");
  if (docs.size() > 1) {
    return error(loc(docs[1]), "the file holds " + std::to_string(docs.size()) +
                                   " YAML documents; a workflow is one");
  }
  const YAML::Node& root = docs[0];
  if (auto m = find_scalar_not_utf8(root))
    return error(SourceLoc{m->line + 1, m->column + 1}, kNotUtf8AfterEscapes);
  null_loc_ = {1, 1};
  LS_TRY(expect_map(root, "the workflow"));
  const std::string where = "the workflow";
  LS_TRY(check_keys(
      root, {"name", "run-name", "on", "env", "defaults", "jobs", "permissions", "concurrency"}, {},
      where));
  YAML::Node jobs_key;
  YAML::Node jobs_value;
  bool has_jobs = false;
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string key = it->first.Scalar();
    const YAML::Node v = it->second;
    null_loc_ = loc(it->first);
    if (key == "name") {
      LS_TRY_ASSIGN(wf_.name, scalar(v, "'name' of the workflow"));
    } else if (key == "run-name") {
      LS_TRY_ASSIGN(wf_.run_name, scalar(v, "'run-name' of the workflow"));
      LS_TRY(check_expr(v, wf_.run_name, "'run-name'", false, nullptr));
    } else if (key == "env") {
      LS_TRY_ASSIGN(wf_.env, env_map(v, "'env' of the workflow"));
      for (const auto& [k, value] : wf_.env) {
        LS_TRY(check_expr(v[k], value, "env '" + k + "' of the workflow", false, nullptr));
      }
    } else if (key == "defaults") {
      LS_TRY_ASSIGN(wf_.defaults, defaults(v, "the workflow"));
    } else if (key == "jobs") {
      jobs_key = it->first;
      jobs_value = it->second;
      has_jobs = true;
    } else if (key == "concurrency") {
      LS_TRY_ASSIGN(wf_.concurrency, concurrency(v));
      wf_.ignored.push_back({key, where, loc(it->first)});
    } else if (key == "permissions") {
      wf_.ignored.push_back({key, where, loc(it->first)});
    } else if (key == "on") {
      // Events are ignored (lockstep runs what it is asked to run), except
      // workflow_call: its inputs, secrets and outputs.
      LS_TRY(on_trigger(v));
    }
  }
  if (!has_jobs) return error(SourceLoc{1, 1}, "the workflow has no 'jobs'");
  null_loc_ = loc(jobs_key);
  LS_TRY(expect_map(jobs_value, "'jobs'"));
  if (jobs_value.size() == 0) return error(jobs_key, "'jobs' is empty");
  std::set<std::string> ids;
  for (auto it = jobs_value.begin(); it != jobs_value.end(); ++it) {
    if (!it->first.IsScalar()) {
      return error(it->first, "expected a job id in 'jobs', got " + kind_of(it->first));
    }
    const std::string id = it->first.Scalar();
    if (!is_valid_id(id)) {
      return error(it->first, "invalid job id '" + id +
                                  "': a job id starts with a letter or '_' and holds only "
                                  "letters, digits, '-' and '_'");
    }
    if (!ids.insert(id).second) return error(it->first, "duplicate job id '" + id + "'");
    null_loc_ = loc(it->first);
    LS_TRY_ASSIGN(Job j, job(id, it->first, it->second));
    wf_.jobs.push_back(std::move(j));
  }
  return std::move(wf_);
}

}  // namespace detail

Result<Workflow> parse_workflow(std::string_view yaml, const std::string& file) {
  // yaml-cpp passes bytes through (and reads text with a NUL near its start
  // as UTF-16): without this, a key or value that is not UTF-8 would reach
  // nlohmann::json (the matrix, expressions) and throw there.
  LS_TRY(check_yaml_text(yaml, file, ErrorKind::kWorkflow));
  // The parser checks node types before it indexes them; this is the
  // backstop that keeps a yaml-cpp exception from escaping as a crash.
  try {
    return detail::WorkflowParser(yaml, file).run();
  } catch (const YAML::Exception& e) {
    SourceLoc at = e.mark.is_null() ? SourceLoc{} : SourceLoc{e.mark.line + 1, e.mark.column + 1};
    return fail(workflow_error(file, yaml, at, "malformed YAML: " + e.msg));
  }
}

Result<Workflow> load_workflow(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    return fail(
        Error::from_errno("read workflow " + path.string(), err).set_kind(ErrorKind::kWorkflow));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return fail(Error("read workflow " + path.string() + ": I/O error", 0, ErrorKind::kWorkflow));
  }
  return parse_workflow(text.str(), path.string());
}

}  // namespace lockstep::pipeline
