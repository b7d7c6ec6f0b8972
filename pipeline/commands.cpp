#include "pipeline/commands.hpp"

#include <cctype>

#include "common/utf8.hpp"

namespace lockstep::pipeline {
namespace {

// Replaces the escapes GitHub defines; other '%' sequences stay as written.
std::string unescape(std::string_view s, bool property) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      std::string_view code = s.substr(i + 1, 2);
      char c = 0;
      if (code == "25")
        c = '%';
      else if (code == "0D" || code == "0d")
        c = '\r';
      else if (code == "0A" || code == "0a")
        c = '\n';
      else if (property && (code == "3A" || code == "3a"))
        c = ':';
      else if (property && (code == "2C" || code == "2c"))
        c = ',';
      if (c) {
        out += c;
        i += 2;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

// The legacy form's escapes (##[name k=v;k=v]data): %3B ; %0D CR %0A LF
// %5D ] %25 %, in properties and data alike.
std::string unescape_legacy(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      std::string code(s.substr(i + 1, 2));
      for (char& c : code) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      char c = code == "3B"   ? ';'
               : code == "0D" ? '\r'
               : code == "0A" ? '\n'
               : code == "5D" ? ']'
               : code == "25" ? '%'
                              : 0;
      if (c) {
        out += c;
        i += 2;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

// "##[name k=v;k=v]data", anywhere in the line, as GitHub's runner still
// reads it (actions built before 2019 print it).
std::optional<WorkflowCommand> parse_legacy(std::string_view line) {
  size_t at = line.find("##[");
  if (at == std::string_view::npos) return std::nullopt;
  size_t rb = line.find(']', at);
  if (rb == std::string_view::npos) return std::nullopt;
  std::string_view info = line.substr(at + 3, rb - at - 3);
  size_t space = info.find(' ');
  WorkflowCommand cmd;
  cmd.name = std::string(info.substr(0, space));
  if (cmd.name.empty()) return std::nullopt;
  if (space != std::string_view::npos) {
    std::string_view props = info.substr(space + 1);
    size_t pos = 0;
    while (pos < props.size()) {
      size_t semi = props.find(';', pos);
      std::string_view kv =
          props.substr(pos, semi == std::string_view::npos ? std::string_view::npos : semi - pos);
      size_t eq = kv.find('=');
      if (eq != std::string_view::npos && eq > 0 && eq + 1 < kv.size())
        cmd.properties.emplace_back(std::string(kv.substr(0, eq)),
                                    unescape_legacy(kv.substr(eq + 1)));
      if (semi == std::string_view::npos) break;
      pos = semi + 1;
    }
  }
  cmd.message = unescape_legacy(line.substr(rb + 1));
  cmd.legacy = true;
  return cmd;
}

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    std::string_view line = text.substr(start, nl == std::string_view::npos ? nl : nl - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  return lines;
}

}  // namespace

std::optional<std::string> WorkflowCommand::property(std::string_view key) const {
  for (const auto& [k, v] : properties) {
    if (k == key) return v;
  }
  return std::nullopt;
}

std::optional<WorkflowCommand> parse_command(std::string_view raw) {
  // A command's parts become text (annotations, masks, outputs): bytes that
  // are not UTF-8 become U+FFFD, as GitHub's runner decodes them.
  std::string decoded;
  std::string_view full = raw;
  if (!is_valid_utf8(raw)) {
    decoded = to_valid_utf8(raw);
    full = decoded;
  }
  std::string_view line = full;
  size_t lead = line.find_first_not_of(" \t");
  if (lead == std::string_view::npos) return std::nullopt;
  line.remove_prefix(lead);
  if (line.substr(0, 2) != "::") return parse_legacy(full);
  size_t end = line.find("::", 2);
  if (end == std::string_view::npos) return parse_legacy(full);
  std::string_view section = line.substr(2, end - 2);
  WorkflowCommand cmd;
  size_t space = section.find(' ');
  cmd.name = std::string(section.substr(0, space));
  if (cmd.name.empty()) return std::nullopt;
  if (space != std::string_view::npos) {
    std::string_view props = section.substr(space + 1);
    size_t pos = 0;
    while (pos <= props.size()) {
      size_t comma = props.find(',', pos);
      std::string_view kv =
          props.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
      size_t eq = kv.find('=');
      if (eq != std::string_view::npos && eq > 0 && eq + 1 < kv.size()) {
        cmd.properties.emplace_back(std::string(kv.substr(0, eq)),
                                    unescape(kv.substr(eq + 1), true));
      }
      if (comma == std::string_view::npos) break;
      pos = comma + 1;
    }
  }
  cmd.message = unescape(line.substr(end + 2), false);
  return cmd;
}

std::string escape_command_data(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '%')
      out += "%25";
    else if (c == '\r')
      out += "%0D";
    else if (c == '\n')
      out += "%0A";
    else
      out += c;
  }
  return out;
}

std::string escape_command_property(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '%')
      out += "%25";
    else if (c == '\r')
      out += "%0D";
    else if (c == '\n')
      out += "%0A";
    else if (c == ':')
      out += "%3A";
    else if (c == ',')
      out += "%2C";
    else
      out += c;
  }
  return out;
}

