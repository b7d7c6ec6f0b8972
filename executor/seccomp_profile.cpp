// Docker seccomp JSON <-> Profile. Unknown top-level keys are ignored as
// Docker ignores them; anything lockstep cannot honour is an error that names
// where it is ("syscalls[3].args[0]: unknown operator 'SCMP_CMP_XX'").
#include <algorithm>
#include <string>

#include "executor/seccomp_profile.hpp"

namespace lockstep::executor::seccomp {
namespace {

constexpr std::string_view kActions[] = {
    "SCMP_ACT_ALLOW",        "SCMP_ACT_ERRNO", "SCMP_ACT_KILL",  "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP",  "SCMP_ACT_TRACE", "SCMP_ACT_LOG",
};
constexpr std::string_view kOps[] = {
    "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE",        "SCMP_CMP_EQ",
    "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_MASKED_EQ",
};

tl::unexpected<Error> bad(const std::string& where, const std::string& what) {
  return fail("seccomp profile: " + (where.empty() ? what : where + ": " + what),
              ErrorKind::kUsage);
}

Result<std::vector<std::string>> strings(const Json& j, const std::string& where) {
  if (!j.is_array()) return bad(where, "must be a list of strings");
  std::vector<std::string> out;
  for (const Json& e : j) {
    if (!e.is_string()) return bad(where, "must be a list of strings");
    out.push_back(e.get<std::string>());
  }
  return out;
}

Result<uint64_t> number(const Json& j, const std::string& where) {
  if (!j.is_number_unsigned() && !(j.is_number_integer() && j.get<int64_t>() >= 0)) {
    return bad(where, "must be a non-negative integer");
  }
  return j.get<uint64_t>();
}

Result<Filter> parse_filter(const Json& j, const std::string& where) {
  Filter f;
  if (j.is_null()) return f;
  if (!j.is_object()) return bad(where, "must be an object");
  if (j.contains("caps") && !j["caps"].is_null()) {
    LS_TRY_ASSIGN(f.caps, strings(j["caps"], where + ".caps"));
  }
  if (j.contains("arches") && !j["arches"].is_null()) {
    LS_TRY_ASSIGN(f.arches, strings(j["arches"], where + ".arches"));
  }
  if (j.contains("minKernel") && !j["minKernel"].is_null()) {
    if (!j["minKernel"].is_string()) return bad(where + ".minKernel", "must be a string");
    f.min_kernel = j["minKernel"].get<std::string>();
  }
  return f;
}

Result<Rule> parse_rule(const Json& j, const std::string& where) {
  if (!j.is_object()) return bad(where, "must be an object");
  Rule r;
  if (j.contains("names") && !j["names"].is_null()) {
    LS_TRY_ASSIGN(r.names, strings(j["names"], where + ".names"));
  }
  if (j.contains("name")) {  // the old single-name form
    if (!j["name"].is_string()) return bad(where + ".name", "must be a string");
    r.names.push_back(j["name"].get<std::string>());
  }
  if (r.names.empty()) return bad(where, "no syscall names");
  if (!j.contains("action") || !j["action"].is_string()) return bad(where, "missing action");
  r.action = j["action"].get<std::string>();
  if (!known_action(r.action)) return bad(where, "unknown action '" + r.action + "'");
  if (j.contains("errnoRet") && !j["errnoRet"].is_null()) {
    LS_TRY_ASSIGN(uint64_t e, number(j["errnoRet"], where + ".errnoRet"));
    r.errno_ret = static_cast<int>(e);
  }
  if (j.contains("args") && !j["args"].is_null()) {
    if (!j["args"].is_array()) return bad(where + ".args", "must be a list");
    for (size_t i = 0; i < j["args"].size(); ++i) {
      const Json& a = j["args"][i];
      const std::string at = where + ".args[" + std::to_string(i) + "]";
      if (!a.is_object()) return bad(at, "must be an object");
      Arg arg;
      LS_TRY_ASSIGN(uint64_t index, number(a.value("index", Json(0)), at + ".index"));
      if (index > 5) return bad(at, "index " + std::to_string(index) + " out of range 0..5");
      arg.index = static_cast<unsigned>(index);
      LS_TRY_ASSIGN(arg.value, number(a.value("value", Json(0)), at + ".value"));
      LS_TRY_ASSIGN(arg.value_two, number(a.value("valueTwo", Json(0)), at + ".valueTwo"));
      if (!a.contains("op") || !a["op"].is_string()) return bad(at, "missing op");
      arg.op = a["op"].get<std::string>();
      if (!known_op(arg.op)) return bad(at, "unknown operator '" + arg.op + "'");
      r.args.push_back(arg);
    }
  }
  if (j.contains("includes")) {
    LS_TRY_ASSIGN(r.includes, parse_filter(j["includes"], where + ".includes"));
  }
  if (j.contains("excludes")) {
    LS_TRY_ASSIGN(r.excludes, parse_filter(j["excludes"], where + ".excludes"));
  }
  return r;
}

Json filter_json(const Filter& f) {
  Json j = Json::object();
  if (!f.caps.empty()) j["caps"] = f.caps;
  if (!f.arches.empty()) j["arches"] = f.arches;
  if (!f.min_kernel.empty()) j["minKernel"] = f.min_kernel;
  return j;
}

}  // namespace

bool known_action(std::string_view action) {
  return std::find(std::begin(kActions), std::end(kActions), action) != std::end(kActions);
}
bool known_op(std::string_view op) {
  return std::find(std::begin(kOps), std::end(kOps), op) != std::end(kOps);
}

Result<Profile> parse_profile(std::string_view json_text) {
  auto parsed = parse_json(json_text, "seccomp profile");
  if (!parsed) return fail(std::move(parsed.error()).set_kind(ErrorKind::kUsage));
  const Json& j = *parsed;
  if (!j.is_object()) return bad("", "must be a JSON object");
  Profile p;
  if (!j.contains("defaultAction") || !j["defaultAction"].is_string()) {
    return bad("", "missing defaultAction");
  }
  p.default_action = j["defaultAction"].get<std::string>();
  if (!known_action(p.default_action)) {
    return bad("defaultAction", "unknown action '" + p.default_action + "'");
  }
  if (j.contains("defaultErrnoRet") && !j["defaultErrnoRet"].is_null()) {
    LS_TRY_ASSIGN(uint64_t e, number(j["defaultErrnoRet"], "defaultErrnoRet"));
    p.default_errno_ret = static_cast<int>(e);
  }
  if (j.contains("architectures") && !j["architectures"].is_null()) {
    LS_TRY_ASSIGN(p.architectures, strings(j["architectures"], "architectures"));
  }
  if (j.contains("archMap") && !j["archMap"].is_null()) {
    if (!j["archMap"].is_array()) return bad("archMap", "must be a list");
    for (size_t i = 0; i < j["archMap"].size(); ++i) {
      const Json& e = j["archMap"][i];
      const std::string at = "archMap[" + std::to_string(i) + "]";
      if (!e.is_object() || !e.contains("architecture") || !e["architecture"].is_string()) {
        return bad(at, "missing architecture");
      }
      std::vector<std::string> subs;
      if (e.contains("subArchitectures") && !e["subArchitectures"].is_null()) {
        LS_TRY_ASSIGN(subs, strings(e["subArchitectures"], at + ".subArchitectures"));
      }
      p.arch_map.emplace_back(e["architecture"].get<std::string>(), std::move(subs));
    }
  }
  if (j.contains("syscalls") && !j["syscalls"].is_null()) {
    if (!j["syscalls"].is_array()) return bad("syscalls", "must be a list");
    for (size_t i = 0; i < j["syscalls"].size(); ++i) {
      LS_TRY_ASSIGN(Rule r, parse_rule(j["syscalls"][i], "syscalls[" + std::to_string(i) + "]"));
      p.rules.push_back(std::move(r));
    }
  }
  return p;
}

Json to_json(const Profile& p) {
  Json j = Json::object();
  j["defaultAction"] = p.default_action;
  if (p.default_errno_ret) j["defaultErrnoRet"] = *p.default_errno_ret;
  if (!p.architectures.empty()) j["architectures"] = p.architectures;
  if (!p.arch_map.empty()) {
    Json m = Json::array();
    for (const auto& [arch, subs] : p.arch_map) {
      m.push_back({{"architecture", arch}, {"subArchitectures", subs}});
    }
    j["archMap"] = m;
  }
  Json rules = Json::array();
  for (const Rule& r : p.rules) {
    Json jr = {{"names", r.names}, {"action", r.action}};
    if (r.errno_ret) jr["errnoRet"] = *r.errno_ret;
    if (!r.args.empty()) {
      Json args = Json::array();
      for (const Arg& a : r.args) {
        args.push_back(
            {{"index", a.index}, {"value", a.value}, {"valueTwo", a.value_two}, {"op", a.op}});
      }
      jr["args"] = args;
    }
    if (Json inc = filter_json(r.includes); !inc.empty()) jr["includes"] = inc;
    if (Json exc = filter_json(r.excludes); !exc.empty()) jr["excludes"] = exc;
    rules.push_back(jr);
  }
  j["syscalls"] = rules;
  return j;
}

}  // namespace lockstep::executor::seccomp
