#include "common/json.hpp"

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

}  // namespace

Result<std::string> canonical_json(const Json& doc) {
  std::string where;
  if (has_float(doc, where, ""))
    return fail("canonical JSON cannot hold a floating-point number (at " + where + ")");
  return doc.dump(-1, ' ', false, Json::error_handler_t::strict);
}

std::string pretty_json(const Json& doc) {
  return doc.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

Result<Json> parse_json(std::string_view text, std::string_view what) {
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& e) {
    return fail(std::string(what) + ": invalid JSON: " + e.what());
  }
}

}  // namespace lockstep
