#include "runner/records/record.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <fstream>

#include "cache/artifacts.hpp"
#include "common/digest.hpp"
#include "common/fs.hpp"
#include "common/time.hpp"
#include "runner/cli/version.hpp"

namespace lockstep::runner {
namespace fs = std::filesystem;

std::string rfc3339(std::chrono::system_clock::time_point t) {
  if (t.time_since_epoch().count() == 0) return "";
  return rfc3339_ms(t);
}

namespace {

std::string first_line_value(const fs::path& file, const std::string& key) {
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key, 0) == 0) {
      auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string v = line.substr(colon + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  }
  return "";
}

std::string host_id() {
  auto id = read_file("/etc/machine-id");
  std::string basis = id ? *id : std::string();
  if (basis.empty()) {
    char h[256] = {};
    ::gethostname(h, sizeof h - 1);
    basis = h;
  }
  return sha256_of(basis).hex().substr(0, 16);
}

const char* result_name(JobResult r) {
  return to_string(r);
}

class Db {
 public:
  ~Db() {
    if (db_) sqlite3_close(db_);
  }
  Status open(const fs::path& file) {
    if (sqlite3_open_v2(file.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
        SQLITE_OK)
      return fail("open " + file.string() + ": " + (db_ ? sqlite3_errmsg(db_) : "out of memory"));
    sqlite3_busy_timeout(db_, 10000);
    return exec(
        "CREATE TABLE IF NOT EXISTS runs(id TEXT PRIMARY KEY, kind TEXT, workflow TEXT, "
        "started_at TEXT, duration_ms INTEGER, result TEXT, exit_code INTEGER, commit_sha TEXT, "
        "record TEXT);"
        "CREATE TABLE IF NOT EXISTS jobs(run_id TEXT, idx INTEGER, name TEXT, result TEXT, "
        "env_hash TEXT, duration_ms INTEGER, PRIMARY KEY (run_id, idx));");
  }
  Status exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string m = err ? err : "unknown error";
      sqlite3_free(err);
      return fail("lockstep.db: " + m);
    }
    return {};
  }
  sqlite3* get() { return db_; }

 private:
  sqlite3* db_ = nullptr;
};

class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt& text(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& integer(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  int step() { return s_ ? sqlite3_step(s_) : SQLITE_ERROR; }
  void reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  std::string col_text(int i) {
    auto p = sqlite3_column_text(s_, i);
    return p ? reinterpret_cast<const char*>(p) : "";
  }
  int64_t col_int(int i) { return sqlite3_column_int64(s_, i); }

 private:
  sqlite3_stmt* s_ = nullptr;
};

std::string json_str(const Json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}

}  // namespace

Json ambient_fingerprint() {
  Json a = Json::object();
  struct utsname u {};
  if (::uname(&u) == 0) {
    a["kernel"] = std::string(u.release);
    a["kernel_version"] = std::string(u.version);
    a["machine"] = std::string(u.machine);
  }
  a["cpu_model"] = first_line_value("/proc/cpuinfo", "model name");
  a["cpus"] = static_cast<int64_t>(::sysconf(_SC_NPROCESSORS_ONLN));
  a["memory_bytes"] = static_cast<int64_t>(::sysconf(_SC_PHYS_PAGES)) *
                      static_cast<int64_t>(::sysconf(_SC_PAGE_SIZE));
  std::error_code ec;
  a["cgroup"] = fs::exists("/sys/fs/cgroup/cgroup.controllers", ec) ? "v2" : "v1";
  a["lockstep_build"] = std::string(kVersion);
  char h[256] = {};
  ::gethostname(h, sizeof h - 1);
  a["hostname"] = std::string(h);
  a["os"] = first_line_value("/etc/os-release", "PRETTY_NAME=");
  if (auto os = read_file("/etc/os-release")) {
    auto p = os->find("PRETTY_NAME=");
    if (p != std::string::npos) {
      std::string v = os->substr(p + 12, os->find('\n', p) - p - 12);
      v.erase(std::remove(v.begin(), v.end(), '"'), v.end());
      a["os"] = v;
    }
  }
  return a;
}

std::string builder_id(const std::string& kind) {
  return "https://lockstep.dev/builder/" + kind + "@" + host_id();
}

