// The built-in functions of GitHub Actions expressions.
#include <cctype>

#include "common/json.hpp"
#include "common/utf8.hpp"
#include "pipeline/expr_eval.hpp"

namespace lockstep::pipeline::expr {
namespace {

std::string str(const Ref& r) {
  return to_display_string(r.value());
}

bool icontains(std::string_view hay, std::string_view needle) {
  std::string h = to_upper(hay), n = to_upper(needle);
  return h.find(n) != std::string::npos;
}

std::string quote_short(std::string_view s) {
  constexpr size_t kMax = 40;
  std::string out = "'" + std::string(utf8_prefix(s, kMax));
  if (s.size() > kMax) out += "...";
  return out + "'";
}

// format('{0} and {{literal}}', a): {N} is argument N, {{ and }} are braces.
Result<Ref> format(const std::vector<Ref>& args) {
  const std::string fmt = str(args[0]);
  std::string out;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '{' && i + 1 < fmt.size() && fmt[i + 1] == '{') {
      out += '{';
      ++i;
    } else if (c == '}' && i + 1 < fmt.size() && fmt[i + 1] == '}') {
      out += '}';
      ++i;
    } else if (c == '{') {
      size_t j = i + 1;
      while (j < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[j]))) ++j;
      if (j == i + 1 || j >= fmt.size() || fmt[j] != '}' || j - i > 6) {
        return fail("format(): invalid format string " + quote_short(fmt), ErrorKind::kWorkflow);
      }
      size_t n = std::stoul(fmt.substr(i + 1, j - i - 1));
      if (n + 1 >= args.size()) {
        return fail("format(): " + quote_short(fmt) + " references argument {" + std::to_string(n) +
                        "} but " + std::to_string(args.size() - 1) +
                        (args.size() == 2 ? " argument was" : " arguments were") + " given",
                    ErrorKind::kWorkflow);
      }
      out += str(args[n + 1]);
      i = j;
    } else if (c == '}') {
      return fail("format(): invalid format string " + quote_short(fmt), ErrorKind::kWorkflow);
    } else {
      out += c;
    }
  }
  return Ref::own(std::move(out));
}

JobStatus status_of(const EvalContext& ctx) {
  return ctx.status;
}

}  // namespace

Result<Ref> call_function(const std::string& name, const std::vector<Ref>& args,
                          const EvalContext& ctx) {
  if (name == "contains") {
    const Value& search = args[0].value();
    if (search.is_array()) {
      for (const Value& e : search) {
        if (refs_loose_equal(Ref::borrow(e, args[0]), args[1])) return Ref::own(true);
      }
      return Ref::own(false);
    }
    return Ref::own(icontains(str(args[0]), str(args[1])));
  }
  if (name == "startswith" || name == "endswith") {
    std::string s = to_upper(str(args[0])), p = to_upper(str(args[1]));
    bool ok = p.size() <= s.size() &&
              (name == "startswith" ? s.compare(0, p.size(), p) == 0
                                    : s.compare(s.size() - p.size(), p.size(), p) == 0);
    return Ref::own(ok);
  }
  if (name == "format") return format(args);
  if (name == "join") {
    std::string sep = args.size() > 1 ? str(args[1]) : ",";
    const Value& v = args[0].value();
    if (!v.is_array()) return Ref::own(str(args[0]));
    std::string out;
    for (size_t i = 0; i < v.size(); ++i) {
      if (i) out += sep;
      out += to_display_string(v[i]);
    }
    return Ref::own(std::move(out));
  }
  // Strings are UTF-8 (readers and step outputs see to it); should one not
  // be, toJSON writes U+FFFD rather than fail the expression.
  if (name == "tojson")
    return Ref::own(args[0].value().dump(2, ' ', false, Value::error_handler_t::replace));
  if (name == "fromjson") {
    std::string text = str(args[0]);
    if (json_nesting_exceeds(text))
      return fail("fromJSON(): " + quote_short(text) + " nests deeper than " +
                      std::to_string(kMaxJsonDepth) + " levels",
                  ErrorKind::kWorkflow);
    Value parsed = Value::parse(text, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) {
      return fail("fromJSON(): " + quote_short(text) + " is not valid JSON", ErrorKind::kWorkflow);
    }
    return Ref::own(std::move(parsed));
  }
  if (name == "hashfiles") {
    if (!ctx.hash_files) return fail("hashFiles() is not available here", ErrorKind::kWorkflow);
    std::vector<std::string> patterns;
    for (const Ref& a : args) patterns.push_back(str(a));
    LS_TRY_ASSIGN(std::string digest, ctx.hash_files(patterns));
    return Ref::own(std::move(digest));
  }
  if (name == "success") return Ref::own(status_of(ctx) == JobStatus::kSuccess);
  if (name == "failure") return Ref::own(status_of(ctx) == JobStatus::kFailure);
  if (name == "cancelled") return Ref::own(status_of(ctx) == JobStatus::kCancelled);
  if (name == "always") return Ref::own(true);
  return fail("unknown function '" + name + "'", ErrorKind::kWorkflow);
}

}  // namespace lockstep::pipeline::expr
