#include "runner/verbs/cmd_diff.hpp"

#include "runner/records/fetch_view.hpp"

#include <cstdio>
#include <map>
#include <set>

#include "common/json.hpp"
#include "common/paths.hpp"
#include "runner/cli/cli.hpp"
#include "runner/records/server_client.hpp"

namespace lockstep::runner {

namespace {

constexpr size_t kMaxShown = 120;  // compact values longer than this are cut

std::string render(const RecordJson& v) {
  std::string s = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (s.size() > kMaxShown) s = s.substr(0, kMaxShown - 3) + "...";
  return s;
}

const char* kAbsent = "(absent)";

bool plain_key(const std::string& k) {
  if (k.empty()) return false;
  for (char c : k) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string line(const std::string& who, const FieldChange& c, const char* suffix = "") {
  return (who.empty() ? "" : who + ": ") + c.path + ": " + c.a + " -> " + c.b + suffix;
}

std::string short_hash(const std::string& h) {
  auto p = h.find(':');
  std::string hex = p == std::string::npos ? h : h.substr(p + 1);
  return hex.substr(0, 12);
}

// Sorted-key form of a matrix, so that matching ignores key order.
std::string matrix_key(const RecordJson& job) {
  return Json(member(job, "matrix")).dump();
}

bool already_shown(const std::vector<FieldChange>& shown, const FieldChange& c) {
  for (const auto& s : shown)
    if (s.a == c.a && s.b == c.b) return true;
  return false;
}

// Step documents (resolved commands and env) whose hashes differ. Their
// "previous" link only repeats that an earlier hash changed, and a change the
// job's document already showed (a job env var every step inherits) is not
// repeated per step.
void diff_step_inputs(const std::string& who, const RecordJson& sa, const RecordJson& sb,
                      std::vector<std::string>& lines, std::vector<FieldChange>& shown) {
  if (!sa.is_array() || !sb.is_array()) return;
  for (size_t i = 0; i < std::min(sa.size(), sb.size()); ++i) {
    if (str_or(sa[i], "env_hash") == str_or(sb[i], "env_hash")) continue;
    RecordJson da = member(sa[i], "env_doc"), db = member(sb[i], "env_doc");
    if (!da.is_object() || !db.is_object()) continue;
    da.erase("previous");
    db.erase("previous");
    std::vector<FieldChange> changes;
    diff_json(da, db, "", changes);
    std::string name = str_or(sa[i], "name");
    std::string step = "step " + std::to_string(i + 1) + (name.empty() ? "" : " (" + name + ")");
    for (const auto& c : changes) {
      if (already_shown(shown, c)) continue;
      lines.push_back(line(who + ": " + step, c));
      shown.push_back(c);
    }
  }
}

void diff_inputs(const std::string& who, const RecordJson& ja, const RecordJson& jb, RecordDiff& d,
                 std::vector<FieldChange>& shown) {
  const std::string ha = str_or(ja, "env_hash"), hb = str_or(jb, "env_hash");
  std::vector<std::string> lines;
  std::vector<FieldChange> job_shown;
  if (ha != hb || ha.empty()) {
    const RecordJson& da = member(ja, "env_doc");
    const RecordJson& db = member(jb, "env_doc");
    FieldChange hash{"env_hash", ha.empty() ? kAbsent : "\"" + ha + "\"",
                     hb.empty() ? kAbsent : "\"" + hb + "\""};
    std::vector<FieldChange> changes;
    bool docs = da.is_object() && db.is_object();
    if (docs) diff_json(da, db, "", changes);
    // A job skipped before it was hashed has no hash in either run: nothing
    // to compare unless its documents say otherwise.
    if (ha != hb && !docs)
      lines.push_back(line(who, hash, " (env_doc not recorded)"));
    else if (ha != hb && changes.empty())
      lines.push_back(line(who, hash, " (env_doc identical)"));
    for (const auto& c : changes) lines.push_back(line(who, c));
    job_shown = changes;
  }
  diff_step_inputs(who, member(ja, "steps"), member(jb, "steps"), lines, job_shown);
  if (lines.empty()) {
    d.identical.push_back(who + (ha.empty()
                                     ? ": no environment hash in either run"
                                     : ": inputs identical (env_hash " + short_hash(ha) + ")"));
    return;
  }
  d.inputs.insert(d.inputs.end(), lines.begin(), lines.end());
  shown.insert(shown.end(), job_shown.begin(), job_shown.end());
}

void diff_steps(const std::string& who, const RecordJson& sa, const RecordJson& sb, RecordDiff& d) {
  const size_t na = sa.is_array() ? sa.size() : 0, nb = sb.is_array() ? sb.size() : 0;
  for (size_t i = 0; i < std::max(na, nb); ++i) {
    const RecordJson& a = i < na ? sa[i] : member(RecordJson(), "");
    const RecordJson& b = i < nb ? sb[i] : member(RecordJson(), "");
    std::string name = str_or(i < na ? a : b, "name");
    std::string step = "step " + std::to_string(i + 1) + (name.empty() ? "" : " (" + name + ")");
    if (i >= na || i >= nb) {
      d.outputs.push_back(who + ": " + step + ": only in " + (i < na ? "A" : "B"));
      continue;
    }
    for (const char* key : {"outcome", "conclusion"}) {
      std::vector<FieldChange> c;
      diff_json(member(a, key), member(b, key), step + "." + key, c);
      for (const auto& x : c) d.outputs.push_back(line(who, x));
    }
  }
}

// name -> artifact object, in record order of first appearance.
std::vector<std::pair<std::string, const RecordJson*>> by_name(const RecordJson& list,
                                                               const char* key) {
  std::vector<std::pair<std::string, const RecordJson*>> out;
  if (!list.is_array()) return out;
  for (const auto& x : list) out.emplace_back(str_or(x, key), &x);
  return out;
}

const RecordJson* find_named(const std::vector<std::pair<std::string, const RecordJson*>>& v,
                             const std::string& name) {
  for (const auto& [n, p] : v)
    if (n == name) return p;
  return nullptr;
}

void diff_artifacts(const std::string& who, const RecordJson& la, const RecordJson& lb,
                    RecordDiff& d) {
  auto va = by_name(la, "name"), vb = by_name(lb, "name");
  for (const auto& [name, a] : va) {
    const RecordJson* b = find_named(vb, name);
    std::string art = "artifact " + name;
    if (!b) {
      d.outputs.push_back(who + ": " + art + ": only in A");
      continue;
    }
    std::vector<FieldChange> c;
    diff_json(member(*a, "digest"), member(*b, "digest"), art + ".digest", c);
    for (const auto& x : c) d.outputs.push_back(line(who, x));
    const RecordJson& fa = member(*a, "files");
    const RecordJson& fb = member(*b, "files");
    if (c.empty() || !fa.is_array() || !fb.is_array()) continue;
    auto pa = by_name(fa, "path"), pb = by_name(fb, "path");
    for (const auto& [path, f] : pa) {
      const RecordJson* g = find_named(pb, path);
      std::string file = art + ": file " + path;
      if (!g) {
        d.outputs.push_back(who + ": " + file + ": only in A");
        continue;
      }
      std::vector<FieldChange> fc;
      for (const char* key : {"digest", "size", "mode"})
        diff_json(member(*f, key), member(*g, key), key, fc);
      for (const auto& x : fc) d.outputs.push_back(line(who + ": " + file, x));
    }
    for (const auto& [path, g] : pb)
      if (!find_named(pa, path))
        d.outputs.push_back(who + ": " + art + ": file " + path + ": only in B");
  }
  for (const auto& [name, b] : vb)
    if (!find_named(va, name)) d.outputs.push_back(who + ": artifact " + name + ": only in B");
}

void diff_job_outputs(const std::string& who, const RecordJson& ja, const RecordJson& jb,
                      RecordDiff& d) {
  std::vector<FieldChange> c;
  diff_json(member(ja, "result"), member(jb, "result"), "result", c);
  diff_json(member(ja, "reason"), member(jb, "reason"), "reason", c);
  for (const auto& x : c) d.outputs.push_back(line(who, x));
  diff_steps(who, member(ja, "steps"), member(jb, "steps"), d);
  c.clear();
  diff_json(member(ja, "outputs"), member(jb, "outputs"), "outputs", c);
  for (const auto& x : c) d.outputs.push_back(line(who, x));
  diff_artifacts(who, member(ja, "artifacts"), member(jb, "artifacts"), d);
  diff_fetches(who, ja, jb, d.outputs);
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t nl = s.find('\n', pos);
    if (nl == std::string::npos) {
      if (pos < s.size()) lines.push_back(s.substr(pos));
      break;
    }
    lines.push_back(s.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return lines;
}

// Multi-line strings (step scripts) are compared line by line: one change
// per differing line, `path (line N)`, at most kMaxLines of them.
void diff_lines(const std::string& a, const std::string& b, const std::string& prefix,
                std::vector<FieldChange>& out) {
  constexpr size_t kMaxLines = 5;
  std::vector<std::string> la = split_lines(a), lb = split_lines(b);
  size_t shown = 0, more = 0;
  for (size_t i = 0; i < std::max(la.size(), lb.size()); ++i) {
    const bool in_a = i < la.size(), in_b = i < lb.size();
    if (in_a && in_b && la[i] == lb[i]) continue;
    if (shown == kMaxLines) {
      ++more;
      continue;
    }
    ++shown;
    out.push_back({prefix + " (line " + std::to_string(i + 1) + ")",
                   in_a ? render(RecordJson(la[i])) : kAbsent,
                   in_b ? render(RecordJson(lb[i])) : kAbsent});
  }
  if (more > 0)
    out.push_back({prefix, "(" + std::to_string(more) + " more lines differ)", "(not shown)"});
}

}  // namespace

std::string json_path_key(const std::string& prefix, const std::string& key) {
  if (plain_key(key)) return prefix.empty() ? key : prefix + "." + key;
  return prefix + "[" + RecordJson(key).dump() + "]";
}

void diff_json(const RecordJson& a, const RecordJson& b, const std::string& prefix,
               std::vector<FieldChange>& out) {
  if (a == b) return;
  if (a.is_object() && b.is_object()) {
    for (auto it = a.begin(); it != a.end(); ++it) {
      auto jt = b.find(it.key());
      std::string p = json_path_key(prefix, it.key());
      if (jt == b.end())
        out.push_back({p, render(it.value()), kAbsent});
      else
        diff_json(it.value(), *jt, p, out);
    }
    for (auto jt = b.begin(); jt != b.end(); ++jt)
      if (a.find(jt.key()) == a.end())
        out.push_back({json_path_key(prefix, jt.key()), kAbsent, render(jt.value())});
    return;
  }
  if (a.is_array() && b.is_array()) {
    for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
      std::string p = prefix + "[" + std::to_string(i) + "]";
      if (i >= a.size())
        out.push_back({p, kAbsent, render(b[i])});
      else if (i >= b.size())
        out.push_back({p, render(a[i]), kAbsent});
      else
        diff_json(a[i], b[i], p, out);
    }
    return;
  }
  if (a.is_string() && b.is_string()) {
    const std::string &sa = a.get_ref<const std::string&>(), &sb = b.get_ref<const std::string&>();
    if (sa.find('\n') != std::string::npos || sb.find('\n') != std::string::npos) {
      diff_lines(sa, sb, prefix, out);
      return;
    }
  }
  out.push_back({prefix, render(a), render(b)});
}

RecordDiff diff_records(const RecordJson& a, const RecordJson& b) {
  RecordDiff d;
  const RecordJson& ja = member(a, "jobs");
  const RecordJson& jb = member(b, "jobs");
  // Pair instances by (name, matrix); duplicates pair in run order.
  std::map<std::string, std::vector<const RecordJson*>> unmatched_b;
  for (const auto& j : jb) unmatched_b[str_or(j, "name") + '\x1f' + matrix_key(j)].push_back(&j);
  std::vector<std::pair<const RecordJson*, const RecordJson*>> pairs;
  std::vector<const RecordJson*> only_a;
  for (const auto& j : ja) {
    auto& cands = unmatched_b[str_or(j, "name") + '\x1f' + matrix_key(j)];
    if (cands.empty()) {
      only_a.push_back(&j);
    } else {
      pairs.emplace_back(&j, cands.front());
      cands.erase(cands.begin());
    }
  }
  std::vector<FieldChange> shown;
  for (const auto& [x, y] : pairs) diff_inputs(str_or(*x, "name"), *x, *y, d, shown);
  for (const auto* x : only_a) d.inputs.push_back(str_or(*x, "name") + ": only in A");
  for (const auto& j : jb) {
    auto& cands = unmatched_b[str_or(j, "name") + '\x1f' + matrix_key(j)];
    for (const auto* c : cands)
      if (c == &j) d.inputs.push_back(str_or(j, "name") + ": only in B");
  }

  // The run's own inputs; a change a job document already showed (the
  // commit, usually) is not repeated.
  for (const char* key : {"workflow", "lock", "source", "options"}) {
    RecordJson wa = member(a, key), wb = member(b, key);
    // Where the workflow copy sits is no input, and its text is named by
    // workflow.digest (the jobs' documents show what changed in it).
    if (std::string(key) == "workflow") {
      for (RecordJson* w : {&wa, &wb})
        if (w->is_object()) {
          w->erase("file");
          w->erase("text");
        }
    }
    std::vector<FieldChange> c;
    diff_json(wa, wb, key, c);
    for (const auto& x : c)
      if (!already_shown(shown, x)) d.inputs.push_back(line("run", x));
  }

  std::vector<FieldChange> amb;
  diff_json(member(a, "ambient"), member(b, "ambient"), "ambient", amb);
  for (const auto& x : amb) d.ambient.push_back(line("", x, " (ambient)"));

  std::vector<FieldChange> res;
  diff_json(member(a, "result"), member(b, "result"), "result", res);
  for (const auto& x : res) d.outputs.push_back(line("run", x));
  for (const auto& [x, y] : pairs) diff_job_outputs(str_or(*x, "name"), *x, *y, d);
  return d;
}

int cmd_diff(const std::vector<std::string>& args) {
  const CommandLine cl("lockstep diff <run-a> <run-b>",
                       "Show what differed between two runs: inputs (each job's environment-hash "
                       "document), ambient host facts, then results and artifact digests.\n"
                       "A run is a run id in the state dir, a path to a record.json, or with\n"
                       "--server a job of that server (JOB or JOB:ATTEMPT).\n"
                       "Exit status: 0 nothing differs, 1 something does, 2 bad input.",
                       {server_spec()});
  if (CommandLine::wants_help(args)) {
    std::fputs(cl.help().c_str(), stdout);
    return 0;
  }
  auto parsed = cl.parse(args);
  if (!parsed) return usage_error(parsed.error().message());
  if (parsed->positionals.size() != 2)
    return usage_error("diff takes two runs (usage: lockstep diff <run-a> <run-b>)");
  std::optional<std::string> server;
  if (auto s = parsed->get("server")) {
    auto u = server_url(*s);
    if (!u) return report_error(u.error());
    server = *u;
  }
  std::optional<ServerRecord> fa, fb;
  auto ra = load_any_record(parsed->positionals[0], state_dir(), server, fa);
  if (!ra) return usage_error(ra.error().message());
  auto rb = load_any_record(parsed->positionals[1], state_dir(), server, fb);
  if (!rb) return usage_error(rb.error().message());

  RecordDiff d = diff_records(ra->doc, rb->doc);
  std::printf("A: %s (%s)\nB: %s (%s)\n", str_or(ra->doc, "run_id").c_str(), ra->file.c_str(),
              str_or(rb->doc, "run_id").c_str(), rb->file.c_str());
  auto section = [](const char* title, const std::vector<std::string>& a,
                    const std::vector<std::string>& b = {}) {
    if (a.empty() && b.empty()) return;
    std::printf("%s\n", title);
    for (const auto& l : a) std::printf("  %s\n", l.c_str());
    for (const auto& l : b) std::printf("  %s\n", l.c_str());
  };
  section("inputs:", d.identical, d.inputs);
  section("ambient (host facts, in no hash):", d.ambient);
  section("outputs:", d.outputs);
  if (!d.differs()) std::printf("no differences\n");
  std::fflush(stdout);
  return d.differs() ? 1 : 0;
}

}  // namespace lockstep::runner
