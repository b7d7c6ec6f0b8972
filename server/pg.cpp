#include "server/pg.hpp"

#include <libpq-fe.h>
#include <poll.h>

#include <cstring>

namespace lockstep::server::pg {

namespace {

Error conn_error(pg_conn* c, std::string_view what) {
  std::string msg = c ? PQerrorMessage(c) : "out of memory";
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  if (auto nl = msg.find('\n'); nl != std::string::npos) msg.resize(nl);
  return Error(std::string(what) + ": " + msg, 0, ErrorKind::kUnavailable);
}

}  // namespace

Param bytea(std::string_view bytes) {
  static const char* hex = "0123456789abcdef";
  std::string s = "\\x";
  s.reserve(2 + bytes.size() * 2);
  for (unsigned char c : bytes) {
    s += hex[c >> 4];
    s += hex[c & 15];
  }
  return s;
}

Rows::Rows(pg_result* r) : r_(r) {}
Rows& Rows::operator=(Rows&& o) noexcept {
  if (this != &o) {
    if (r_) PQclear(r_);
    r_ = o.r_;
    o.r_ = nullptr;
  }
  return *this;
}
Rows::~Rows() {
  if (r_) PQclear(r_);
}
int Rows::size() const {
  return r_ ? PQntuples(r_) : 0;
}
int64_t Rows::affected() const {
  const char* s = r_ ? PQcmdTuples(r_) : "";
  return *s ? std::strtoll(s, nullptr, 10) : 0;
}
bool Rows::null(int row, int col) const {
  return PQgetisnull(r_, row, col) != 0;
}
std::string Rows::str(int row, int col) const {
  if (null(row, col)) return {};
  return std::string(PQgetvalue(r_, row, col), static_cast<size_t>(PQgetlength(r_, row, col)));
}
int64_t Rows::i64(int row, int col) const {
  if (null(row, col)) return 0;
  return std::strtoll(PQgetvalue(r_, row, col), nullptr, 10);
}
bool Rows::boolean(int row, int col) const {
  return !null(row, col) && PQgetvalue(r_, row, col)[0] == 't';
}
std::string Rows::bytes(int row, int col) const {
  if (null(row, col)) return {};
  size_t n = 0;
  unsigned char* raw =
      PQunescapeBytea(reinterpret_cast<const unsigned char*>(PQgetvalue(r_, row, col)), &n);
  if (!raw) return {};
  std::string out(reinterpret_cast<char*>(raw), n);
  PQfreemem(raw);
  return out;
}
int Rows::col(std::string_view name) const {
  return r_ ? PQfnumber(r_, std::string(name).c_str()) : -1;
}

Result<Conn> Conn::connect(const std::string& conninfo) {
  pg_conn* c = PQconnectdb(conninfo.c_str());
  if (!c || PQstatus(c) != CONNECTION_OK) {
    Error e = conn_error(c, "cannot connect to the database");
    if (c) PQfinish(c);
    return fail(std::move(e));
  }
  Conn conn(c);
  // Notices (e.g. "relation already exists, skipping") are not errors.
  PQsetNoticeProcessor(
      c, [](void*, const char*) {}, nullptr);
  return conn;
}

Conn& Conn::operator=(Conn&& o) noexcept {
  if (this != &o) {
    if (c_) PQfinish(c_);
    c_ = o.c_;
    o.c_ = nullptr;
    prepared_ = std::move(o.prepared_);
  }
  return *this;
}
Conn::~Conn() {
  if (c_) PQfinish(c_);
}
bool Conn::ok() const {
  return c_ && PQstatus(c_) == CONNECTION_OK;
}
int Conn::socket() const {
  return c_ ? PQsocket(c_) : -1;
}

Result<Rows> Conn::exec(std::string_view sql, const std::vector<Param>& params) {
  if (!ok()) return fail(Error("database connection lost", 0, ErrorKind::kUnavailable));
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& v : params) values.push_back(v ? v->c_str() : nullptr);
  std::string text(sql);
  auto it = prepared_.find(text);
  if (it == prepared_.end() && prepared_.size() < kMaxPrepared) {
    std::string name = "ls" + std::to_string(prepared_.size());
    LS_TRY(result(
        PQprepare(c_, name.c_str(), text.c_str(), static_cast<int>(values.size()), nullptr)));
    it = prepared_.emplace(std::move(text), std::move(name)).first;
  }
  if (it == prepared_.end())
    return result(PQexecParams(c_, text.c_str(), static_cast<int>(values.size()), nullptr,
                               values.data(), nullptr, nullptr, 0));
  return result(PQexecPrepared(c_, it->second.c_str(), static_cast<int>(values.size()),
                               values.data(), nullptr, nullptr, 0));
}

