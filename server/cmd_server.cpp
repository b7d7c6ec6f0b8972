// `lockstep server` and its admin subcommands, and `lockstep agent`.
#include <signal.h>
#include <unistd.h>

#include <cstdio>

#include <spdlog/spdlog.h>

#include "cache/gc.hpp"
#include "common/fs.hpp"
#include "common/log.hpp"
#include "common/paths.hpp"
#include "runner/cli/cli.hpp"
#include "server/agent.hpp"
#include "server/crypto.hpp"
#include "server/pg.hpp"
#include "server/pg_instance.hpp"
#include "server/retention.hpp"
#include "server/schema.hpp"
#include "server/server.hpp"
#include "server/server_impl.hpp"
#include "server/verbs.hpp"
#include "server/webhook.hpp"

namespace lockstep::server {

using runner::CommandLine;
using runner::report_error;
using runner::usage_error;
namespace fs = std::filesystem;

namespace {

void block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

void log_to_stderr() {
  if (auto logger = spdlog::get("lockstep"))
    logger->set_level(spdlog::level::info);
  else
    setup_logging(Verbosity::kVerbose);
  // A peer that went away (a finished job supervisor's deadline pipe, a
  // closed connection) is an error to handle, not a reason to die.
  ::signal(SIGPIPE, SIG_IGN);
}

const runner::OptionSpec kDbOption = {"db",
                                      0,
                                      true,
                                      false,
                                      "URL",
                                      "PostgreSQL connection (postgres://... or key=value); "
                                      "default: the private database under the state dir"};

// Connects for an admin subcommand (starting the private database if needed).
struct AdminDb {
  Database db;
  pg::Conn conn;
};
Result<AdminDb> admin_db(const runner::ParsedArgs& p) {
  AdminDb a;
  LS_TRY_ASSIGN(a.db, open_database(p.get("db").value_or(""), state_dir()));
  LS_TRY_ASSIGN(a.conn, pg::Conn::connect(a.db.conninfo));
  LS_TRY(apply_migrations(a.conn));
  return a;
}

Result<std::string> read_value_file(const std::optional<std::string>& file) {
  if (!file) return std::string();
  std::string v;
  if (*file == "-") {
    char buf[4096];
    for (ssize_t n; (n = ::read(0, buf, sizeof buf)) != 0;) {
      if (n < 0) {
        if (errno == EINTR) continue;
        return fail_errno("read standard input");
      }
      v.append(buf, static_cast<size_t>(n));
    }
  } else {
    LS_TRY_ASSIGN(v, read_file(*file));
  }
  while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.pop_back();
  return v;
}

int repo_add(const runner::Args& args) {
  CommandLine cli(
      "lockstep server repo add OWNER/NAME --forge github|gitea|gitlab --clone-url URL [options]",
      "Adds (or updates) a repository the server builds.",
      {kDbOption,
       {"forge", 0, true, false, "FORGE", "github, gitea (also Forgejo) or gitlab"},
       {"clone-url", 0, true, false, "URL", "where the server fetches the repository from"},
       {"webhook-secret-file", 0, true, false, "FILE", "the webhook secret ('-': stdin)"},
       {"status-api", 0, true, false, "URL",
        "the forge's API base for commit statuses (https://api.github.com, "
        "https://gitea.example/api/v1, https://gitlab.example/api/v4)"},
       {"status-token-file", 0, true, false, "FILE", "token for the status API ('-': stdin)"},
       {"poll", 0, true, false, "SECONDS", "also poll the repository every SECONDS (0: never)"}});
  if (CommandLine::wants_help(args)) return std::fputs(cli.help().c_str(), stdout), 0;
  auto p = cli.parse(args);
  if (!p) return report_error(p.error());
  if (p->positionals.size() != 1) return usage_error("server repo add takes one OWNER/NAME");
  std::string name = p->positionals[0];
  auto forge = forge_from_name(p->get("forge").value_or(""));
  if (!forge) return usage_error("--forge must be github, gitea, forgejo or gitlab");
  auto clone = p->get("clone-url");
  if (!clone) return usage_error("--clone-url is required");
  auto a = admin_db(*p);
  if (!a) return report_error(a.error());
  auto box = SecretBox::open_or_create(state_dir() / "server" / "secrets.key");
  if (!box) return report_error(box.error());
  auto secret = read_value_file(p->get("webhook-secret-file"));
  if (!secret) return report_error(secret.error());
  auto token = read_value_file(p->get("status-token-file"));
  if (!token) return report_error(token.error());
  int poll = 0;
  if (auto s = p->get("poll")) {
    auto n = runner::parse_number(*s, "--poll", 0, 86'400);
    if (!n) return report_error(n.error());
    poll = static_cast<int>(*n);
  }
  auto r = a->conn.exec(
      "INSERT INTO repos (name, forge, clone_url, status_api, poll_seconds) VALUES ($1, $2, $3, "
      "$4, $5) ON CONFLICT (name) DO UPDATE SET forge = excluded.forge, clone_url = "
      "excluded.clone_url, status_api = excluded.status_api, poll_seconds = "
      "excluded.poll_seconds RETURNING id",
      {pg::p(name), pg::p(forge_name(*forge)), pg::p(*clone),
       pg::p(p->get("status-api").value_or("")), pg::p(poll)});
  if (!r) return report_error(r.error());
  int64_t id = r->i64(0, 0);
  if (!secret->empty()) {
    auto sealed = box->seal(*secret, "webhook-secret:" + std::to_string(id));
    if (!sealed) return report_error(sealed.error());
    auto u = a->conn.exec("UPDATE repos SET webhook_secret_enc = $2 WHERE id = $1",
                          {pg::p(id), pg::bytea(*sealed)});
    if (!u) return report_error(u.error());
  }
  if (!token->empty()) {
    auto sealed = box->seal(*token, "status-token:" + std::to_string(id));
    if (!sealed) return report_error(sealed.error());
    auto u = a->conn.exec("UPDATE repos SET status_token_enc = $2 WHERE id = $1",
                          {pg::p(id), pg::bytea(*sealed)});
    if (!u) return report_error(u.error());
  }
  std::printf("%s\n", name.c_str());
  return 0;
}

int agent_token_add(const runner::Args& args) {
  CommandLine cli("lockstep server agent-token add NAME [--db URL]",
                  "Makes a token for an agent and prints it (the server keeps only its hash).",
                  {kDbOption});
  if (CommandLine::wants_help(args)) return std::fputs(cli.help().c_str(), stdout), 0;
  auto p = cli.parse(args);
  if (!p) return report_error(p.error());
  if (p->positionals.size() != 1) return usage_error("server agent-token add takes one NAME");
  auto a = admin_db(*p);
  if (!a) return report_error(a.error());
  auto token = random_hex(32);
  if (!token) return report_error(token.error());
  auto r = a->conn.exec(
      "INSERT INTO agents (name, token_hash) VALUES ($1, $2) ON CONFLICT (name) "
      "DO UPDATE SET token_hash = excluded.token_hash",
      {pg::p(p->positionals[0]), pg::p(sha256_hex(*token))});
  if (!r) return report_error(r.error());
  std::printf("%s\n", token->c_str());
  return 0;
}

int secret_set(const runner::Args& args, const char* kind) {
  bool secret = std::string(kind) == "secret";
  CommandLine cli(secret ? "lockstep server secret set OWNER/NAME NAME [--db URL]  (value on stdin)"
                         : "lockstep server var set OWNER/NAME NAME VALUE [--db URL]",
                  secret
                      ? "Sets a repository secret, encrypted at rest; the value is read from stdin."
                      : "Sets a repository variable (the vars context).",
                  {kDbOption});
  if (CommandLine::wants_help(args)) return std::fputs(cli.help().c_str(), stdout), 0;
  auto p = cli.parse(args);
  if (!p) return report_error(p.error());
  if (p->positionals.size() < 2 || p->positionals[0] != "set")
    return usage_error(std::string("usage: lockstep server ") + kind + " set OWNER/NAME NAME" +
                       (secret ? "" : " VALUE"));
  if (p->positionals.size() != (secret ? 3u : 4u))
    return usage_error(secret ? "server secret set takes OWNER/NAME NAME (the value on stdin)"
                              : "server var set takes OWNER/NAME NAME VALUE");
  std::string value;
  if (secret) {
    auto v = read_value_file(std::string("-"));
    if (!v) return report_error(v.error());
    value = *v;
  } else {
    value = p->positionals[3];
  }
  auto a = admin_db(*p);
  if (!a) return report_error(a.error());
  auto box = SecretBox::open_or_create(state_dir() / "server" / "secrets.key");
  if (!box) return report_error(box.error());
  pg::Pool pool(a->db.conninfo, 1);
  auto st = store_secret(pool, *box, p->positionals[1], kind, p->positionals[2], value);
  if (!st) return report_error(st.error());
  return 0;
}

int artifacts_sweep(const runner::Args& args) {
  CommandLine cli("lockstep server artifacts sweep [--max-days N] [--db URL]",
                  "Expires the artifacts whose retention ended (and, with --max-days, those "
                  "older than N days) and removes the files no other artifact names; the "
                  "server does the same hourly.",
                  {kDbOption,
                   {"max-days", 0, true, false, "N",
                    "also expire artifacts older than N days (default: only their own "
                    "retention)"}});
  if (CommandLine::wants_help(args)) return std::fputs(cli.help().c_str(), stdout), 0;
  auto p = cli.parse(args);
  if (!p) return report_error(p.error());
  if (!p->positionals.empty()) return usage_error("server artifacts sweep takes no arguments");
  int max_days = 0;
  if (auto v = p->get("max-days")) {
    auto n = runner::parse_number(*v, "--max-days", 1, 36'500);
    if (!n) return report_error(n.error());
    max_days = static_cast<int>(*n);
  }
  auto a = admin_db(*p);
  if (!a) return report_error(a.error());
  pg::Pool pool(a->db.conninfo, 1);
  auto r = sweep_artifacts(pool, state_dir() / "server" / "blobs", max_days);
  if (!r) return report_error(r.error());
  std::printf("expired %lld artifact(s); removed %lld file(s), %lld bytes\n",
              static_cast<long long>(r->expired), static_cast<long long>(r->files_removed),
              static_cast<long long>(r->bytes_removed));
  return 0;
}

Result<int64_t> cache_size(const std::string& text, const std::string& option) {
  auto n = cache::parse_size(text);
  if (!n || *n < 1)
    return fail(option + " '" + text + "': expected a size such as 500M or 10G", ErrorKind::kUsage);
  return static_cast<int64_t>(*n);
}

// `lockstep server caches ls [REPO]`: the dependency caches the agents
// share, most recently used first.
int caches_ls(const runner::Args& args) {
  CommandLine cli("lockstep server caches ls [REPO] [--db URL]",
                  "Lists the dependency caches the agents share (of REPO, or of every "
                  "repository), most recently used first.",
                  {kDbOption});
  if (CommandLine::wants_help(args)) return std::fputs(cli.help().c_str(), stdout), 0;
  auto p = cli.parse(args);
  if (!p) return report_error(p.error());
  if (p->positionals.size() > 1) return usage_error("server caches ls takes at most one REPO");
  auto a = admin_db(*p);
  if (!a) return report_error(a.error());
  pg::Conn* c = &a->conn;
  const std::string repo = p->positionals.empty() ? "" : p->positionals[0];
  auto r = c->exec(
      "SELECT p.name, c.scope, c.key, c.size, c.digest, to_char(c.last_used_at AT TIME ZONE "
      "'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM caches c JOIN repos p ON p.id = c.repo_id "
      "WHERE $1 = '' OR p.name = $1 ORDER BY c.last_used_at DESC, c.id DESC",
      {pg::p(repo)});
  if (!r) return report_error(r.error());
  if (!repo.empty() && r->empty()) {
    auto known = c->exec("SELECT 1 FROM repos WHERE name = $1", {pg::p(repo)});
    if (known && known->empty()) return usage_error("no repository '" + repo + "' on the server");
  }
  std::printf("%-20s %-40s %-32s %10s  %s\n", "REPO", "SCOPE", "KEY", "SIZE", "LAST USED");
  for (int i = 0; i < r->size(); ++i)
    std::printf("%-20s %-40s %-32s %10s  %s\n", r->str(i, 0).c_str(), r->str(i, 1).c_str(),
                r->str(i, 2).c_str(),
                cache::format_size(static_cast<uint64_t>(r->i64(i, 3))).c_str(),
                r->str(i, 5).c_str());
  return 0;
}

// `lockstep server caches sweep`: what the server does hourly, now.
int caches_sweep(const runner::Args& args) {
  CommandLine cli("lockstep server caches sweep [--max-days N] [--max-size SIZE] [--db URL]",
                  "Removes the dependency caches not used for N days and each repository's "
                  "least recently used ones beyond SIZE, then the files nothing names any more; "
                  "the server does the same hourly.",
                  {kDbOption,
                   {"max-days", 0, true, false, "N", "unused for N days (default 7)"},
                   {"max-size", 0, true, false, "SIZE", "per repository (default 10G)"}});
  if (CommandLine::wants_help(args)) return std::fputs(cli.help().c_str(), stdout), 0;
  auto p = cli.parse(args);
  if (!p) return report_error(p.error());
  if (!p->positionals.empty()) return usage_error("server caches sweep takes no arguments");
  ServerConfig defaults;
  int max_days = defaults.cache_retention_days;
  int64_t max_bytes = defaults.cache_max_bytes;
  if (auto v = p->get("max-days")) {
    auto n = runner::parse_number(*v, "--max-days", 1, 36'500);
    if (!n) return report_error(n.error());
    max_days = static_cast<int>(*n);
  }
  if (auto v = p->get("max-size")) {
    auto n = cache_size(*v, "--max-size");
    if (!n) return report_error(n.error());
    max_bytes = *n;
  }
  auto a = admin_db(*p);
  if (!a) return report_error(a.error());
  pg::Pool pool(a->db.conninfo, 1);
  auto cs = sweep_caches(pool, max_days, max_bytes);
  if (!cs) return report_error(cs.error());
  auto r = sweep_artifacts(pool, state_dir() / "server" / "blobs", 0);
  if (!r) return report_error(r.error());
  std::printf("removed %lld cache(s), %lld bytes; removed %lld file(s), %lld bytes\n",
              static_cast<long long>(cs->removed), static_cast<long long>(cs->bytes),
              static_cast<long long>(r->files_removed), static_cast<long long>(r->bytes_removed));
  return 0;
}

int serve(const runner::Args& args) {
  CommandLine cli(
      "lockstep server [--listen ADDR:PORT] [--db URL] [--url URL] [options]",
      "Runs the CI server: webhooks, the job queue for agents, the web UI and API.\n"
      "Subcommands: repo add, agent-token add, secret set, var set, artifacts sweep, caches "
      "ls, caches sweep (see --help of each).",
      {{"listen", 'l', true, false, "ADDR:PORT", "address to listen on (default 127.0.0.1:8080)"},
       kDbOption,
       {"url", 0, true, false, "URL", "the server's public URL, for links in commit statuses"},
       {"lease-seconds", 0, true, false, "S",
        "an agent's lease; renewals every S/6, lost after S (default 90)"},
       {"max-log-bytes", 0, true, false, "N", "log size limit per attempt (default 64 MiB)"},
       {"admin-token-file", 0, true, false, "FILE",
        "the token that authorizes writes (default <state>/server/admin-token, made if missing)"},
       {"max-connections", 0, true, false, "N", "HTTP connections at once (default 256)"},
       {"artifact-retention-days", 0, true, false, "N",
        "expire artifacts older than N days even if their own retention is longer (default: "
        "their own, upload-artifact's retention-days)"},
       {"cache-retention-days", 0, true, false, "N",
        "remove dependency caches not used for N days (default 7)"},
       {"insecure-registry", 0, true, true, "HOST",
        "resolve the images job plans pin from HOST over plain HTTP"},
       {"mirror", 0, true, false, "URL",
        "resolve the images job plans pin through this pull-through mirror"},
       {"cache-max-size", 0, true, false, "SIZE",
        "keep at most SIZE of dependency caches per repository, least recently used go first "
        "(default 10G)"}});
  if (CommandLine::wants_help(args)) return std::fputs(cli.help().c_str(), stdout), 0;
  auto p = cli.parse(args);
  if (!p) return report_error(p.error());
  if (!p->positionals.empty()) {
    std::string hint = runner::closest_match(
        p->positionals[0], {"repo", "agent-token", "secret", "var", "artifacts", "caches"});
    return usage_error("unknown command 'lockstep server " + p->positionals[0] + "'" +
                       (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
  }
  ServerConfig cfg;
  cfg.state_dir = state_dir();
  if (auto v = p->get("listen")) cfg.listen = *v;
  if (auto v = p->get("db")) cfg.db = *v;
  if (auto v = p->get("url")) cfg.public_url = *v;
  if (auto v = p->get("lease-seconds")) {
    char* end = nullptr;
    double s = std::strtod(v->c_str(), &end);
    if (v->empty() || *end != '\0' || !(s >= 0.5 && s <= 86'400))
      return usage_error("--lease-seconds '" + *v + "': expected seconds from 0.5 to 86400");
    cfg.lease.lease = std::chrono::milliseconds(static_cast<int64_t>(s * 1000));
  }
  if (auto v = p->get("max-log-bytes")) {
    auto n = runner::parse_number(*v, "--max-log-bytes", 1024, 1l << 40);
    if (!n) return report_error(n.error());
    cfg.max_log_bytes = *n;
  }
  if (auto v = p->get("admin-token-file")) cfg.admin_token_file = *v;
  if (auto v = p->get("max-connections")) {
    auto n = runner::parse_number(*v, "--max-connections", 4, 65'536);
    if (!n) return report_error(n.error());
    cfg.max_connections = static_cast<size_t>(*n);
  }
  if (auto v = p->get("artifact-retention-days")) {
    auto n = runner::parse_number(*v, "--artifact-retention-days", 1, 36'500);
    if (!n) return report_error(n.error());
    cfg.artifact_retention_days = static_cast<int>(*n);
  }
  if (auto v = p->get("cache-retention-days")) {
    auto n = runner::parse_number(*v, "--cache-retention-days", 1, 36'500);
    if (!n) return report_error(n.error());
    cfg.cache_retention_days = static_cast<int>(*n);
  }
  if (auto v = p->get("cache-max-size")) {
    auto n = cache_size(*v, "--cache-max-size");
    if (!n) return report_error(n.error());
    cfg.cache_max_bytes = *n;
  }
  cfg.image_pins.insecure_registries = p->all("insecure-registry");
  if (auto v = p->get("mirror")) {
    if (v->rfind("http://", 0) != 0 && v->rfind("https://", 0) != 0)
      return usage_error("--mirror '" + *v + "': expected an http:// or https:// URL");
    cfg.image_pins.mirror = *v;
    while (!cfg.image_pins.mirror.empty() && cfg.image_pins.mirror.back() == '/')
      cfg.image_pins.mirror.pop_back();
  }
  log_to_stderr();
  block_stop_signals();
  auto server = Server::start(std::move(cfg));
  if (!server) return report_error(server.error().context("server"));
  auto st = (*server)->run(true);
  if (!st) return report_error(st.error());
  return 0;
}

int cmd_server(const runner::Args& args) {
  if (!args.empty()) {
    const std::string& sub = args[0];
    runner::Args rest(args.begin() + 1, args.end());
    if (sub == "repo") {
      if (rest.empty() || rest[0] != "add")
        return usage_error("usage: lockstep server repo add ...");
      return repo_add({rest.begin() + 1, rest.end()});
    }
    if (sub == "agent-token") {
      if (rest.empty() || rest[0] != "add")
        return usage_error("usage: lockstep server agent-token add NAME");
      return agent_token_add({rest.begin() + 1, rest.end()});
    }
    if (sub == "artifacts") {
      if (rest.empty() || rest[0] != "sweep")
        return usage_error("usage: lockstep server artifacts sweep [--max-days N]");
      return artifacts_sweep({rest.begin() + 1, rest.end()});
    }
    if (sub == "caches") {
      if (!rest.empty() && rest[0] == "ls") return caches_ls({rest.begin() + 1, rest.end()});
      if (!rest.empty() && rest[0] == "sweep") return caches_sweep({rest.begin() + 1, rest.end()});
      return usage_error("usage: lockstep server caches ls|sweep ...");
    }
    if (sub == "secret") return secret_set(rest, "secret");
    if (sub == "var") return secret_set(rest, "var");
  }
  return serve(args);
}

int cmd_agent(const runner::Args& args) {
  if (args.size() == 2 && args[0] == "--supervise") return run_supervisor(args[1]);
  CommandLine cli(
      "lockstep agent --server URL --token T [--slots N] [--name NAME]",
      "Claims jobs from a lockstep server and runs them, N at a time.",
      {{"server", 0, true, false, "URL", "the server (http://host:port)"},
       {"token", 0, true, false, "T", "this agent's token ('lockstep server agent-token add')"},
       {"token-file", 0, true, false, "FILE", "read the token from FILE"},
       {"slots", 0, true, false, "N", "jobs at once (default 1)"},
       {"name", 0, true, false, "NAME", "name shown by the server (default: the host name)"},
       {"executor", 0, true, false, "KIND",
        "how jobs run: 'lockstep' (default: lockstep run of the job's matrix cell) or 'fake' "
        "(echo, sleep and exit only, without containers: tests and benchmarks)"},
       {"platform", 'P', true, true, "LABEL=IMAGE", "run runs-on LABEL jobs in IMAGE"},
       {"trace", 0, true, false, "FILE", "fake executor: append start/alive/end lines to FILE"}});
  if (CommandLine::wants_help(args)) return std::fputs(cli.help().c_str(), stdout), 0;
  auto p = cli.parse(args);
  if (!p) return report_error(p.error());
  AgentConfig cfg;
  cfg.state_dir = state_dir();
  cfg.server = p->get("server").value_or("");
  if (cfg.server.empty()) return usage_error("--server is required");
  cfg.token = p->get("token").value_or("");
  if (auto f = p->get("token-file")) {
    auto t = read_value_file(*f);
    if (!t) return report_error(t.error());
    cfg.token = *t;
  }
  if (cfg.token.empty()) return usage_error("--token (or --token-file) is required");
  if (auto v = p->get("slots")) {
    auto n = runner::parse_number(*v, "--slots", 1, 1024);
    if (!n) return report_error(n.error());
    cfg.slots = static_cast<int>(*n);
  }
  cfg.name = p->get("name").value_or("");
  cfg.executor = p->get("executor").value_or("lockstep");
  cfg.platforms = p->all("platform");
  cfg.trace = p->get("trace").value_or("");
  log_to_stderr();
  block_stop_signals();
  std::atomic<bool> stop{false};
  auto st = run_agent(cfg, stop, true);
  if (!st) return report_error(st.error());
  return 0;
}

}  // namespace

const std::vector<runner::Verb>& verbs() {
  static const std::vector<runner::Verb> v = {
      {"server", cmd_server, "run the CI server (webhooks, queue, web UI) on PostgreSQL"},
      {"agent", cmd_agent, "claim and run jobs from a lockstep server"},
  };
  return v;
}

}  // namespace lockstep::server
