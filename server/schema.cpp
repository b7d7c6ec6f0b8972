#include "server/schema.hpp"

#include <string>

namespace lockstep::server {

namespace {

// Never edit a migration that has shipped: add the next one.
const char* const kMigrations[] = {
    // 1: everything of the first version.
    R"sql(
CREATE TABLE repos (
  id bigserial PRIMARY KEY,
  name text NOT NULL UNIQUE,
  forge text NOT NULL CHECK (forge IN ('github', 'gitea', 'gitlab')),
  clone_url text NOT NULL,
  webhook_secret_enc bytea,
  status_api text NOT NULL DEFAULT '',
  status_token_enc bytea,
  poll_seconds integer NOT NULL DEFAULT 0,
  last_polled timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE deliveries (
  id bigserial PRIMARY KEY,
  repo_id bigint NOT NULL REFERENCES repos(id),
  delivery_id text NOT NULL,
  event text NOT NULL,
  payload jsonb NOT NULL,
  state text NOT NULL DEFAULT 'new' CHECK (state IN ('new', 'planned', 'failed')),
  error text NOT NULL DEFAULT '',
  received_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (repo_id, delivery_id)
);
CREATE INDEX deliveries_new ON deliveries (id) WHERE state = 'new';
CREATE TABLE runs (
  id bigserial PRIMARY KEY,
  repo_id bigint NOT NULL REFERENCES repos(id),
  delivery_id bigint REFERENCES deliveries(id),
  run_key text NOT NULL,
  event text NOT NULL,
  ref text NOT NULL,
  sha text NOT NULL,
  base_sha text NOT NULL DEFAULT '',
  fork boolean NOT NULL DEFAULT false,
  workflow_file text NOT NULL,
  workflow_name text NOT NULL DEFAULT '',
  status text NOT NULL DEFAULT 'queued'
    CHECK (status IN ('queued', 'running', 'success', 'failure', 'cancelled')),
  error text NOT NULL DEFAULT '',
  rerun_of bigint REFERENCES runs(id),
  created_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  finished_at timestamptz
);
CREATE UNIQUE INDEX runs_key ON runs (repo_id, run_key, workflow_file) WHERE rerun_of IS NULL;
CREATE INDEX runs_repo ON runs (repo_id, id DESC);
CREATE TABLE jobs (
  id bigserial PRIMARY KEY,
  run_id bigint NOT NULL REFERENCES runs(id),
  job_key text NOT NULL,
  name text NOT NULL,
  matrix jsonb NOT NULL DEFAULT '{}',
  needs text[] NOT NULL DEFAULT '{}',
  plan jsonb NOT NULL,
  status text NOT NULL
    CHECK (status IN ('waiting', 'queued', 'claimed', 'running', 'success', 'failure',
                      'cancelled', 'skipped')),
  attempt integer NOT NULL DEFAULT 0,
  retry boolean NOT NULL DEFAULT true,
  cancel_requested boolean NOT NULL DEFAULT false,
  reason text NOT NULL DEFAULT '',
  queued_at timestamptz,
  finished_at timestamptz
);
CREATE INDEX jobs_queued ON jobs (id) WHERE status = 'queued';
CREATE INDEX jobs_run ON jobs (run_id);
CREATE TABLE agents (
  id bigserial PRIMARY KEY,
  name text NOT NULL UNIQUE,
  token_hash text NOT NULL UNIQUE,
  slots integer NOT NULL DEFAULT 0,
  version text NOT NULL DEFAULT '',
  last_seen timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE attempts (
  job_id bigint NOT NULL REFERENCES jobs(id),
  attempt integer NOT NULL,
  agent_id bigint REFERENCES agents(id),
  state text NOT NULL
    CHECK (state IN ('claimed', 'running', 'success', 'failure', 'cancelled', 'lost', 'lapsed')),
  reason text NOT NULL DEFAULT '',
  claimed_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  renewed_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  exit_code integer,
  env_hash text NOT NULL DEFAULT '',
  record jsonb,
  log_bytes bigint NOT NULL DEFAULT 0,
  log_truncated boolean NOT NULL DEFAULT false,
  PRIMARY KEY (job_id, attempt)
);
CREATE INDEX attempts_live ON attempts (renewed_at) WHERE state IN ('claimed', 'running');
CREATE TABLE log_chunks (
  job_id bigint NOT NULL,
  attempt integer NOT NULL,
  "offset" bigint NOT NULL,
  data bytea NOT NULL,
  PRIMARY KEY (job_id, attempt, "offset"),
  FOREIGN KEY (job_id, attempt) REFERENCES attempts(job_id, attempt)
);
CREATE TABLE status_outbox (
  id bigserial PRIMARY KEY,
  repo_id bigint NOT NULL REFERENCES repos(id),
  sha text NOT NULL,
  context text NOT NULL,
  state text NOT NULL CHECK (state IN ('pending', 'success', 'failure', 'error')),
  description text NOT NULL DEFAULT '',
  target_url text NOT NULL DEFAULT '',
  tries integer NOT NULL DEFAULT 0,
  next_try_at timestamptz NOT NULL DEFAULT now(),
  sent_at timestamptz,
  failed boolean NOT NULL DEFAULT false,
  last_error text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX status_outbox_due ON status_outbox (next_try_at) WHERE sent_at IS NULL AND NOT failed;
CREATE TABLE secrets (
  repo_id bigint NOT NULL REFERENCES repos(id),
  kind text NOT NULL CHECK (kind IN ('secret', 'var')),
  name text NOT NULL,
  value_enc bytea,
  value text,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (repo_id, kind, name)
);
CREATE TABLE poll_heads (
  repo_id bigint NOT NULL REFERENCES repos(id),
  ref text NOT NULL,
  sha text NOT NULL,
  PRIMARY KEY (repo_id, ref)
);
)sql",
    // 2: concurrency groups (docs/server.md, "Concurrency"): a run waits as
    // 'pending' while another run of its group is queued or running.
    R"sql(
ALTER TABLE runs ADD COLUMN concurrency_group text NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN concurrency_cancel boolean NOT NULL DEFAULT false;
ALTER TABLE runs DROP CONSTRAINT runs_status_check;
ALTER TABLE runs ADD CONSTRAINT runs_status_check
  CHECK (status IN ('pending', 'queued', 'running', 'success', 'failure', 'cancelled'));
CREATE INDEX runs_concurrency ON runs (repo_id, concurrency_group, id)
  WHERE concurrency_group <> '' AND status IN ('pending', 'queued', 'running');
-- The whole run record of an attempt (record.json of its agent's run), for
-- `lockstep replay --server` and friends; attempts.record keeps the job's
-- entry for the API and the UI.
ALTER TABLE attempts ADD COLUMN run_record jsonb;
-- Artifacts a job uploaded, by run and name (a name is taken once per run,
-- as on GitHub); their files are content-addressed under
-- <state>/server/blobs/.
CREATE TABLE artifacts (
  run_id bigint NOT NULL REFERENCES runs(id),
  name text NOT NULL,
  job_id bigint NOT NULL REFERENCES jobs(id),
  attempt integer NOT NULL,
  digest text NOT NULL,
  size bigint NOT NULL,
  manifest jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (run_id, name)
);
)sql",
    // 3: artifacts expire (server/retention.hpp): when their own retention
    // ends, or past the server's maximum age; expired ones stay listed.
    R"sql(
ALTER TABLE artifacts ADD COLUMN expires_at timestamptz;
ALTER TABLE artifacts ADD COLUMN expired_at timestamptz;
)sql",
    // 4: dependency caches the agents share (docs/server.md, "Caches"):
    // entries by repository, scope and key; archives under
    // <state>/server/blobs/ like artifacts' files.
    R"sql(
CREATE TABLE caches (
  id bigserial PRIMARY KEY,
  repo_id bigint NOT NULL REFERENCES repos(id),
  scope text NOT NULL,
  key text NOT NULL,
  version text NOT NULL,
  digest text NOT NULL,
  size bigint NOT NULL,
  files bigint NOT NULL,
  job_id bigint NOT NULL REFERENCES jobs(id),
  attempt integer NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (repo_id, scope, key)
);
CREATE INDEX caches_used ON caches (repo_id, last_used_at);
)sql",
    // 5: what a run's finished jobs resolved (images, actions, the node
    // runtime), kept as they finish, for the job plans of its later jobs
    // and attempts (runner/engine/job_plan.hpp).
    R"sql(
ALTER TABLE runs ADD COLUMN pins jsonb NOT NULL DEFAULT '{}';
)sql",
};

constexpr int kCount = static_cast<int>(sizeof kMigrations / sizeof kMigrations[0]);

}  // namespace

