#include "runner/records/report.hpp"

#include <cstdio>

#include "common/fs.hpp"
#include "common/json.hpp"
#include "common/utf8.hpp"
#include "pipeline/expr.hpp"

namespace lockstep::runner {

std::string format_duration(std::chrono::milliseconds d) {
  char buf[32];
  auto ms = d.count();
  if (ms < 60000)
    std::snprintf(buf, sizeof buf, "%.2fs", static_cast<double>(ms) / 1000.0);
  else
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(ms / 60000),
                  static_cast<long long>((ms / 1000) % 60));
  return buf;
}

std::string matrix_text(const pipeline::OrderedValue& m) {
  if (!m.is_object() || m.empty()) return "-";
  std::string s;
  for (auto it = m.begin(); it != m.end(); ++it) {
    if (!s.empty()) s += ", ";
    s += it.key() + "=" + pipeline::to_display_string(pipeline::Value::parse(it.value().dump()));
  }
  return s;
}

void print_summary(Console& console, const RunSummary& run, const MatrixFormatter& matrix) {
  struct Row {
    std::string job, matrix, result, duration, reason;
  };
  std::vector<Row> rows{{"JOB", "MATRIX", "RESULT", "DURATION", "REASON"}};
  size_t passed = 0;
  for (const auto& j : *run.jobs) {
    // A called workflow's job is named through its calls, as GitHub shows
    // it: "call (linux) / build".
    std::string job = j.job_id;
    if (j.call.is_object()) {
      auto slash = j.display_name.rfind(" / ");
      if (slash != std::string::npos) job = j.display_name.substr(0, slash + 3) + j.job_id;
    }
    rows.push_back({job, matrix(j.matrix), to_string(j.outcome.result),
                    format_duration(j.outcome.duration), j.outcome.reason});
    if (j.outcome.result == JobResult::kSuccess) ++passed;
  }
  size_t w[4] = {0, 0, 0, 0};
  for (const auto& r : rows) {
    w[0] = std::max(w[0], r.job.size());
    w[1] = std::max(w[1], r.matrix.size());
    w[2] = std::max(w[2], r.result.size());
    w[3] = std::max(w[3], r.duration.size());
  }
  auto pad = [](std::string s, size_t n) {
    s.resize(std::max(n, s.size()), ' ');
    return s;
  };
  std::string out = "\n";
  for (const auto& r : rows) {
    std::string line = pad(r.job, w[0]) + "  " + pad(r.matrix, w[1]) + "  " + pad(r.result, w[2]) +
                       "  " + pad(r.duration, w[3]) + "  " + r.reason;
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  out += std::to_string(passed) + " of " + std::to_string(run.jobs->size()) + " jobs passed" +
         (run.interrupted ? " (interrupted)" : "") + "; run " + run.run_id + "\n";
  console.plain(out);
}

std::string xml_escape(std::string_view raw) {
  // The document says encoding="UTF-8": log bytes that are not become U+FFFD.
  const std::string s = to_valid_utf8(raw);
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        // XML 1.0 forbids most control characters, even escaped.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t' && c != '\r')
          out += '?';
        else
          out += c;
    }
  }
  return out;
}

namespace {

std::string seconds(std::chrono::milliseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(d.count()) / 1000.0);
  return buf;
}

}  // namespace

Status write_junit(const std::filesystem::path& file, const RunSummary& run, const Masker& masker) {
  std::string x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  size_t tests = 0, failures = 0, skipped = 0;
  std::string body;
  for (const auto& j : *run.jobs) {
    size_t t = 0, f = 0, s = 0;
    std::string cases;
    auto add_case = [&](const std::string& name, JobResult result, std::chrono::milliseconds d,
                        const std::string& reason, const std::string& log) {
      ++t;
      cases += "    <testcase classname=\"" + xml_escape(masker.mask(j.display_name)) +
               "\" name=\"" + xml_escape(masker.mask(name)) + "\" time=\"" + seconds(d) + "\"";
      if (result == JobResult::kSuccess) {
        cases += "/>\n";
        return;
      }
      cases += ">\n";
      if (result == JobResult::kSkipped) {
        ++s;
        cases += "      <skipped message=\"" + xml_escape(masker.mask(reason)) + "\"/>\n";
      } else {
        ++f;
        cases += "      <failure message=\"" + xml_escape(masker.mask(reason)) + "\" type=\"" +
                 to_string(result) + "\">" + xml_escape(masker.mask(log)) + "</failure>\n";
      }
      cases += "    </testcase>\n";
    };
    add_case("(job)", j.outcome.result, j.outcome.duration, j.outcome.reason, "");
    for (const auto& st : j.steps)
      add_case(st.name, st.conclusion, st.duration, st.reason, st.log_tail);
    body += "  <testsuite name=\"" + xml_escape(masker.mask(j.display_name)) + "\" tests=\"" +
            std::to_string(t) + "\" failures=\"" + std::to_string(f) + "\" skipped=\"" +
            std::to_string(s) + "\" time=\"" + seconds(j.outcome.duration) + "\">\n" + cases +
            "  </testsuite>\n";
    tests += t;
    failures += f;
    skipped += s;
  }
  x += "<testsuites name=\"" + xml_escape(run.workflow_name) + "\" tests=\"" +
       std::to_string(tests) + "\" failures=\"" + std::to_string(failures) + "\" skipped=\"" +
       std::to_string(skipped) + "\">\n" + body + "</testsuites>\n";
  return write_file_atomic(file, x);
}

Status write_json(const std::filesystem::path& file, const RunSummary& run, const Masker& masker) {
  Json doc = {{"schema", "lockstep.run-report/1"},
              {"run_id", run.run_id},
              {"workflow", run.workflow_file},
              {"interrupted", run.interrupted},
              {"jobs", Json::array()}};
  for (const auto& j : *run.jobs) {
    Json steps = Json::array();
    for (const auto& s : j.steps)
      steps.push_back({{"name", masker.mask(s.name)},
                       {"id", s.id},
                       {"outcome", to_string(s.outcome)},
                       {"conclusion", to_string(s.conclusion)},
                       {"reason", masker.mask(s.reason)},
                       {"duration_ms", s.duration.count()}});
    Json outputs = Json::object();
    for (const auto& [k, v] : j.outputs) outputs[k] = masker.mask(v);
    doc["jobs"].push_back(
        {{"job", j.job_id},
         {"name", masker.mask(j.display_name)},
         {"matrix", Json::parse(j.matrix.is_null() ? "{}" : j.matrix.dump())},
         {"result", to_string(j.outcome.result)},
         {"reason", masker.mask(j.outcome.reason)},
         {"duration_ms", j.outcome.duration.count()},
         {"image", j.image},
         {"image_digest", j.image_digest},
         {"network", j.network},
         {"peak_memory_bytes", j.usage.peak_memory_bytes},
         {"cpu_time_ms",
          std::chrono::duration_cast<std::chrono::milliseconds>(j.usage.cpu_time).count()},
         {"oom_killed", j.usage.oom_killed},
         {"outputs", outputs},
         {"steps", steps},
         {"log", j.log_file.string()}});
  }
  return write_file_atomic(file, pretty_json(doc));
}

}  // namespace lockstep::runner
