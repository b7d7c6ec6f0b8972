#include "pipeline/diagnostic.hpp"

#include <algorithm>
#include <cctype>

#include "common/utf8.hpp"

namespace lockstep::pipeline {

std::string WorkflowError::first_line() const {
  std::string out = file;
  if (line > 0) {
    out += ':' + std::to_string(line) + ':' + std::to_string(column);
  }
  out += ": ";
  out += message;
  // A value quoted in the message may hold a line break (an escape in a
  // quoted YAML string) or bytes from yaml-cpp's own messages that are not
  // UTF-8: the first line stays one line of text.
  return printable(out);
}

std::string WorkflowError::render() const {
  std::string out = first_line();
  if (line <= 0 || source_line.empty()) return out;
  std::string num = std::to_string(line);
  std::string gutter(num.size() < 5 ? 5 - num.size() : 0, ' ');
  out += '\n' + gutter + num + " | " + source_line;
  // The caret keeps the tabs of the quoted line so it lands under the column.
  std::string pad;
  for (int i = 0; i + 1 < column; ++i) {
    size_t idx = static_cast<size_t>(i);
    pad += idx < source_line.size() && source_line[idx] == '\t' ? '\t' : ' ';
  }
  out += '\n' + std::string(std::max<size_t>(num.size(), 5), ' ') + " | " + pad + '^';
  return out;
}

Error to_error(const WorkflowError& err) {
  return Error(err.render(), 0, ErrorKind::kWorkflow);
}

static std::string line_of(std::string_view source, int line) {
  if (line <= 0) return {};
  size_t start = 0;
  for (int i = 1; i < line; ++i) {
    size_t nl = source.find('\n', start);
    if (nl == std::string_view::npos) return {};
    start = nl + 1;
  }
  size_t end = source.find('\n', start);
  std::string_view text = source.substr(start, end == std::string_view::npos ? end : end - start);
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  return std::string(text);
}

Error workflow_error(const std::string& file, std::string_view source, SourceLoc loc,
                     std::string message) {
  WorkflowError e;
  e.file = file;
  e.line = loc.line;
  e.column = loc.line > 0 ? std::max(loc.column, 1) : 0;
  e.message = std::move(message);
  e.source_line = line_of(source, loc.line);
  return to_error(e);
}

std::string_view first_line(const Error& err) {
  std::string_view m = err.message();
  return m.substr(0, m.find('\n'));
}

std::optional<WorkflowError> decode_workflow_error(const Error& err) {
  if (err.kind() != ErrorKind::kWorkflow) return std::nullopt;
  std::string_view head = first_line(err);
  // Finds the first ":<digits>:<digits>: " so that file names may hold ':'.
  for (size_t i = head.find(':'); i != std::string_view::npos; i = head.find(':', i + 1)) {
    size_t p = i + 1;
    auto digits = [&](size_t& q) {
      size_t s = q;
      while (q < head.size() && std::isdigit(static_cast<unsigned char>(head[q]))) ++q;
      return q > s && q - s < 10;  // fits an int
    };
    size_t a = p;
    if (!digits(p) || p >= head.size() || head[p] != ':') continue;
    size_t b = ++p;
    if (!digits(p) || head.compare(p, 2, ": ") != 0) continue;
    WorkflowError e;
    e.file = std::string(head.substr(0, i));
    e.line = std::stoi(std::string(head.substr(a, b - 1 - a)));
    e.column = std::stoi(std::string(head.substr(b, p - b)));
    e.message = std::string(head.substr(p + 2));
    std::string_view rest = err.message();
    size_t nl = rest.find('\n');
    if (nl != std::string_view::npos) {
      std::string_view quoted = rest.substr(nl + 1);
      quoted = quoted.substr(0, quoted.find('\n'));
      size_t bar = quoted.find(" | ");
      if (bar != std::string_view::npos) e.source_line = std::string(quoted.substr(bar + 3));
    }
    return e;
  }
  return std::nullopt;
}

static size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                  std::tolower(static_cast<unsigned char>(b[j - 1]));
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (same ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string spellcheck(std::string_view word, const std::vector<std::string_view>& candidates) {
  // As ninja: at most 3 edits; also never more edits than half the word, so
  // that "if" does not suggest "id" for "xy".
  const size_t max_distance = std::min<size_t>(3, std::max<size_t>(1, word.size() / 2));
  size_t best = max_distance + 1;
  std::string_view result;
  for (std::string_view c : candidates) {
    size_t d = edit_distance(word, c);
    if (d < best) {
      best = d;
      result = c;
    }
  }
  return std::string(result);
}

std::string did_you_mean(std::string_view word, const std::vector<std::string_view>& candidates) {
  std::string s = spellcheck(word, candidates);
  return s.empty() ? std::string() : " (did you mean '" + s + "'?)";
}

}  // namespace lockstep::pipeline
