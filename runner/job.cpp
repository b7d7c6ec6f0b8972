#include "runner/job.hpp"

#include "runner/job_internal.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <deque>
#include <fstream>
#include <mutex>

#include "common/fs.hpp"
#include "pipeline/commands.hpp"
#include "pipeline/expr.hpp"
#include "pipeline/options.hpp"
#include "pipeline/shell.hpp"
#include "runner/job_env.hpp"

namespace lockstep::runner {
namespace fs = std::filesystem;
using pipeline::EvalContext;
using pipeline::Value;

std::string slug(const std::string& display_name) {
  std::string s;
  for (char c : display_name) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_') {
      s += c;
    } else if (!s.empty() && s.back() != '-') {
      s += '-';
    }
  }
  while (!s.empty() && s.back() == '-') s.pop_back();
  return s.empty() ? "job" : s.substr(0, 80);
}

pipeline::Value needs_context(const std::vector<const JobReport*>& needed) {
  Value needs = Value::object();
  std::map<std::string, std::vector<const JobReport*>> by_id;
  for (const JobReport* r : needed) by_id[r->job_id].push_back(r);
  for (const auto& [id, reports] : by_id) {
    Value outputs = Value::object();
    for (const JobReport* r : reports)
      for (const auto& [k, v] : r->outputs) outputs[k] = v;
    JobResult result =
        combined(reports, [](const JobReport* r) -> const JobOutcome& { return r->outcome; });
    needs[id] = {{"result", to_string(result)}, {"outputs", outputs}};
  }
  return needs;
}

namespace detail {

std::string step_display_name(const pipeline::Step& s, size_t index) {
  if (!s.name.empty()) return s.name;
  if (s.uses) return *s.uses;
  if (s.run) {
    std::string first = s.run->substr(0, s.run->find('\n'));
    if (first.size() > 60) first = first.substr(0, 57) + "...";
    return first;
  }
  return "step " + std::to_string(index + 1);
}

// The job's log file and the console: every line masked, timestamped in the
// file, prefixed on the console. Keeps the last lines for the report.

Result<std::string> eval_string(const std::string& text, const EvalContext& ctx,
                                const std::string& what) {
  auto r = pipeline::interpolate(text, ctx);
  if (!r) return fail(std::move(r.error()).context(what));
  return r;
}

Result<bool> eval_bool_text(const std::string& text, const EvalContext& ctx, bool dflt,
                            const std::string& what) {
  if (text.empty()) return dflt;
  LS_TRY_ASSIGN(std::string v, eval_string(text, ctx, what));
  if (v == "true") return true;
  if (v == "false") return false;
  return fail(what + ": expected true or false, got '" + v + "'", ErrorKind::kWorkflow);
}

// Minutes from a timeout-minutes value (number text or expression).
Result<std::optional<std::chrono::milliseconds>> eval_minutes(const std::string& text,
                                                              const EvalContext& ctx,
                                                              const std::string& what) {
  if (text.empty()) return std::optional<std::chrono::milliseconds>{};
  LS_TRY_ASSIGN(std::string v, eval_string(text, ctx, what));
  char* end = nullptr;
  double minutes = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || !(minutes > 0))
    return fail(what + ": expected a positive number of minutes, got '" + v + "'",
                ErrorKind::kWorkflow);
  return std::optional<std::chrono::milliseconds>(
      std::chrono::milliseconds(static_cast<int64_t>(minutes * 60000)));
}

bool image_has_bash(const std::vector<fs::path>& layers) {
  for (auto it = layers.rbegin(); it != layers.rend(); ++it) {
    for (const char* p : {"bin/bash", "usr/bin/bash"}) {
      struct stat st {};
      if (::lstat((*it / p).c_str(), &st) == 0) return S_ISREG(st.st_mode) || S_ISLNK(st.st_mode);
    }
  }
  return false;
}

Status JobExecution::apply_parsed_options(const pipeline::ContainerOptions& o,
                                          executor::ContainerSpec& spec) {
  apply_resource_options(o, spec.limits);
  if (o.memory_swap_bytes && o.memory_bytes && *o.memory_swap_bytes != *o.memory_bytes &&
      *o.memory_swap_bytes != 0)
    return fail(
        "container options: --memory-swap other than --memory is not supported "
        "(lockstep runs jobs without swap so that memory limits hold)",
        ErrorKind::kUnsupported);
  if (o.network) {
    if (*o.network == "none")
      spec.network.mode = executor::NetworkMode::kNone;
    else if (*o.network == "host")
      spec.network.mode = executor::NetworkMode::kHost;
    else if (*o.network == "egress")
      spec.network.mode = executor::NetworkMode::kEgress;
    else
      return fail("container options: --network '" + *o.network +
                      "' is not supported (use egress, none or host)",
                  ErrorKind::kUnsupported);
  }
  if (o.user) spec.user = *o.user;
  if (o.workdir) spec.workdir = *o.workdir;
  if (o.hostname) spec.hostname = *o.hostname;
  for (const auto& [k, v] : o.env) spec.env.push_back(k + "=" + v);
  spec.cap_add = o.cap_add;
  spec.cap_drop = o.cap_drop;
  if (o.entrypoint)
    return fail("container options: --entrypoint applies to services, not to job containers",
                ErrorKind::kWorkflow);
  return {};
}

}  // namespace detail

JobOutcome run_job(RunShared& run, const pipeline::JobInstance& instance, size_t index,
                   MatrixPosition pos, const std::vector<const JobReport*>& needed,
                   CancelToken& token, JobReport& report) {
  detail::JobExecution e(run, instance, index, pos, needed, token, report);
  return e.run();
}

executor::UserNamespace default_user_namespace() {
  executor::UserNamespace u;
  u.uid_map = {{0, 100000, 65536}};
  u.gid_map = {{0, 100000, 65536}};
  u.allow_setgroups = true;
  return u;
}

}  // namespace lockstep::runner
