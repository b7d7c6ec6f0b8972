#include "runner/records/record_read.hpp"

#include <charconv>
#include <system_error>

#include "common/fs.hpp"
#include "common/json.hpp"
#include "common/utf8.hpp"

namespace lockstep::runner {

namespace fs = std::filesystem;

namespace {

tl::unexpected<Error> bad(const std::string& what, const std::string& message) {
  return fail(printable(what + ": " + message), ErrorKind::kUsage);
}

// "line 3, column 7" for a byte offset (1-based, as nlohmann reports it).
std::string position(std::string_view text, size_t byte) {
  size_t line = 1, col = 1;
  for (size_t i = 0; i + 1 < byte && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(col);
}

// The parser's own explanation without its "[json.exception...] parse error at
// ...: " preamble.
std::string parse_reason(const std::string& what) {
  auto p = what.find(": ");
  std::string r = p == std::string::npos ? what : what.substr(p + 2);
  if (auto q = r.find(" - "); q != std::string::npos) r = r.substr(q + 3);
  return r;
}

}  // namespace

Result<RecordJson> parse_record(std::string_view text, const std::string& what) {
  // nlohmann refuses it too, but quoting the bad bytes back in its message.
  LS_TRY(check_utf8(text, what, ErrorKind::kUsage));
  if (json_nesting_exceeds(text))
    return bad(what,
               "invalid JSON: nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  RecordJson doc;
  try {
    doc = RecordJson::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    bool truncated = e.byte >= text.size();
    return bad(what, std::string(truncated ? "truncated JSON" : "invalid JSON") + " at " +
                         position(text, e.byte) + ": " + parse_reason(e.what()));
  } catch (const nlohmann::json::exception& e) {  // a number too large for a double
    return bad(what, std::string("invalid JSON: ") + e.what());
  }
  if (!doc.is_object()) return bad(what, "not a run record (expected a JSON object)");
  const RecordJson& schema = member(doc, "schema");
  if (!schema.is_string())
    return bad(what, "not a run record (no \"schema\": \"lockstep.run-record/v1\")");
  const std::string s = schema.get<std::string>();
  if (s.rfind(kRecordSchemaPrefix, 0) != 0)
    return bad(what, "not a run record (schema \"" + s + "\")");
  std::string_view num = std::string_view(s).substr(kRecordSchemaPrefix.size());
  int version = 0;
  auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), version);
  if (ec != std::errc() || end != num.data() + num.size() || version <= 0)
    return bad(what, "not a run record (schema \"" + s + "\")");
  if (version != kRecordSchemaVersion)
    return fail("record " + what + " has schema version " + std::to_string(version) +
                    "; this lockstep reads version " + std::to_string(kRecordSchemaVersion),
                ErrorKind::kUnsupported);
  if (!member(doc, "run_id").is_string()) return bad(what, "\"run_id\" is missing or not a string");
  const RecordJson& jobs = member(doc, "jobs");
  if (!jobs.is_array()) return bad(what, "\"jobs\" is missing or not an array");
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (!jobs[i].is_object() || !member(jobs[i], "name").is_string())
      return bad(what, "jobs[" + std::to_string(i) + "] is not a job (an object with a \"name\")");
  }
  return doc;
}

Result<LoadedRecord> load_record_file(const fs::path& file) {
  auto text = read_file(file);
  if (!text) return fail(Error(text.error()).context("read record " + file.string()));
  LoadedRecord r;
  r.file = file;
  r.dir = file.parent_path();
  // Errors name the record "record <file>: ..." so the message reads the same
  // for parse and shape problems.
  auto doc = parse_record(*text, file.string());
  if (!doc) {
    Error e = doc.error();
    if (e.kind() == ErrorKind::kUsage) e = Error("record " + e.message(), 0, ErrorKind::kUsage);
    return fail(e);
  }
  r.doc = std::move(*doc);
  return r;
}

Result<LoadedRecord> load_record(const std::string& arg, const fs::path& state_dir) {
  std::error_code ec;
  fs::path p(arg);
  if (fs::is_directory(p, ec) && fs::exists(p / "record.json", ec))
    return load_record_file(p / "record.json");
  if (fs::is_regular_file(p, ec)) return load_record_file(p);
  bool looks_like_id =
      !arg.empty() && arg.find('/') == std::string::npos && arg != "." && arg != "..";
  if (looks_like_id) {
    fs::path f = state_dir / "runs" / arg / "record.json";
    if (fs::exists(f, ec)) return load_record_file(f);
    if (fs::is_directory(state_dir / "runs" / arg, ec))
      return fail("run '" + arg + "' has no record (" + f.string() + " is missing)",
                  ErrorKind::kUsage);
    return fail(
        "no run '" + arg + "' in " + (state_dir / "runs").string() + " and no file of that name",
        ErrorKind::kUsage);
  }
  return fail("no record at " + arg, ErrorKind::kUsage);
}

const RecordJson& member(const RecordJson& obj, std::string_view key) {
  static const RecordJson null_value;
  if (!obj.is_object()) return null_value;
  auto it = obj.find(std::string(key));
  return it == obj.end() ? null_value : *it;
}

std::string str_or(const RecordJson& obj, std::string_view key, std::string fallback) {
  const RecordJson& v = member(obj, key);
  return v.is_string() ? v.get<std::string>() : fallback;
}

long long int_or(const RecordJson& obj, std::string_view key, long long fallback) {
  const RecordJson& v = member(obj, key);
  return v.is_number_integer() ? v.get<long long>() : fallback;
}

}  // namespace lockstep::runner