Json job_record(const JobReport& r, size_t index, const fs::path& run_dir,
                const fs::path& state_dir, const std::string& run_id) {
  Json j;
  j["index"] = static_cast<int64_t>(index + 1);
  j["id"] = r.job_id;
  j["name"] = r.display_name;
  j["matrix"] = r.matrix.is_object() ? Json::parse(r.matrix.dump()) : Json::object();
  // Objects are written with sorted keys; the axes keep declaration order.
  Json axes = Json::array();
  if (r.matrix.is_object())
    for (auto it = r.matrix.begin(); it != r.matrix.end(); ++it) axes.push_back(it.key());
  j["matrix_axes"] = axes;
  j["result"] = result_name(r.outcome.result);
  j["reason"] = r.outcome.reason;
  j["continue_on_error"] = r.outcome.continue_on_error;
  j["env_hash"] = r.env_hash;
  j["env_doc"] = r.env_doc.is_null() ? Json::object() : r.env_doc;
  std::string platform = "linux/amd64";
  if (r.env_doc.is_object() && r.env_doc.contains("image"))
    platform = json_str(r.env_doc["image"], "platform");
  j["image"] = {{"ref", r.image}, {"manifest_digest", r.image_digest}, {"platform", platform}};
  j["network"] = r.network;
  if (!r.egress.is_null()) j["egress"] = r.egress;
  j["started_at"] = rfc3339(r.started_at);
  j["duration_ms"] = static_cast<int64_t>(r.outcome.duration.count());
  j["usage"] = {{"peak_memory_bytes", static_cast<int64_t>(r.usage.peak_memory_bytes)},
                {"cpu_time_ms",
                 std::chrono::duration_cast<std::chrono::milliseconds>(r.usage.cpu_time).count()},
                {"oom_killed", r.usage.oom_killed}};
  auto stage_steps = [](const std::vector<StepReport>& list) {
    Json out = Json::array();
    for (const auto& s : list)
      out.push_back({{"name", s.name},
                     {"outcome", result_name(s.outcome)},
                     {"conclusion", result_name(s.conclusion)},
                     {"reason", s.reason},
                     {"duration_ms", static_cast<int64_t>(s.duration.count())}});
    return out;
  };
  if (!r.pre_steps.empty()) j["pre_steps"] = stage_steps(r.pre_steps);
  if (!r.post_steps.empty()) j["post_steps"] = stage_steps(r.post_steps);
  Json steps = Json::array();
  for (size_t i = 0; i < r.steps.size(); ++i) {
    const auto& s = r.steps[i];
    Json st = {{"index", static_cast<int64_t>(i + 1)},
               {"id", s.id},
               {"name", s.name},
               {"outcome", result_name(s.outcome)},
               {"conclusion", result_name(s.conclusion)},
               {"reason", s.reason},
               {"duration_ms", static_cast<int64_t>(s.duration.count())},
               {"env_hash", s.env_hash},
               {"env_doc", s.env_doc.is_null() ? Json(nullptr) : s.env_doc}};
    if (s.exit_code >= 0) st["exit_code"] = s.exit_code;
    steps.push_back(std::move(st));
  }
  j["steps"] = steps;
  Json outputs = Json::object();
  for (const auto& [k, v] : r.outputs) outputs[k] = v;
  j["outputs"] = outputs;
  Json artifacts = Json::array();
  cache::ArtifactStore store(state_dir);
  for (const auto& name : r.artifacts) {
    auto a = store.get(run_id, name);
    if (!a) continue;
    Json files = Json::array();
    for (const auto& f : a->files) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", f.mode);
      files.push_back({{"path", f.path},
                       {"mode", mode},
                       {"size", static_cast<int64_t>(f.size)},
                       {"digest", f.digest.str()}});
    }
    artifacts.push_back({{"name", a->name},
                         {"digest", a->digest.str()},
                         {"size", static_cast<int64_t>(a->size)},
                         {"files", files}});
  }
  j["artifacts"] = artifacts;
  std::error_code ec;
  j["log"] = r.log_file.empty() ? "" : fs::relative(r.log_file, run_dir, ec).string();
  Json services = Json::array();
  for (const auto& s : r.services)
    services.push_back({{"name", s.name},
                        {"image", s.image},
                        {"manifest_digest", s.manifest_digest},
                        {"log", fs::relative(s.log_file, run_dir, ec).string()}});
  j["services"] = services;
  // What each image and checkout resolved to, and whether lockstep.lock
  // pinned it (unpinned inputs are resolved at run time and recorded here).
  Json inputs = Json::array();
  for (const auto& in : r.inputs)
    inputs.push_back({{"kind", in.kind},
                      {"reference", in.reference},
                      {"resolved", in.resolved},
                      {"pinned", in.pinned}});
  j["inputs"] = inputs;
  if (!r.call.is_null()) j["call"] = r.call;
  return j;
}