Result<Rows> Conn::result(pg_result* raw) {
  if (!raw) return fail(conn_error(c_, "database"));
  ExecStatusType st = PQresultStatus(raw);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return Rows(raw);
  std::string msg = PQresultErrorMessage(raw);
  const char* state = PQresultErrorField(raw, PG_DIAG_SQLSTATE);
  std::string sqlstate = state ? state : "";
  PQclear(raw);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  if (auto nl = msg.find('\n'); nl != std::string::npos) msg.resize(nl);
  // Lost connections, a shutting-down server, deadlocks and serialisation
  // failures: retrying the transaction may succeed.
  if (!ok() || sqlstate.rfind("08", 0) == 0 || sqlstate.rfind("57P", 0) == 0 ||
      sqlstate == "40P01" || sqlstate == "40001")
    return fail(Error("database: " + msg, 0, ErrorKind::kUnavailable));
  return fail("database: " + msg + (sqlstate.empty() ? "" : " [" + sqlstate + "]"));
}

Status Conn::exec_script(std::string_view sql) {
  if (!ok()) return fail(Error("database connection lost", 0, ErrorKind::kUnavailable));
  std::string text(sql);
  pg_result* r = PQexec(c_, text.c_str());
  if (!r) return fail(conn_error(c_, "database"));
  ExecStatusType st = PQresultStatus(r);
  std::string msg = PQresultErrorMessage(r);
  PQclear(r);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return {};
  while (!msg.empty() && msg.back() == '\n') msg.pop_back();
  return fail(Error("database: " + msg, 0, ok() ? ErrorKind::kGeneric : ErrorKind::kUnavailable));
}

Result<std::vector<Notification>> Conn::wait_notifications(std::chrono::milliseconds timeout) {
  std::vector<Notification> out;
  auto drain = [&]() -> Status {
    if (!PQconsumeInput(c_)) return fail(conn_error(c_, "database"));
    while (PGnotify* n = PQnotifies(c_)) {
      out.push_back({n->relname, n->extra});
      PQfreemem(n);
    }
    return {};
  };
  if (!ok()) return fail(Error("database connection lost", 0, ErrorKind::kUnavailable));
  LS_TRY(drain());
  if (!out.empty()) return out;
  pollfd pfd{PQsocket(c_), POLLIN, 0};
  int rc = ::poll(&pfd, 1, static_cast<int>(timeout.count()));
  if (rc < 0 && errno != EINTR) return fail_errno("poll database socket");
  if (rc > 0) LS_TRY(drain());
  return out;
}

Result<Tx> Tx::begin(Conn& c) {
  LS_TRY(c.exec("BEGIN"));
  return Tx(&c);
}
Tx::~Tx() {
  if (!done_) (void)c_->exec("ROLLBACK");
}
Status Tx::commit() {
  done_ = true;
  LS_TRY(c_->exec("COMMIT"));
  return {};
}

Pool::Pool(std::string conninfo, size_t size) : conninfo_(std::move(conninfo)), size_(size) {}

Pool::Lease::~Lease() {
  if (pool_ && c_) pool_->put_back(std::move(c_));
}

Result<Pool::Lease> Pool::take() {
  std::unique_ptr<Conn> c;
  {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return !free_.empty() || out_ < size_; });
    ++out_;
    if (!free_.empty()) {
      c = std::move(free_.back());
      free_.pop_back();
    }
  }
  if (!c || !c->ok()) {
    auto fresh = Conn::connect(conninfo_);
    if (!fresh) {
      std::lock_guard lk(mu_);
      --out_;
      cv_.notify_one();
      return fail(fresh.error());
    }
    c = std::make_unique<Conn>(std::move(*fresh));
  }
  return Lease(this, std::move(c));
}

void Pool::put_back(std::unique_ptr<Conn> c) {
  std::lock_guard lk(mu_);
  --out_;
  if (c->ok()) free_.push_back(std::move(c));
  cv_.notify_one();
}

}  // namespace lockstep::server::pg
