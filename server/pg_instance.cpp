#include "server/pg_instance.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "common/command.hpp"
#include "server/pg.hpp"

namespace lockstep::server {

namespace fs = std::filesystem;

fs::path pg_bindir() {
  if (const char* e = std::getenv("LOCKSTEP_PG_BINDIR"); e && *e) return e;
  return "/usr/lib/postgresql/15/bin";
}

namespace {

struct Owner {
  bool as_postgres = false;  // we are root: run PostgreSQL's programs as `postgres`
  uid_t uid = 0;
  gid_t gid = 0;
};

Result<Owner> owner() {
  Owner o;
  if (::geteuid() != 0) return o;
  passwd* pw = ::getpwnam("postgres");
  if (!pw)
    return fail(
        "private PostgreSQL: running as root needs the 'postgres' user (Debian's postgresql "
        "package makes it); or give --db");
  o.as_postgres = true;
  o.uid = pw->pw_uid;
  o.gid = pw->pw_gid;
  return o;
}

std::vector<std::string> as_owner(const Owner& o, std::vector<std::string> argv) {
  // From "/": the caller's cwd may be closed to postgres.
  if (o.as_postgres)
    argv.insert(argv.begin(), {"runuser", "-u", "postgres", "--", "env", "-C", "/"});
  return argv;
}

// Every ancestor of `dir` must let the postgres user through.
Status check_reachable(const Owner& o, const fs::path& dir) {
  if (!o.as_postgres) return {};
  fs::path p = fs::absolute(dir).parent_path();
  for (;;) {
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0) {
      bool ok = (st.st_mode & S_IXOTH) || (st.st_uid == o.uid && (st.st_mode & S_IXUSR)) ||
                (st.st_gid == o.gid && (st.st_mode & S_IXGRP));
      if (!ok) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
        return fail("private PostgreSQL: the postgres user cannot reach " + dir.string() + " (" +
                    p.string() + " has mode " + mode + "); make it searchable or give --db");
      }
    }
    if (p == p.root_path() || p.empty()) break;
    p = p.parent_path();
  }
  return {};
}

Status run_pg(const Owner& o, std::vector<std::string> argv, std::string_view what) {
  auto r = run_command(as_owner(o, std::move(argv)));
  if (!r) return fail(r.error().context(what));
  if (r->exit_code != 0) {
    std::string msg = r->err.empty() ? r->out : r->err;
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    if (auto nl = msg.rfind('\n'); nl != std::string::npos) msg = msg.substr(nl + 1);
    return fail(std::string(what) + ": " + msg);
  }
  return {};
}

}  // namespace

PgInstance::PgInstance(PgInstance&& o) noexcept
    : opt_(std::move(o.opt_)), running_(o.running_), adopted_(o.adopted_), owned_(o.owned_) {
  o.running_ = false;
  o.owned_ = false;
}
PgInstance& PgInstance::operator=(PgInstance&& o) noexcept {
  if (this != &o) {
    if (running_ && owned_) (void)stop();
    opt_ = std::move(o.opt_);
    running_ = o.running_;
    adopted_ = o.adopted_;
    owned_ = o.owned_;
    o.running_ = false;
    o.owned_ = false;
  }
  return *this;
}
PgInstance::~PgInstance() {
  if (running_ && owned_) (void)stop();
}

std::string PgInstance::conninfo() const {
  return "host=" + opt_.dir.string() + " port=" + std::to_string(opt_.port) +
         " user=lockstep dbname=lockstep connect_timeout=5";
}

Result<PgInstance> PgInstance::start(const PgInstanceOptions& opt) {
  LS_TRY_ASSIGN(Owner o, owner());
  PgInstance inst;
  inst.opt_ = opt;
  inst.opt_.dir = fs::absolute(opt.dir);
  const fs::path& dir = inst.opt_.dir;
  LS_TRY(check_reachable(o, dir));
  std::error_code ec;
  if (!fs::exists(dir / "PG_VERSION", ec)) {
    fs::create_directories(dir, ec);
    if (ec) return fail("private PostgreSQL: create " + dir.string() + ": " + ec.message());
    ::chmod(dir.c_str(), 0700);
    if (o.as_postgres && ::chown(dir.c_str(), o.uid, o.gid) != 0)
      return fail_errno("private PostgreSQL: chown " + dir.string());
    LS_TRY(run_pg(o,
                  {(pg_bindir() / "initdb").string(), "-D", dir.string(), "-U", "lockstep",
                   "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-instructions"},
                  "private PostgreSQL: initdb"));
    // Unix socket in the cluster's own directory, closed to other users; no TCP.
    std::ofstream conf(dir / "postgresql.conf", std::ios::app);
    conf << "\n# lockstep\nlisten_addresses = ''\nunix_socket_directories = '" << dir.string()
         << "'\nunix_socket_permissions = 0700\nport = " << opt.port
         << "\nmax_connections = 200\nshared_buffers = 32MB\n";
    if (!opt.durable) conf << "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n";
    if (!conf) return fail("private PostgreSQL: write postgresql.conf");
  }
  LS_TRY(inst.restart_after_stop());
  // The database of lockstep; CREATE DATABASE cannot run in a transaction
  // and has no IF NOT EXISTS.
  auto c = pg::Conn::connect("host=" + dir.string() + " port=" + std::to_string(opt.port) +
                             " user=lockstep dbname=postgres");
  if (!c) return fail(c.error().context("private PostgreSQL"));
  LS_TRY_ASSIGN(auto have, c->exec("SELECT 1 FROM pg_database WHERE datname = 'lockstep'"));
  if (have.empty()) LS_TRY(c->exec("CREATE DATABASE lockstep"));
  return inst;
}

Status PgInstance::restart_after_stop() {
  LS_TRY_ASSIGN(Owner o, owner());
  const fs::path& dir = opt_.dir;
  // A cluster left running by an owner that died is adopted as it is.
  auto st =
      run_command(as_owner(o, {(pg_bindir() / "pg_ctl").string(), "-D", dir.string(), "status"}));
  if (st && st->exit_code == 0) {
    running_ = true;
    adopted_ = true;
    return {};
  }
  LS_TRY(run_pg(o,
                {(pg_bindir() / "pg_ctl").string(), "-D", dir.string(), "-l",
                 (dir / "postgresql.log").string(), "-w", "-t", "60", "-s", "start"},
                "private PostgreSQL: start (see " + (dir / "postgresql.log").string() + ")"));
  running_ = true;
  owned_ = true;
  return {};
}

Status PgInstance::stop() {
  if (!running_) return {};
  running_ = false;
  LS_TRY_ASSIGN(Owner o, owner());
  return run_pg(o,
                {(pg_bindir() / "pg_ctl").string(), "-D", opt_.dir.string(), "-m", "fast", "-w",
                 "-t", "60", "-s", "stop"},
                "private PostgreSQL: stop");
}

}  // namespace lockstep::server
