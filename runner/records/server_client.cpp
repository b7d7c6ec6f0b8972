#include "runner/records/server_client.hpp"

#include <cctype>

#include "registry-mirror/http.hpp"

namespace lockstep::runner {
namespace fs = std::filesystem;

Result<std::string> server_url(const std::string& given) {
  std::string u = given;
  while (!u.empty() && u.back() == '/') u.pop_back();
  if (u.rfind("http://", 0) != 0 && u.rfind("https://", 0) != 0)
    return fail("--server '" + given + "': expected an http:// or https:// URL", ErrorKind::kUsage);
  if (u.find_first_of(" \t\r\n?#") != std::string::npos)
    return fail("--server '" + given + "': not a URL", ErrorKind::kUsage);
  return u;
}

Result<std::string> server_get(const std::string& server, const std::string& path) {
  registry::HttpRequest req;
  req.url = server + path;
  req.headers = {"Accept: application/json"};
  req.timeout_ms = 30'000;
  req.max_body = 256u << 20;
  registry::HttpSession http;
  auto r = http.perform(req);
  if (!r)
    return fail("cannot reach lockstep server " + server + ": " + r.error().message(),
                ErrorKind::kUnreachable);
  if (r->status == 200) return std::move(r->body);
  // The server's errors are {"error": "..."}.
  std::string why = r->body;
  auto j = Json::parse(r->body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_string())
    why = j["error"].get<std::string>();
  while (!why.empty() && (why.back() == '\n' || why.back() == '\r')) why.pop_back();
  return fail("lockstep server " + server + ": GET " + path + ": " + std::to_string(r->status) +
                  (why.empty() ? "" : " " + why),
              r->status == 404 ? ErrorKind::kNotFound : ErrorKind::kGeneric);
}

Result<Json> server_get_json(const std::string& server, const std::string& path) {
  LS_TRY_ASSIGN(std::string body, server_get(server, path));
  return parse_json(body, "the answer of " + server + path);
}

std::string ServerJob::query() const {
  return attempt > 0 ? "?attempt=" + std::to_string(attempt) : "";
}

std::optional<ServerJob> parse_server_job(const std::string& arg) {
  auto number = [](const std::string& s) -> std::optional<int64_t> {
    if (s.empty() || s.size() > 15) return std::nullopt;
    for (char c : s)
      if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    int64_t n = std::stoll(s);
    if (n <= 0) return std::nullopt;
    return n;
  };
  size_t colon = arg.find(':');
  auto job = number(arg.substr(0, colon));
  if (!job) return std::nullopt;
  ServerJob out;
  out.job = *job;
  if (colon != std::string::npos) {
    auto attempt = number(arg.substr(colon + 1));
    if (!attempt || *attempt > 1'000'000) return std::nullopt;
    out.attempt = static_cast<int>(*attempt);
  }
  return out;
}

Result<ServerRecord> load_server_record(const std::string& server, const ServerJob& job,
                                        const fs::path& state_dir) {
  std::string path = "/api/jobs/" + std::to_string(job.job) + "/record" + job.query();
  LS_TRY_ASSIGN(std::string text, server_get(server, path));
  std::error_code ec;
  fs::create_directories(state_dir / "tmp", ec);
  LS_TRY_ASSIGN(TempDir dir, TempDir::create(state_dir / "tmp", "server-record-"));
  LS_TRY(write_file_atomic(dir.path() / "record.json", text));
  auto rec = load_record_file(dir.path() / "record.json");
  if (!rec)
    return fail(std::move(rec.error())
                    .context("the record of job " + std::to_string(job.job) + " from " + server));
  return ServerRecord{std::move(dir), std::move(*rec)};
}

Result<LoadedRecord> load_any_record(const std::string& arg, const fs::path& state_dir,
                                     const std::optional<std::string>& server,
                                     std::optional<ServerRecord>& holder) {
  if (server) {
    if (auto job = parse_server_job(arg)) {
      LS_TRY_ASSIGN(ServerRecord r, load_server_record(*server, *job, state_dir));
      holder.emplace(std::move(r));
      return holder->record;
    }
  }
  return load_record(arg, state_dir);
}

}  // namespace lockstep::runner
