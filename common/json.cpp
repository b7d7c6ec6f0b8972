#include "common/json.hpp"
#include <algorithm>

#include "common/utf8.hpp"

namespace lockstep {
namespace {

bool has_float(const Json& j, std::string& where, const std::string& path) {
  if (j.is_number_float()) {
    where = path.empty() ? "/" : path;
    return true;
  }
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it)
      if (has_float(it.value(), where, path + "/" + it.key())) return true;
  } else if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i)
      if (has_float(j[i], where, path + "/" + std::to_string(i))) return true;
  }
  return false;
}

bool has_invalid_utf8(const Json& j, std::string& where, const std::string& path) {
  if (j.is_string() && !is_valid_utf8(j.get_ref<const std::string&>())) {
    where = path.empty() ? "/" : path;
    return true;
  }
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      // The path is shown in a message: a key that is not UTF-8 is shown replaced.
      std::string here = path + "/" + to_valid_utf8(it.key());
      if (!is_valid_utf8(it.key())) {
        where = here;
        return true;
      }
      if (has_invalid_utf8(it.value(), where, here)) return true;
    }
  } else if (j.is_array()) {
    for (size_t i = 0; i < j.size(); ++i)
      if (has_invalid_utf8(j[i], where, path + "/" + std::to_string(i))) return true;
  }
  return false;
}

}  // namespace

Result<std::string> canonical_json(const Json& doc) {
  std::string where;
  if (has_float(doc, where, ""))
    return fail("canonical JSON cannot hold a floating-point number (at " + where + ")");
  // Not replaced: a hash over replaced text would make two different inputs
  // equal. Readers refuse invalid UTF-8 where it comes in (common/utf8.hpp);
  // this is the backstop, an error instead of dump()'s exception.
  if (has_invalid_utf8(doc, where, ""))
    return fail("canonical JSON cannot hold text that is not UTF-8 (at " + where + ")");
  return doc.dump(-1, ' ', false, Json::error_handler_t::strict);
}

std::string pretty_json(const Json& doc) {
  return doc.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

bool json_nesting_exceeds(std::string_view text, size_t limit) {
  size_t depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return true;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return false;
}

Result<Json> parse_json(std::string_view text, std::string_view what) {
  if (json_nesting_exceeds(text))
    return fail(std::string(what) + ": invalid JSON: nested deeper than " +
                std::to_string(kMaxJsonDepth) + " levels");
  try {
    return Json::parse(text);
  } catch (const Json::exception& e) {
    // A parse error, or a number too large for a double (out_of_range 406).
    // nlohmann quotes the bytes it read last, which may not be UTF-8.
    return fail(printable(std::string(what) + ": invalid JSON: " + e.what()));
  }
}

}  // namespace lockstep

namespace lockstep {
namespace {

void diff_walk(const Json& a, const Json& b, const std::string& path, std::vector<std::string>& out,
               size_t max) {
  if (max && out.size() >= max) return;
  auto show = [](const Json& v) {
    std::string s = v.dump(-1, ' ', false, Json::error_handler_t::replace);
    return s.size() > 120 ? std::string(utf8_prefix(s, 117)) + "..." : s;
  };
  if (a.is_object() && b.is_object()) {
    std::vector<std::string> keys;
    for (auto it = a.begin(); it != a.end(); ++it) keys.push_back(it.key());
    for (auto it = b.begin(); it != b.end(); ++it)
      if (!a.contains(it.key())) keys.push_back(it.key());
    std::sort(keys.begin(), keys.end());
    for (const auto& k : keys) {
      std::string p = path.empty() ? k : path + "." + k;
      if (!a.contains(k))
        out.push_back(p + ": (absent) -> " + show(b[k]));
      else if (!b.contains(k))
        out.push_back(p + ": " + show(a[k]) + " -> (absent)");
      else
        diff_walk(a[k], b[k], p, out, max);
      if (max && out.size() >= max) return;
    }
    return;
  }
  if (a.is_array() && b.is_array()) {
    size_t n = std::max(a.size(), b.size());
    for (size_t i = 0; i < n; ++i) {
      std::string p = path + "[" + std::to_string(i) + "]";
      if (i >= a.size())
        out.push_back(p + ": (absent) -> " + show(b[i]));
      else if (i >= b.size())
        out.push_back(p + ": " + show(a[i]) + " -> (absent)");
      else
        diff_walk(a[i], b[i], p, out, max);
      if (max && out.size() >= max) return;
    }
    return;
  }
  if (a != b)
    out.push_back((path.empty() ? "(document)" : path) + ": " + show(a) + " -> " + show(b));
}

}  // namespace

std::vector<std::string> json_differences(const Json& a, const Json& b, size_t max) {
  std::vector<std::string> out;
  diff_walk(a, b, "", out, max);
  return out;
}

}  // namespace lockstep

namespace lockstep {

std::string json_string(const Json& obj, const char* key, const std::string& fallback) {
  if (!obj.is_object()) return fallback;
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return fallback;
  return *it->get_ptr<const std::string*>();
}

int64_t json_int(const Json& obj, const char* key, int64_t fallback) {
  if (!obj.is_object()) return fallback;
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number_integer()) return fallback;
  return it->get<int64_t>();
}

}  // namespace lockstep
