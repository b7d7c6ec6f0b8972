#include "server/server.hpp"

#include <signal.h>
#include <sys/stat.h>

#include <spdlog/spdlog.h>

#include "common/fs.hpp"
#include "server/outbox.hpp"
#include "server/planner.hpp"
#include "server/retention.hpp"
#include "server/schema.hpp"
#include "server/server_impl.hpp"

namespace lockstep::server {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

Database::Database() = default;
Database::~Database() = default;
Database::Database(Database&&) noexcept = default;
Database& Database::operator=(Database&&) noexcept = default;

Result<Database> open_database(const std::string& db, const fs::path& state_dir) {
  Database d;
  if (!db.empty()) {
    d.conninfo = db;
    return d;
  }
  PgInstanceOptions opt;
  opt.dir = state_dir / "server" / "pg";
  std::error_code ec;
  fs::create_directories(state_dir / "server", ec);
  ::chmod((state_dir / "server").c_str(), 0711);
  LS_TRY_ASSIGN(auto inst, PgInstance::start(opt));
  d.conninfo = inst.conninfo();
  d.owned = std::make_unique<PgInstance>(std::move(inst));
  return d;
}

namespace {

Result<std::string> load_admin_token(const fs::path& file) {
  if (fs::exists(file)) {
    LS_TRY_ASSIGN(std::string t, read_file(file));
    while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
    if (t.size() < 16)
      return fail("admin token in " + file.string() + " is shorter than 16 characters");
    return t;
  }
  LS_TRY_ASSIGN(std::string t, random_hex(32));
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  LS_TRY(write_file_atomic(file, t + "\n", 0600));
  return t;
}

// Sleeps in small steps so that stop() is noticed quickly.
void nap(const std::atomic<bool>& stopping, std::chrono::milliseconds d) {
  auto end = std::chrono::steady_clock::now() + d;
  while (!stopping && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(20ms);
}

}  // namespace

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
  stop();
  for (auto& t : impl_->workers)
    if (t.joinable()) t.join();
  impl_->http.reset();
  impl_->db.reset();
  if (impl_->pg_owned) {
    auto st = impl_->pg_owned->stop();
    if (!st) spdlog::warn("server: {}", st.error().message());
  }
}

Result<std::unique_ptr<Server>> Server::start(ServerConfig cfg) {
  auto impl = std::make_unique<Impl>();
  std::error_code ec;
  fs::create_directories(cfg.state_dir / "server", ec);
  if (ec) return fail("create " + (cfg.state_dir / "server").string() + ": " + ec.message());
  if (cfg.db.empty()) {
    LS_TRY_ASSIGN(auto d, open_database("", cfg.state_dir));
    impl->pg_owned = std::move(d.owned);
    impl->pg_owned->own();
    cfg.db = d.conninfo;
  }
  {
    LS_TRY_ASSIGN(auto c, pg::Conn::connect(cfg.db));
    LS_TRY(apply_migrations(c));
  }
  impl->db = std::make_unique<pg::Pool>(cfg.db, cfg.db_connections);
  LS_TRY_ASSIGN(auto box, SecretBox::open_or_create(cfg.state_dir / "server" / "secrets.key"));
  impl->box = std::move(box);
  if (cfg.admin_token_file.empty()) cfg.admin_token_file = cfg.state_dir / "server" / "admin-token";
  LS_TRY_ASSIGN(impl->admin_token, load_admin_token(cfg.admin_token_file));
  Impl* raw = impl.get();
  LS_TRY_ASSIGN(impl->http, HttpServer::listen(
                                cfg.listen, [raw](const HttpRequest& r) { return raw->route(r); },
                                cfg.max_connections));
  if (cfg.public_url.empty())
    cfg.public_url = "http://" + cfg.listen.substr(0, cfg.listen.rfind(':')) + ":" +
                     std::to_string(impl->http->port());
  impl->cfg = std::move(cfg);
  impl->background();
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

uint16_t Server::port() const {
  return impl_->http->port();
}

void Server::stop() {
  if (impl_->stopping.exchange(true)) return;
  impl_->notifier.shutdown();
  if (impl_->http) impl_->http->stop();
}

Status Server::run(bool handle_signals) {
  std::thread sig;
  if (handle_signals) {
    // SIGTERM and SIGINT are blocked in every thread (the caller blocked them
    // before start()); this thread takes them.
    sig = std::thread([this] {
      sigset_t set;
      sigemptyset(&set);
      sigaddset(&set, SIGTERM);
      sigaddset(&set, SIGINT);
      timespec ts{0, 100'000'000};
      while (!impl_->stopping) {
        int s = sigtimedwait(&set, nullptr, &ts);
        if (s > 0) {
          spdlog::info("server: got signal {}, stopping", s);
          stop();
        }
      }
    });
  }
  spdlog::info("server: listening on {}", impl_->cfg.public_url);
  impl_->http->run();
  stop();
  if (sig.joinable()) sig.join();
  return {};
}

void Server::Impl::background() {
  // LISTEN: wakes claimers, log followers and the planner.
  workers.emplace_back([this] {
    while (!stopping) {
      auto c = pg::Conn::connect(cfg.db);
      if (!c || !c->exec("LISTEN lockstep_jobs") || !c->exec("LISTEN lockstep_log") ||
          !c->exec("LISTEN lockstep_deliveries")) {
        nap(stopping, 500ms);
        continue;
      }
      notifier.bump_all();  // anything may have happened while not listening
      while (!stopping) {
        auto n = c->wait_notifications(250ms);
        if (!n) break;
        for (const auto& x : *n) {
          if (x.channel == "lockstep_jobs")
            notifier.bump(Notifier::kJobs);
          else if (x.channel == "lockstep_log")
            notifier.bump(Notifier::kLog);
          else if (x.channel == "lockstep_deliveries")
            notifier.bump(Notifier::kDeliveries);
        }
      }
    }
  });
  // Planner.
  workers.emplace_back([this] {
    Planner planner(*db, cfg.state_dir, cfg.image_pins);
    while (!stopping) {
      uint64_t gen = notifier.generation(Notifier::kDeliveries);
      for (;;) {
        auto r = planner.plan_one();
        if (!r) {
          spdlog::warn("server: planner: {}", r.error().message());
          nap(stopping, 1s);
          break;
        }
        if (!*r || stopping) break;
      }
      notifier.wait(Notifier::kDeliveries, gen, 2s);
    }
  });
  // Reaper: a tick of a twentieth of the lease, between 50 ms and 1 s.
  workers.emplace_back([this] {
    auto tick = std::clamp<std::chrono::milliseconds>(cfg.lease.lease / 20, 50ms, 1000ms);
    while (!stopping) {
      auto r = reap(*db, cfg.lease);
      if (!r)
        spdlog::warn("server: reaper: {}", r.error().message());
      else if (*r > 0)
        spdlog::info("server: reaper ended {} attempt(s)", *r);
      nap(stopping, tick);
    }
  });
  // Status sender.
  workers.emplace_back([this] {
    StatusSender sender(*db, *box, cfg.public_url);
    while (!stopping) {
      auto r = sender.send_due();
      if (!r) spdlog::warn("server: statuses: {}", r.error().message());
      nap(stopping, 250ms);
    }
  });
  // Caches' and artifacts' retention: once at start, then hourly.
  workers.emplace_back([this] {
    while (!stopping) {
      auto cs = sweep_caches(*db, cfg.cache_retention_days, cfg.cache_max_bytes);
      if (!cs)
        spdlog::warn("server: cache retention: {}", cs.error().message());
      else if (cs->removed > 0)
        spdlog::info("server: cache retention: {} entries ({} bytes) removed", cs->removed,
                     cs->bytes);
      auto r =
          sweep_artifacts(*db, cfg.state_dir / "server" / "blobs", cfg.artifact_retention_days);
      if (!r)
        spdlog::warn("server: artifact retention: {}", r.error().message());
      else if (r->expired > 0 || r->files_removed > 0)
        spdlog::info("server: artifact retention: {} expired, {} files ({} bytes) removed",
                     r->expired, r->files_removed, r->bytes_removed);
      nap(stopping, std::chrono::hours(1));
    }
  });
  // Poller.
  workers.emplace_back([this] {
    while (!stopping) {
      std::vector<int64_t> due;
      if (auto c = db->take()) {
        auto r = (*c)->exec(
            "SELECT id FROM repos WHERE poll_seconds > 0 AND (last_polled IS NULL OR "
            "last_polled < now() - make_interval(secs => poll_seconds)) ORDER BY id");
        if (r)
          for (int i = 0; i < r->size(); ++i) due.push_back(r->i64(i, 0));
      }
      for (int64_t id : due) {
        auto r = poll_repo(*db, cfg.state_dir, id);
        if (!r) spdlog::warn("server: poll: {}", r.error().message());
      }
      nap(stopping, 1s);
    }
  });
}

}  // namespace lockstep::server