std::optional<WorkflowCommand> CommandStream::feed(std::string_view line) {
  if (!resume_token_.empty()) {
    auto cmd = parse_command(line);
    if (cmd && cmd->name == resume_token_ && cmd->properties.empty()) resume_token_.clear();
    return std::nullopt;
  }
  auto cmd = parse_command(line);
  if (cmd && cmd->name == "stop-commands" && !cmd->message.empty()) {
    resume_token_ = cmd->message;
    return std::nullopt;
  }
  return cmd;
}

Result<EnvList> parse_key_value_file(std::string_view raw, std::string_view what) {
  const std::string text = to_valid_utf8(raw);
  EnvList out;
  std::vector<std::string_view> lines = split_lines(text);
  auto bad = [&](size_t index, std::string message) {
    return fail(std::string(what) + " line " + std::to_string(index + 1) + ": " + message,
                ErrorKind::kWorkflow);
  };
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    if (line.empty()) continue;
    size_t eq = line.find('=');
    size_t heredoc = line.find("<<");
    if (eq != std::string_view::npos && (heredoc == std::string_view::npos || eq < heredoc)) {
      if (eq == 0) return bad(i, "empty name in '" + std::string(line) + "'");
      out.emplace_back(std::string(line.substr(0, eq)), std::string(line.substr(eq + 1)));
      continue;
    }
    if (heredoc == std::string_view::npos) {
      return bad(
          i, "invalid line '" + std::string(line) + "' (expected NAME=VALUE or NAME<<DELIMITER)");
    }
    std::string name(line.substr(0, heredoc));
    std::string delimiter(line.substr(heredoc + 2));
    if (name.empty()) return bad(i, "empty name in '" + std::string(line) + "'");
    if (delimiter.empty()) return bad(i, "empty delimiter in '" + std::string(line) + "'");
    size_t start = i;
    std::string value;
    bool closed = false;
    for (++i; i < lines.size(); ++i) {
      if (lines[i] == delimiter) {
        closed = true;
        break;
      }
      if (i > start + 1) value += '\n';
      value += lines[i];
    }
    if (!closed) {
      return bad(start, "no line '" + delimiter + "' ends the value of '" + name + "'");
    }
    out.emplace_back(std::move(name), std::move(value));
  }
  return out;
}

std::vector<std::string> parse_path_file(std::string_view raw) {
  const std::string text = to_valid_utf8(raw);
  std::vector<std::string> out;
  for (std::string_view line : split_lines(text)) {
    if (!line.empty()) out.emplace_back(line);
  }
  return out;
}

}  // namespace lockstep::pipeline
