#include "runner/engine/job_plan.hpp"

#include "common/fs.hpp"
#include "registry-mirror/reference.hpp"

namespace lockstep::runner {
namespace fs = std::filesystem;

Result<JobPlan> load_job_plan(const fs::path& file) {
  const std::string where = "--plan " + file.string();
  auto text = read_file(file);
  if (!text) return fail(where + ": " + text.error().message(), ErrorKind::kUsage);
  auto parsed = parse_json(*text, where);
  if (!parsed) return fail(parsed.error().message(), ErrorKind::kUsage);
  const Json& j = *parsed;
  auto bad = [&](const std::string& what) { return fail(where + ": " + what, ErrorKind::kUsage); };
  if (!j.is_object()) return bad("the plan is not a JSON object");
  auto str = [&](const char* k, bool required) -> Result<std::string> {
    if (!j.contains(k)) {
      if (required) return bad("'" + std::string(k) + "' is missing");
      return std::string();
    }
    if (!j[k].is_string() || (required && j[k].get<std::string>().empty()))
      return bad("'" + std::string(k) + "' must be a non-empty string");
    return j[k].get<std::string>();
  };
  auto obj = [&](const char* k) -> Result<Json> {
    if (!j.contains(k) || j[k].is_null()) return Json::object();
    if (!j[k].is_object()) return bad("'" + std::string(k) + "' must be an object");
    return j[k];
  };
  JobPlan p;
  LS_TRY_ASSIGN(std::string wf, str("workflow", true));
  p.workflow = wf;
  bool outside = p.workflow.is_absolute();
  for (const auto& part : p.workflow) outside = outside || part == "..";
  if (outside) return bad("'workflow' must be a path inside the checkout, got '" + wf + "'");
  LS_TRY_ASSIGN(p.job, str("job", true));
  LS_TRY_ASSIGN(p.matrix, obj("matrix"));
  LS_TRY_ASSIGN(std::string event, str("event", false));
  if (!event.empty()) p.event = event;
  LS_TRY_ASSIGN(p.event_payload, obj("event_payload"));
  LS_TRY_ASSIGN(Json needs, obj("needs"));
  LS_TRY_ASSIGN(p.needs, given_needs_from_json(needs, where + ": 'needs'"));
  LS_TRY_ASSIGN(Json pins, obj("pins"));
  for (const auto& [key, into] :
       {std::pair<const char*, std::map<std::string, std::string>*>{"images", &p.image_pins},
        {"actions", &p.action_pins}}) {
    if (!pins.contains(key)) continue;
    if (!pins[key].is_object()) return bad("'pins." + std::string(key) + "' must be an object");
    for (auto it = pins[key].begin(); it != pins[key].end(); ++it) {
      if (!it->is_string() || it->get<std::string>().empty())
        return bad("'pins." + std::string(key) + "' of '" + it.key() + "' must be a string");
      (*into)[it.key()] = it->get<std::string>();
    }
  }
  if (pins.contains("runtime")) {
    if (!pins["runtime"].is_string()) return bad("'pins.runtime' must be a string");
    p.runtime_pin = pins["runtime"].get<std::string>();
  }
  return p;
}

void add_record_pins(const Json& job, Json& pins, bool local_images) {
  if (!pins.is_object()) pins = Json::object();
  for (const char* k : {"images", "actions"})
    if (!pins.contains(k) || !pins[k].is_object()) pins[k] = Json::object();
  if (!pins.contains("runtime") || !pins["runtime"].is_string()) pins["runtime"] = "";
  if (!job.is_object()) return;
  auto str = [](const Json& o, const char* k) {
    return o.is_object() && o.contains(k) && o[k].is_string() ? o[k].get<std::string>()
                                                              : std::string();
  };
  auto pin = [&](const char* kind, const std::string& ref, const std::string& resolved) {
    if (ref.empty() || resolved.empty() || pins[kind].contains(ref)) return;
    if (!local_images && std::string(kind) == "images") {
      auto r = registry::Reference::parse(ref);
      if (!r || r->domain == "localhost") return;
    }
    pins[kind][ref] = resolved;
  };
  if (job.contains("image"))
    pin("images", str(job["image"], "ref"), str(job["image"], "manifest_digest"));
  if (job.contains("services") && job["services"].is_array())
    for (const auto& s : job["services"]) pin("images", str(s, "image"), str(s, "manifest_digest"));
  if (job.contains("inputs") && job["inputs"].is_array())
    for (const auto& in : job["inputs"]) {
      const std::string kind = str(in, "kind");
      if (kind == "action" || kind == "workflow")
        pin("actions", str(in, "reference"), str(in, "resolved"));
      else if (kind == "image")
        pin("images", str(in, "reference"), str(in, "resolved"));
      else if (kind == "runtime" && pins["runtime"].get<std::string>().empty())
        pins["runtime"] = str(in, "resolved");
    }
}

}  // namespace lockstep::runner