Json build_record(const RecordInput& in) {
  Json r;
  r["schema"] = kRecordSchema;
  r["run_id"] = in.run_id;
  r["kind"] = in.kind;
  r["replay_of"] = in.replay_of.empty() ? Json(nullptr) : Json(in.replay_of);
  r["builder_id"] = builder_id(in.kind);
  r["lockstep_version"] = kVersion;
  r["started_at"] = rfc3339(in.started_at);
  r["finished_at"] = rfc3339(in.finished_at);
  r["duration_ms"] =
      std::chrono::duration_cast<std::chrono::milliseconds>(in.finished_at - in.started_at).count();
  JobResult result = JobResult::kSuccess;
  Json jobs = Json::array();
  if (in.jobs) {
    for (size_t i = 0; i < in.jobs->size(); ++i) {
      const auto& jr = (*in.jobs)[i];
      result = worse(result, jr.outcome.counted());
      jobs.push_back(job_record(jr, i, in.run_dir, in.state_dir, in.run_id));
    }
  }
  // An interrupted run was cancelled whatever its jobs did.
  r["result"] = in.interrupted ? "cancelled" : to_string(result);
  r["exit_code"] = in.exit_code;
  r["ambient"] = ambient_fingerprint();
  r["workflow"] = {{"path", in.workflow_path.string()},
                   {"name", in.workflow_name},
                   {"digest", sha256_of(in.workflow_text).str()},
                   {"file", "workflow.yml"},
                   {"text", in.workflow_text}};
  if (!in.called_files.empty()) {
    Json files = Json::object();
    for (const auto& [path, text] : in.called_files) files[path] = text;
    r["workflow"]["called_files"] = files;
  }
  if (in.lock_path)
    r["lock"] = {{"path", in.lock_path->string()}, {"digest", sha256_of(in.lock_text).str()}};
  else
    r["lock"] = nullptr;
  if (in.source_url.empty() && in.source_commit.empty()) {
    r["source"] = nullptr;
  } else {
    r["source"] = {{"url", in.source_url},
                   {"ref", in.source_ref},
                   {"commit", in.source_commit},
                   {"tree", in.source_tree},
                   {"commit_time", in.source_commit_time},
                   {"dirty_patch_digest",
                    in.dirty_patch.empty() ? Json(nullptr) : Json(sha256_of(in.dirty_patch).str())},
                   {"dirty_patch", in.dirty_patch.empty() ? Json(nullptr) : Json(in.dirty_patch)}};
  }
  r["options"] = in.options;
  r["run_identity"] = in.run_identity;
  r["secret_key_id"] = in.secret_key_id;
  r["jobs"] = jobs;
  r["verify"] = in.verify.is_null() ? Json(nullptr) : in.verify;
  return r;
}

Status save_record(const fs::path& state_dir, const fs::path& run_dir, const Json& record) {
  fs::path file = run_dir / "record.json";
  if (record.contains("workflow") && record["workflow"].contains("text"))
    LS_TRY(
        write_file_atomic(run_dir / "workflow.yml", record["workflow"]["text"].get<std::string>()));
  LS_TRY(write_file_atomic(file, pretty_json(record)));
  Db db;
  LS_TRY(db.open(state_dir / "lockstep.db"));
  LS_TRY(db.exec("BEGIN IMMEDIATE"));
  {
    Stmt run(db.get(),
             "INSERT OR REPLACE INTO runs(id, kind, workflow, started_at, duration_ms, result, "
             "exit_code, commit_sha, record) VALUES (?,?,?,?,?,?,?,?,?)");
    std::string commit;
    if (record["source"].is_object()) commit = json_str(record["source"], "commit");
    run.text(1, json_str(record, "run_id"))
        .text(2, json_str(record, "kind"))
        .text(3, json_str(record["workflow"], "path"))
        .text(4, json_str(record, "started_at"))
        .integer(5, record.value("duration_ms", int64_t{0}))
        .text(6, json_str(record, "result"))
        .integer(7, json_int(record, "exit_code"))
        .text(8, commit)
        .text(9, file.string());
    if (run.step() != SQLITE_DONE) {
      (void)db.exec("ROLLBACK");
      return fail(std::string("lockstep.db: insert run: ") + sqlite3_errmsg(db.get()));
    }
    Stmt del(db.get(), "DELETE FROM jobs WHERE run_id = ?");
    del.text(1, json_str(record, "run_id"));
    del.step();
    Stmt job(db.get(),
             "INSERT INTO jobs(run_id, idx, name, result, env_hash, duration_ms) VALUES "
             "(?,?,?,?,?,?)");
    for (const auto& j : record["jobs"]) {
      job.text(1, json_str(record, "run_id"))
          .integer(2, j.value("index", int64_t{0}))
          .text(3, json_str(j, "name"))
          .text(4, json_str(j, "result"))
          .text(5, json_str(j, "env_hash"))
          .integer(6, j.value("duration_ms", int64_t{0}));
      if (job.step() != SQLITE_DONE) {
        (void)db.exec("ROLLBACK");
        return fail(std::string("lockstep.db: insert job: ") + sqlite3_errmsg(db.get()));
      }
      job.reset();
    }
  }
  return db.exec("COMMIT");
}

