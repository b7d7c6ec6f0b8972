#include "runner/records/html_report.hpp"

#include "runner/records/fetch_view.hpp"

#include "runner/records/report.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "common/fs.hpp"

namespace lockstep::runner {

namespace {

// Steps with more log lines than this show the last ones only: a runaway
// log would otherwise make the page too heavy to open.
constexpr size_t kMaxLogLines = 5000;

constexpr const char* kStyle = R"(
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#1f2328;background:#fff}
h1{font-size:22px;margin:0 0 8px}h2{font-size:18px;margin:28px 0 8px}h3{font-size:16px;margin:20px 0 6px}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}code,pre,.mono{font-family:ui-monospace,monospace;font-size:12.5px}
.kv th{width:170px}
.success{background:#dafbe1}.failure{background:#ffebe9}.cancelled{background:#d0d7de}.skipped{background:#f6f8fa;color:#656d76}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-weight:600}
.grid td.cell{min-width:130px}.cell a{color:inherit;text-decoration:none;display:block}
.cell .extra{font-size:12px;color:#57606a}.cell .hash{font-size:11.5px;color:#57606a}
details{margin:4px 0;border:1px solid #d0d7de;border-radius:6px}summary{padding:4px 8px;cursor:pointer}
details pre{margin:0;padding:6px 8px;background:#f6f8fa;overflow-x:auto;white-space:pre-wrap}
pre .e{color:#cf222e}pre .n{color:#57606a;font-style:italic}
)";

const char* kAbsent = "";

std::string scalar(const RecordJson& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return kAbsent;
  return v.dump();
}

std::string e(const std::string& s) {
  return html_escape(s);
}

std::string result_class(const std::string& r) {
  if (r == "success" || r == "failure" || r == "cancelled" || r == "skipped") return r;
  return "skipped";
}

std::string duration(long long ms) {
  if (ms < 1000) return std::to_string(ms) + "ms";
  long long tenths = ms / 100;
  if (ms < 60'000) return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + "s";
  long long s = ms / 1000;
  std::string sec = std::to_string(s % 60);
  return std::to_string(s / 60) + "m" + (sec.size() < 2 ? "0" : "") + sec + "s";
}

std::string short_hash(const std::string& h) {
  auto p = h.find(':');
  return (p == std::string::npos ? h : h.substr(p + 1)).substr(0, 12);
}

std::string badge(const std::string& result) {
  return "<span class=\"badge " + result_class(result) + "\">" + e(result) + "</span>";
}

std::string row(const std::string& key, const std::string& html_value) {
  return "<tr><th>" + e(key) + "</th><td>" + html_value + "</td></tr>\n";
}

// One job's log split at lockstep's "-- step: <name>" notes: the part
// before the first step, then one part per step that ran.
struct LogPart {
  std::string step;  // "" for the set-up part
  std::vector<std::string> lines;
};

std::vector<LogPart> split_log(const std::string& text) {
  std::vector<LogPart> parts(1);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string l = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    constexpr std::string_view kStep = "-- step: ";
    if (l.rfind(kStep, 0) == 0) {
      parts.push_back({l.substr(kStep.size()), {}});
      continue;
    }
    parts.back().lines.push_back(std::move(l));
  }
  return parts;
}

// "<secs>.<tenths> O|E text" -> text, styled by stream; "-- note" -> note.
std::string render_log(const std::vector<std::string>& lines) {
  std::string out;
  size_t first = lines.size() > kMaxLogLines ? lines.size() - kMaxLogLines : 0;
  if (first > 0)
    out += "<span class=\"n\">(" + std::to_string(first) + " earlier lines not shown)</span>\n";
  for (size_t i = first; i < lines.size(); ++i) {
    const std::string& l = lines[i];
    if (l.rfind("-- ", 0) == 0) {
      out += "<span class=\"n\">" + e(l.substr(3)) + "</span>\n";
      continue;
    }
    auto sp = l.find(' ');
    if (sp != std::string::npos && sp + 2 < l.size() + 1 &&
        (l[sp + 1] == 'O' || l[sp + 1] == 'E') && (sp + 2 == l.size() || l[sp + 2] == ' ')) {
      std::string text = sp + 3 <= l.size() ? l.substr(sp + 3) : "";
      out += l[sp + 1] == 'E' ? "<span class=\"e\">" + e(text) + "</span>\n" : e(text) + "\n";
    } else {
      out += e(l) + "\n";
    }
  }
  return out;
}

// A failed step's log is shown unfolded: it is what the reader came for.
std::string details(const std::string& summary_html, const std::string& cls,
                    const std::vector<std::string>& lines) {
  bool open = cls.find("failure") != std::string::npos;
  return "<details class=\"" + cls + "\"" + (open ? " open" : "") + "><summary>" + summary_html +
         "</summary><pre>" +
         (lines.empty() ? "<span class=\"n\">(no output)</span>\n" : render_log(lines)) +
         "</pre></details>\n";
}

std::string render_steps(const RecordJson& job, const std::filesystem::path& run_dir) {
  std::string log_rel = str_or(job, "log");
  std::vector<LogPart> parts;
  bool have_log = false;
  if (!log_rel.empty()) {
    if (auto text = read_file(run_dir / log_rel)) {
      parts = split_log(*text);
      have_log = true;
    }
  }
  std::string out = "<h4>Steps</h4>\n";
  if (!have_log)
    out += "<p class=\"n\">log " + e(log_rel.empty() ? "(not recorded)" : log_rel) +
           " not found</p>\n";
  if (have_log && !parts[0].lines.empty()) out += details("Set up job", "setup", parts[0].lines);
  size_t next = 1;
  for (const auto& st : member(job, "steps")) {
    std::string name = str_or(st, "name");
    std::string concl = str_or(st, "conclusion", str_or(st, "outcome"));
    std::string outcome = str_or(st, "outcome");
    std::vector<std::string> lines;
    // Steps that did not run have no part; the others take theirs in order.
    if (have_log && outcome != "skipped") {
      for (size_t k = next; k < parts.size(); ++k) {
        if (parts[k].step == name) {
          lines = parts[k].lines;
          next = k + 1;
          break;
        }
      }
    }
    std::string sum =
        badge(concl) + " " + e(name) + " <span class=\"extra\">" +
        e(duration(int_or(st, "duration_ms"))) +
        (outcome != concl && !outcome.empty() ? " (outcome " + e(outcome) + ")" : "") +
        (str_or(st, "reason").empty() ? "" : " — " + e(str_or(st, "reason"))) + "</span>";
    out += details(sum, "step " + result_class(concl), lines);
  }
  return out;
}

std::string render_artifacts(const RecordJson& job) {
  const RecordJson& arts = member(job, "artifacts");
  if (!arts.is_array() || arts.empty()) return "";
  std::string out =
      "<h4>Artifacts</h4>\n<table class=\"artifacts\"><tr><th>name / file</th><th>size</th>"
      "<th>digest</th></tr>\n";
  for (const auto& a : arts) {
    out += "<tr><td><b>" + e(str_or(a, "name")) + "</b></td><td>" +
           std::to_string(int_or(a, "size")) + "</td><td class=\"mono\">" + e(str_or(a, "digest")) +
           "</td></tr>\n";
    for (const auto& f : member(a, "files"))
      out += "<tr><td class=\"mono\">&nbsp;&nbsp;" + e(str_or(f, "path")) + " " +
             e(str_or(f, "mode")) + "</td><td>" + std::to_string(int_or(f, "size")) +
             "</td><td class=\"mono\">" + e(str_or(f, "digest")) + "</td></tr>\n";
  }
  return out + "</table>\n";
}

// Service containers: image digest and their log, folded.
std::string render_services(const RecordJson& job, const std::filesystem::path& run_dir) {
  const RecordJson& services = member(job, "services");
  if (!services.is_array() || services.empty()) return "";
  std::string out = "<h4>Services</h4>\n";
  for (const auto& svc : services) {
    std::vector<std::string> lines;
    std::string log = str_or(svc, "log");
    if (!log.empty()) {
      if (auto text = read_file(run_dir / log)) {
        for (const auto& part : split_log(*text))
          lines.insert(lines.end(), part.lines.begin(), part.lines.end());
      }
    }
    out += details(e(str_or(svc, "name")) + " <span class=\"extra\">" + e(str_or(svc, "image")) +
                       " <code>" + e(str_or(svc, "manifest_digest")) + "</code></span>",
                   "service", lines);
  }
  return out;
}

std::string render_job(const RecordJson& job, size_t i, const std::filesystem::path& run_dir) {
  std::string result = str_or(job, "result");
  std::string out = "<section class=\"job\" id=\"job-" + std::to_string(i + 1) + "\">\n<h3>" +
                    badge(result) + " " + e(str_or(job, "name")) + "</h3>\n<table class=\"kv\">\n";
  if (!str_or(job, "reason").empty()) out += row("reason", e(str_or(job, "reason")));
  out += row("environment hash", "<code>" + e(str_or(job, "env_hash")) + "</code>");
  const RecordJson& image = member(job, "image");
  out += row("image", e(str_or(image, "ref")) + " <code>" + e(str_or(image, "manifest_digest")) +
                          "</code> " + e(str_or(image, "platform")));
  out += row("network", e(str_or(job, "network")));
  out += row("duration", e(duration(int_or(job, "duration_ms"))));
  const RecordJson& usage = member(job, "usage");
  if (usage.is_object())
    out += row("usage", "peak memory " + std::to_string(int_or(usage, "peak_memory_bytes")) +
                            " bytes, cpu " + std::to_string(int_or(usage, "cpu_time_ms")) + " ms" +
                            (member(usage, "oom_killed") == true ? ", OOM-killed" : ""));
  const RecordJson& outputs = member(job, "outputs");
  if (outputs.is_object())
    for (auto it = outputs.begin(); it != outputs.end(); ++it)
      out += row("output " + it.key(), "<code>" + e(scalar(it.value())) + "</code>");
  out += "</table>\n" + render_steps(job, run_dir) + render_services(job, run_dir) +
         render_fetches_html(job) + render_artifacts(job) + "</section>\n";
  return out;
}

std::string render_cell(const RecordJson& jobs, const std::vector<size_t>& idx,
                        const MatrixGrid& g) {
  if (idx.empty()) return "<td class=\"cell empty\"></td>";
  // One instance per cell: coloured cell. Several (further axes): one block
  // each, coloured individually.
  std::string out = "<td class=\"cell" +
                    (idx.size() == 1 ? " " + result_class(str_or(jobs[idx[0]], "result")) : "") +
                    "\">";
  for (size_t i : idx) {
    const RecordJson& job = jobs[i];
    std::string extra;
    const RecordJson& m = member(job, "matrix");
    if (m.is_object())
      for (auto it = m.begin(); it != m.end(); ++it)
        if (it.key() != g.row_axis && it.key() != g.col_axis)
          extra += (extra.empty() ? "" : ", ") + it.key() + "=" + scalar(it.value());
    std::string r = str_or(job, "result");
    out += "<a class=\"" + (idx.size() > 1 ? result_class(r) : std::string()) + "\" href=\"#job-" +
           std::to_string(i + 1) + "\">" +
           (extra.empty() ? "" : "<div class=\"extra\">" + e(extra) + "</div>") + "<b>" + e(r) +
           "</b> " + e(duration(int_or(job, "duration_ms"))) + "<div class=\"hash\">" +
           e(short_hash(str_or(job, "env_hash"))) + "</div></a>";
  }
  return out + "</td>";
}

std::string render_grid(const RecordJson& jobs, const std::string& id) {
  MatrixGrid g = matrix_grid(jobs, id);
  std::string out =
      "<table class=\"grid\" data-job=\"" + e(id) + "\">\n<tr><th>" +
      e(g.row_axis.empty() ? id : g.row_axis + (g.col_axis.empty() ? "" : " \\ " + g.col_axis)) +
      "</th>";
  // A job with fewer than two axes has one column: its cells say the result.
  for (const auto& c : g.cols) out += "<th>" + e(g.col_axis.empty() ? "result" : c) + "</th>";
  out += "</tr>\n";
  for (size_t r = 0; r < g.rows.size(); ++r) {
    out += "<tr><th>" + e(g.rows[r]) + "</th>";
    for (size_t c = 0; c < g.cols.size(); ++c) out += render_cell(jobs, g.cells[r][c], g);
    out += "</tr>\n";
  }
  return out + "</table>\n";
}

std::string render_verify(const RecordJson& v) {
  if (!v.is_object()) return "";
  std::string out = "<h2>Verification</h2>\n<table class=\"kv\">\n";
  std::string verdict = str_or(v, "verdict");
  std::string cls = verdict == "reproducible" ? "success"
                    : verdict == "failed"     ? "cancelled"
                                              : "failure";
  out += row("verdict", "<span class=\"badge " + cls + "\">" + e(verdict) + "</span>");
  out += row("builds", std::to_string(int_or(v, "runs")));
  std::string varied;
  for (const auto& x : member(v, "varied")) varied += (varied.empty() ? "" : ", ") + scalar(x);
  out += row("varied", e(varied)) + "</table>\n";
  const RecordJson& diffs = member(v, "differences");
  if (diffs.is_array() && !diffs.empty()) {
    out +=
        "<table><tr><th>job</th><th>artifact</th><th>file</th><th>digests</th><th>first "
        "difference</th></tr>\n";
    for (const auto& d : diffs) {
      std::string ds;
      for (const auto& x : member(d, "digests")) ds += e(scalar(x)) + "<br>";
      out += "<tr><td>" + e(str_or(d, "job")) + "</td><td>" + e(str_or(d, "artifact")) +
             "</td><td>" + e(str_or(d, "file")) + "</td><td class=\"mono\">" + ds + "</td><td>" +
             e(str_or(d, "first_difference")) + "</td></tr>\n";
    }
    out += "</table>\n";
  }
  return out;
}

}  // namespace

// The same escaping as JUnit XML's (control characters other than
// whitespace become '?'), valid in HTML too.
std::string html_escape(std::string_view s) {
  return xml_escape(s);
}

MatrixGrid matrix_grid(const RecordJson& jobs, const std::string& job_id) {
  MatrixGrid g;
  std::vector<size_t> members;
  for (size_t i = 0; i < jobs.size(); ++i)
    if (str_or(jobs[i], "id", str_or(jobs[i], "name")) == job_id) members.push_back(i);
  // Axes from the first instance: `matrix_axes` (declaration order), else
  // the matrix object's own order.
  if (!members.empty()) {
    const RecordJson& axes = member(jobs[members[0]], "matrix_axes");
    const RecordJson& m = member(jobs[members[0]], "matrix");
    if (axes.is_array() && !axes.empty()) {
      if (axes.size() > 0 && axes[0].is_string()) g.row_axis = axes[0].get<std::string>();
      if (axes.size() > 1 && axes[1].is_string()) g.col_axis = axes[1].get<std::string>();
    } else if (m.is_object()) {
      auto it = m.begin();
      if (it != m.end()) g.row_axis = (it++).key();
      if (it != m.end()) g.col_axis = it.key();
    }
  }
  auto value_of = [&](size_t i, const std::string& axis) {
    return axis.empty() ? std::string() : scalar(member(member(jobs[i], "matrix"), axis));
  };
  auto index_in = [](std::vector<std::string>& v, const std::string& x) {
    auto it = std::find(v.begin(), v.end(), x);
    if (it != v.end()) return static_cast<size_t>(it - v.begin());
    v.push_back(x);
    return v.size() - 1;
  };
  std::vector<std::pair<size_t, size_t>> at;
  for (size_t i : members)
    at.emplace_back(index_in(g.rows, g.row_axis.empty() ? job_id : value_of(i, g.row_axis)),
                    index_in(g.cols, value_of(i, g.col_axis)));
  g.cells.assign(g.rows.size(), std::vector<std::vector<size_t>>(g.cols.size()));
  for (size_t k = 0; k < members.size(); ++k)
    g.cells[at[k].first][at[k].second].push_back(members[k]);
  return g;
}

std::string render_html_report(const LoadedRecord& rec) {
  const RecordJson& d = rec.doc;
  const RecordJson& jobs = member(d, "jobs");
  const RecordJson& wf = member(d, "workflow");
  const RecordJson& src = member(d, "source");
  std::string wf_name = str_or(wf, "name", str_or(wf, "path"));
  std::string result = str_or(d, "result");

  std::string out =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>" +
      e("lockstep " + str_or(d, "kind", "run") + " " + str_or(d, "run_id") + " — " + wf_name) +
      "</title>\n<style>" + kStyle + "</style></head>\n<body>\n";
  out += "<header><h1>" + badge(result) + " " + e(wf_name) + "</h1>\n<table class=\"kv\">\n";
  out += row(
      "run",
      "<code>" + e(str_or(d, "run_id")) + "</code> (" + e(str_or(d, "kind", "run")) +
          (str_or(d, "replay_of").empty() ? "" : ", replay of " + e(str_or(d, "replay_of"))) + ")");
  out += row("workflow", e(str_or(wf, "path")) + " <code>" + e(str_or(wf, "digest")) + "</code>");
  if (src.is_object())
    out += row("commit",
               "<code>" + e(str_or(src, "commit")) + "</code> " + e(str_or(src, "url")) +
                   (str_or(src, "dirty_patch_digest").empty() ? "" : " (with local changes)"));
  out += row("result", e(result) + " (exit code " + std::to_string(int_or(d, "exit_code")) + ")");
  out += row("started", e(str_or(d, "started_at")));
  out += row("duration", e(duration(int_or(d, "duration_ms"))));
  const RecordJson& v = member(d, "verify");
  if (v.is_object()) out += row("verify", e(str_or(v, "verdict")));
  out += row("builder", e(str_or(d, "builder_id")));
  out += "</table></header>\n";

  out += "<h2>Matrix</h2>\n";
  std::vector<std::string> ids;
  for (const auto& j : jobs) {
    std::string id = str_or(j, "id", str_or(j, "name"));
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  }
  for (const auto& id : ids) out += "<h3>" + e(id) + "</h3>\n" + render_grid(jobs, id);
  out += render_verify(v);
  out += "<h2>Jobs</h2>\n";
  for (size_t i = 0; i < jobs.size(); ++i) out += render_job(jobs[i], i, rec.dir);
  out += "<footer><p class=\"extra\">lockstep " + e(str_or(d, "lockstep_version")) +
         "</p></footer>\n</body></html>\n";
  return out;
}

}  // namespace lockstep::runner