int schema_version() {
  return kCount;
}

Status apply_migrations(pg::Conn& c) {
  LS_TRY(
      c.exec_script("CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
                    "applied_at timestamptz NOT NULL DEFAULT now())"));
  // One advisory lock for every migrating server (an arbitrary constant).
  LS_TRY(c.exec("SELECT pg_advisory_lock(7311001)"));
  auto unlock = [&] { (void)c.exec("SELECT pg_advisory_unlock(7311001)"); };
  auto have = c.exec("SELECT coalesce(max(version), 0) FROM schema_migrations");
  if (!have) {
    unlock();
    return fail(have.error().context("read schema version"));
  }
  int64_t current = have->i64(0, 0);
  if (current > kCount) {
    unlock();
    return fail("the database has schema version " + std::to_string(current) +
                ", newer than this lockstep knows (" + std::to_string(kCount) +
                "): upgrade lockstep");
  }
  for (int v = static_cast<int>(current) + 1; v <= kCount; ++v) {
    std::string script = std::string("BEGIN;\n") + kMigrations[v - 1] +
                         "\nINSERT INTO schema_migrations (version) VALUES (" + std::to_string(v) +
                         ");\nCOMMIT;";
    auto r = c.exec_script(script);
    if (!r) {
      (void)c.exec("ROLLBACK");
      unlock();
      return fail(r.error().context("migration " + std::to_string(v)));
    }
  }
  unlock();
  return {};
}

}  // namespace lockstep::server