Result<std::vector<RunRow>> list_runs(const fs::path& state_dir, size_t limit) {
  std::vector<RunRow> rows;
  std::error_code ec;
  if (!fs::exists(state_dir / "lockstep.db", ec)) return rows;
  Db db;
  LS_TRY(db.open(state_dir / "lockstep.db"));
  Stmt q(db.get(),
         "SELECT r.id, r.kind, r.workflow, r.started_at, r.duration_ms, r.result, r.exit_code, "
         "r.commit_sha, (SELECT COUNT(*) FROM jobs j WHERE j.run_id = r.id), (SELECT COUNT(*) "
         "FROM jobs j WHERE j.run_id = r.id AND j.result = 'failure') FROM runs r ORDER BY "
         "r.started_at DESC, r.id DESC LIMIT ?");
  q.integer(1, static_cast<int64_t>(limit));
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    RunRow row;
    row.id = q.col_text(0);
    row.kind = q.col_text(1);
    row.workflow = q.col_text(2);
    row.started_at = q.col_text(3);
    row.duration_ms = q.col_int(4);
    row.result = q.col_text(5);
    row.exit_code = static_cast<int>(q.col_int(6));
    row.commit = q.col_text(7);
    row.jobs = static_cast<int>(q.col_int(8));
    row.failed = static_cast<int>(q.col_int(9));
    rows.push_back(std::move(row));
  }
  if (rc != SQLITE_DONE) return fail(std::string("lockstep.db: ") + sqlite3_errmsg(db.get()));
  return rows;
}

bool valid_run_id(const std::string& id) {
  if (id.empty() || id.size() > 200 || id[0] == '.') return false;
  for (char c : id)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-')
      return false;
  return true;
}

Status remove_run(const fs::path& state_dir, const std::string& id) {
  if (!valid_run_id(id)) return fail("not a run id: '" + id + "'", ErrorKind::kUsage);
  const fs::path dir = state_dir / "runs" / id;
  const fs::path aside = state_dir / "runs" / (".removing-" + id);
  std::error_code ec;
  bool moved = false;
  if (fs::exists(dir, ec)) {
    if (::rename(dir.c_str(), aside.c_str()) != 0) return fail_errno("remove run " + id);
    moved = true;
  }
  if (fs::exists(state_dir / "lockstep.db", ec)) {
    Db db;
    Status st = db.open(state_dir / "lockstep.db");
    if (st) {
      st = db.exec("BEGIN IMMEDIATE");
      if (st) {
        Stmt jobs(db.get(), "DELETE FROM jobs WHERE run_id = ?");
        Stmt runs(db.get(), "DELETE FROM runs WHERE id = ?");
        bool ok = jobs.text(1, id).step() == SQLITE_DONE && runs.text(1, id).step() == SQLITE_DONE;
        st = ok ? db.exec("COMMIT") : fail(std::string("lockstep.db: ") + sqlite3_errmsg(db.get()));
        if (!ok) (void)db.exec("ROLLBACK");
      }
    }
    if (!st) {
      if (moved) (void)::rename(aside.c_str(), dir.c_str());
      return fail(std::move(st.error()).context("remove run " + id));
    }
  }
  if (moved) fs::remove_all(aside, ec);
  if (ec) return fail("remove " + aside.string() + ": " + ec.message());
  fs::remove_all(state_dir / "artifacts" / "runs" / id, ec);
  if (ec) return fail("remove the artifacts of run " + id + ": " + ec.message());
  return {};
}

}  // namespace lockstep::runner
