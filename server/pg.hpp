#pragma once
// A thin layer over libpq: one connection, text-format parameters and
// results, transactions, LISTEN/NOTIFY, and a small pool. Every query is
// parameterised ($1, $2, ...); SQL text never contains a value.
//
// Errors: a query that PostgreSQL rejects is kGeneric with its message and
// SQLSTATE ("database: duplicate key ... [23505]"); a connection that is gone
// (server restarting, socket closed) is kUnavailable, which the HTTP layer
// answers with 503 and callers may retry on a fresh connection.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/error.hpp"

struct pg_conn;
struct pg_result;

namespace lockstep::server::pg {

// A query parameter in text form; nullopt is SQL NULL.
using Param = std::optional<std::string>;
inline Param p(std::string s) {
  return Param(std::move(s));
}
inline Param p(std::string_view s) {
  return Param(std::string(s));
}
inline Param p(const char* s) {
  return Param(std::string(s));
}
inline Param p(int64_t v) {
  return Param(std::to_string(v));
}
inline Param p(int v) {
  return Param(std::to_string(v));
}
inline Param p(bool v) {
  return Param(v ? "true" : "false");
}
// bytea parameters are passed in hex form ("\x..."), which is text.
Param bytea(std::string_view bytes);

class Rows {
 public:
  Rows() = default;
  explicit Rows(pg_result* r);
  Rows(Rows&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
  Rows& operator=(Rows&& o) noexcept;
  Rows(const Rows&) = delete;
  Rows& operator=(const Rows&) = delete;
  ~Rows();

  int size() const;
  bool empty() const { return size() == 0; }
  int64_t affected() const;  // rows changed by INSERT/UPDATE/DELETE
  bool null(int row, int col) const;
  std::string str(int row, int col) const;    // "" for NULL
  int64_t i64(int row, int col) const;        // 0 for NULL
  bool boolean(int row, int col) const;       // 't'
  std::string bytes(int row, int col) const;  // a bytea column, decoded
  int col(std::string_view name) const;       // -1 when absent

 private:
  pg_result* r_ = nullptr;
};

struct Notification {
  std::string channel;
  std::string payload;
};

class Conn {
 public:
  // conninfo: "postgres://..." or "host=... dbname=...".
  static Result<Conn> connect(const std::string& conninfo);
  Conn() = default;
  Conn(Conn&& o) noexcept : c_(o.c_), prepared_(std::move(o.prepared_)) { o.c_ = nullptr; }
  Conn& operator=(Conn&& o) noexcept;
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  ~Conn();

  // Each distinct SQL text is prepared once per connection (up to
  // kMaxPrepared of them) and executed by name afterwards: PostgreSQL parses
  // and plans it once, not on every call.
  Result<Rows> exec(std::string_view sql, const std::vector<Param>& params = {});
  // Several statements without parameters (migrations).
  Status exec_script(std::string_view sql);
  bool ok() const;
  int socket() const;
  // Waits up to `timeout` for notifications on this connection (after
  // LISTEN) and returns those that arrived; empty on timeout.
  Result<std::vector<Notification>> wait_notifications(std::chrono::milliseconds timeout);

 private:
  static constexpr size_t kMaxPrepared = 512;
  explicit Conn(pg_conn* c) : c_(c) {}
  Result<Rows> result(pg_result* raw);
  pg_conn* c_ = nullptr;
  std::unordered_map<std::string, std::string> prepared_;  // SQL text -> statement name
};

// BEGIN on construction; ROLLBACK on destruction unless commit() succeeded.
class Tx {
 public:
  static Result<Tx> begin(Conn& c);
  Tx(Tx&& o) noexcept : c_(o.c_), done_(o.done_) { o.done_ = true; }
  Tx(const Tx&) = delete;
  Tx& operator=(const Tx&) = delete;
  Tx& operator=(Tx&&) = delete;
  ~Tx();
  Result<Rows> exec(std::string_view sql, const std::vector<Param>& params = {}) {
    return c_->exec(sql, params);
  }
  Status commit();

 private:
  explicit Tx(Conn* c) : c_(c) {}
  Conn* c_;
  bool done_ = false;
};

// A fixed number of connections handed out one at a time; a connection that
// broke is re-opened when it is next taken.
class Pool {
 public:
  Pool(std::string conninfo, size_t size);
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  class Lease {
   public:
    Lease(Pool* pool, std::unique_ptr<Conn> c) : pool_(pool), c_(std::move(c)) {}
    Lease(Lease&&) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    ~Lease();
    Conn& operator*() { return *c_; }
    Conn* operator->() { return c_.get(); }

   private:
    Pool* pool_;
    std::unique_ptr<Conn> c_;
  };
  // Waits for a free connection; fails (kUnavailable) when the database
  // cannot be reached.
  Result<Lease> take();
  const std::string& conninfo() const { return conninfo_; }

 private:
  void put_back(std::unique_ptr<Conn> c);
  std::string conninfo_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Conn>> free_;
  size_t out_ = 0;
  size_t size_;
};

// Runs fn(Tx&) in a transaction and commits it. A kUnavailable failure (a
// lost connection, a deadlock) rolls back and runs fn again, up to 3 times:
// fn must have no effect outside the transaction.
template <class F>
auto in_tx(Pool& pool, F&& fn) -> decltype(fn(std::declval<Tx&>())) {
  for (int tries = 0;; ++tries) {
    bool last = tries == 2;
    auto lease = pool.take();
    if (!lease) return tl::unexpected(lease.error());
    auto tx = Tx::begin(**lease);
    if (!tx) {
      if (tx.error().kind() == ErrorKind::kUnavailable && !last) continue;
      return tl::unexpected(tx.error());
    }
    auto r = fn(*tx);
    if (!r) {
      if (r.error().kind() == ErrorKind::kUnavailable && !last) continue;
      return r;
    }
    // A failed COMMIT is not retried: whether it took effect is unknown.
    auto c = tx->commit();
    if (!c) return tl::unexpected(c.error());
    return r;
  }
}

}  // namespace lockstep::server::pg
