#include "cache/image_store_db.hpp"

#include <sys/file.h>

#include "cache/gc_lock.hpp"
#include "common/fs.hpp"
#include "common/json.hpp"

namespace lockstep::cache {
namespace fs = std::filesystem;

namespace {

fs::path db_path(const fs::path& state) {
  return state / "images" / "images.json";
}

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}
bool tag_char(char c) {
  return name_char(c) || (c >= 'A' && c <= 'Z');
}

}  // namespace

Result<ImageDb> load_image_db(const fs::path& state) {
  ImageDb db;
  auto text = read_file(db_path(state));
  if (!text) {
    if (text.error().errnum() == ENOENT) return db;
    return fail(std::move(text.error()));
  }
  LS_TRY_ASSIGN(Json j, parse_json(*text, db_path(state).string()));
  try {
    for (const auto& [k, v] : j.at("images").items()) {
      LS_TRY_ASSIGN(Digest m, Digest::parse(k));
      std::optional<Digest> idx;
      if (v.contains("index")) {
        LS_TRY_ASSIGN(idx, Digest::parse(v.at("index").get<std::string>()));
      }
      db.images.emplace(m, idx);
    }
    for (const auto& [k, v] : j.at("tags").items()) {
      LS_TRY_ASSIGN(Digest m, Digest::parse(v.get<std::string>()));
      db.tags.emplace(k, m);
    }
  } catch (const Json::exception& e) {
    return fail(
        Error(db_path(state).string() + ": malformed: " + e.what(), 0, ErrorKind::kIntegrity));
  }
  return db;
}

Status save_image_db(const fs::path& state, const ImageDb& db) {
  Json images = Json::object(), tags = Json::object();
  for (const auto& [m, idx] : db.images) {
    Json e = Json::object();
    if (idx) e["index"] = idx->str();
    images[m.str()] = e;
  }
  for (const auto& [t, m] : db.tags) tags[t] = m.str();
  return write_file_atomic(db_path(state), pretty_json(Json{{"images", images}, {"tags", tags}}));
}

Result<UniqueFd> lock_image_db(const fs::path& state) {
  return lock_file(state / "images" / ".lock", LOCK_EX);
}

Result<std::string> normalize_tag(std::string_view ref) {
  auto bad = [&](std::string_view why) {
    return fail(Error("invalid image name '" + std::string(ref) + "': " + std::string(why), 0,
                      ErrorKind::kUsage));
  };
  if (ref.empty()) return bad("empty");
  std::string name(ref), tag = "latest";
  size_t slash = name.rfind('/');
  size_t colon = name.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    tag = name.substr(colon + 1);
    name.resize(colon);
  }
  if (tag.empty() || tag.size() > 128) return bad("the tag must be 1 to 128 characters");
  for (char c : tag)
    if (!tag_char(c)) return bad("the tag may only hold letters, digits, '_', '.' and '-'");
  if (name.empty()) return bad("no name before the tag");
  size_t start = 0;
  bool first = true;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    std::string_view comp(name.data() + start, end - start);
    if (comp.empty()) return bad("empty path component");
    bool host = first && end != name.size() &&
                (comp.find('.') != comp.npos || comp.find(':') != comp.npos || comp == "localhost");
    for (char c : comp) {
      if (host && (c == ':' || (c >= 'A' && c <= 'Z'))) continue;
      if (!name_char(c)) return bad("names are lowercase letters, digits, '.', '_', '-' and '/'");
    }
    first = false;
    start = end + 1;
  }
  return name + ":" + tag;
}

std::optional<std::string> docker_hub_form(const std::string& n) {
  size_t slash = n.find('/');
  if (slash == std::string::npos) return "docker.io/library/" + n;
  std::string_view first(n.data(), slash);
  if (first.find('.') != first.npos || first.find(':') != first.npos || first == "localhost")
    return std::nullopt;
  return "docker.io/" + n;
}

}  // namespace lockstep::cache
