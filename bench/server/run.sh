#!/usr/bin/env bash
# lockstep server + agents against `lockstep run` of the same workflow.
#
# end to end: a matrix of CELLS jobs that run `true` in the busybox test
# image, through a signed push webhook, the server (its own PostgreSQL on a
# loopback port) and 2 agents with the lockstep executor, from the webhook
# to the run's end; the peer is `lockstep run -j 2` of the same workflow on
# the same host. Printed: medians over RUNS repeats, the overhead per job of
# each and their ratio. CELLS=0 skips it.
#
# dispatch: 4 agents with the fake executor (`echo`, no containers), three
# figures, all from PostgreSQL's clock. "Queued" is the commit of the
# transaction that queued the job (track_commit_timestamp of the planner's
# transaction, which also marks the delivery planned; jobs.queued_at is that
# transaction's start, before the planner fetched the repository); "start"
# is attempts.started_at, the agent's `start` (after which it starts the
# job's process):
# - throughput: JOBS jobs queued at once by one push; jobs per second from
#   the first job queued to the last finished (and from the webhook to the
#   run's end, which includes planning the JOBS matrix cells);
# - backlog wait: queued to start of those JOBS jobs, p50/p99. This is the
#   time a job waits behind the others (about its place in the queue divided
#   by the throughput), not a dispatch delay;
# - pickup: PICKUPS pushes of a one-job workflow, one after the other, each
#   while every agent is idle in its claim: queued to start p50/p99 (and
#   queued to claim). This is the delay the dispatch path adds to a job that
#   has a free slot waiting for it. And, for the same pushes, from the
#   webhook's send to the job's start: that adds the delivery's handling,
#   the fetch of the repository and the planning of the run.
#
# PostgreSQL runs with its durable defaults (fsync, synchronous_commit), as
# the server needs them for job state; BENCH_PG_NONDURABLE=1 turns both off
# to see what the commits cost. BENCH_PG_STATEMENTS=1 prints the statements
# that took the most time in all (pg_stat_statements).
#
# Everything listens on 127.0.0.1 and is removed at the end.
# Usage: bench/server/run.sh [BUILD_DIR] [RUNS] [CELLS] [JOBS] [PICKUPS]   (as root)
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$here/build}" && pwd)
runs=${2:-3}
cells=${3:-64}
jobs=${4:-1000}
pickups=${5:-100}
[ "$(id -u)" = 0 ] || { echo "run.sh: error: run as root" >&2; exit 2; }
cmake --build "$build" --target lockstep >/dev/null
ls="$build/runner/lockstep"
pgbin=/usr/lib/postgresql/15/bin

work=$(mktemp -d /tmp/lockstep-bench-server.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -d "$work/pg/data" ] && runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/pg/data" -m immediate -w -s stop 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { date +%s%3N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# PostgreSQL on a loopback port.
mkdir -p "$work/pg" && chown postgres: "$work/pg" && chmod 700 "$work/pg"
runuser -u postgres -- "$pgbin/initdb" -D "$work/pg/data" -U lockstep --auth=trust -E UTF8 --locale=C --no-instructions >/dev/null
pgport=$(free_port)
printf "listen_addresses = '127.0.0.1'\nport = %s\nunix_socket_directories = ''\nmax_connections = 200\ntrack_commit_timestamp = on\n" "$pgport" >> "$work/pg/data/postgresql.conf"
[ "${BENCH_PG_NONDURABLE:-0}" = 1 ] && printf "fsync = off\nsynchronous_commit = off\n" >> "$work/pg/data/postgresql.conf"
[ "${BENCH_PG_STATEMENTS:-0}" = 1 ] && printf "shared_preload_libraries = 'pg_stat_statements'\n" >> "$work/pg/data/postgresql.conf"
runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w -s start
psql() { PGCONNECT_TIMEOUT=5 /usr/bin/psql -qtAX "postgresql://lockstep@127.0.0.1:$pgport/$1" -c "$2"; }
psql postgres "CREATE DATABASE lockstep" >/dev/null
[ "${BENCH_PG_STATEMENTS:-0}" = 1 ] && psql lockstep "CREATE EXTENSION pg_stat_statements" >/dev/null
db="postgresql://lockstep@127.0.0.1:$pgport/lockstep"
# One psql session for the polls below: a psql per poll costs this 2-core
# machine more CPU than the dispatch being measured.
coproc POLL { PGCONNECT_TIMEOUT=5 /usr/bin/psql -qtAX "$db" 2>&1; }
pids+=("$POLL_PID")
poll() {  # SQL returning one row of one column
  echo "$1;" >&"${POLL[1]}"
  local line
  read -r line <&"${POLL[0]}"
  echo "$line"
}

# The repository, the server and its admin setup.
export LOCKSTEP_HOME="$work/server-home"
git init -q --bare -b main "$work/repo.git"
git init -q -b main "$work/src"
printf 'bench-secret' > "$work/secret"
"$ls" server repo add o/r --forge github --clone-url "$work/repo.git" --webhook-secret-file "$work/secret" --db "$db" >/dev/null
port=$(free_port)
"$ls" server --listen "127.0.0.1:$port" --db "$db" >"$work/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/api/health" >/dev/null && break; sleep 0.1; done

start_agents() {  # N EXECUTOR
  for i in $(seq "$1"); do
    local home="$work/agent-$2-$i"
    mkdir -p "$home"
    [ "$2" = lockstep ] && LOCKSTEP_HOME="$home" "$ls" image import "$work/busybox-rootfs" --tag localhost/busybox:test >/dev/null
    local token
    token=$("$ls" server agent-token add "$2-$i" --db "$db")
    LOCKSTEP_HOME="$home" "$ls" agent --server "http://127.0.0.1:$port" --token "$token" --name "$2-$i" --executor "$2" >"$home.log" 2>&1 &
    agent_pids+=($!)
    pids+=($!)
  done
}
stop_agents() {
  for p in "${agent_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${agent_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  agent_pids=()
}

n=0
push() {  # FILE CONTENT: commits, pushes, waits for the run; sets run_id and elapsed_ms
  n=$((n + 1))
  printf '%s' "$2" > "$work/src/$1"
  git -C "$work/src" add -A
  git -C "$work/src" -c user.name=b -c user.email=b@example.com commit -qm "bench $n"
  git -C "$work/src" push -q "$work/repo.git" main
  local sha body sig t0 id status
  sha=$(git -C "$work/src" rev-parse HEAD)
  body="{\"ref\":\"refs/heads/main\",\"before\":\"0000000000000000000000000000000000000000\",\"after\":\"$sha\",\"repository\":{\"full_name\":\"o/r\",\"clone_url\":\"$work/repo.git\"}}"
  sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac bench-secret | awk '{print $2}')
  t0=$(now_ms)
  push_t0=$t0
  curl -fs -o /dev/null -H "X-GitHub-Event: push" -H "X-GitHub-Delivery: bench-$n" \
    -H "X-Hub-Signature-256: sha256=$sig" -d "$body" "http://127.0.0.1:$port/hooks/github"
  for _ in $(seq 6000); do
    id=$(poll "SELECT coalesce((SELECT max(id) FROM runs WHERE sha = '$sha' AND status IN ('success','failure','cancelled')), 0)")
    [ "$id" != 0 ] && break
    sleep 0.05
  done
  elapsed_ms=$(( $(now_ms) - t0 ))
  status=$(psql lockstep "SELECT status FROM runs WHERE id = $id")
  [ "$status" = success ] || { echo "run.sh: error: run $id ended $status" >&2; exit 1; }
  run_id=$id
}

agent_pids=()

# End to end.
if [ "$cells" -gt 0 ]; then
bash "$here/scripts/busybox-rootfs.sh" "$work/busybox-rootfs" >/dev/null
words=$(seq -s, 1 "$cells")
wf="name: bench
on: push
jobs:
  cell:
    runs-on: ubuntu-latest
    container: localhost/busybox:test
    strategy:
      matrix:
        n: [$words]
    steps:
      - run: true
"
mkdir -p "$work/src/.github/workflows"
start_agents 2 lockstep
server_ms=()
for r in $(seq "$runs"); do
  push .github/workflows/ci.yml "$wf
# $r"
  server_ms+=("$elapsed_ms")
done
stop_agents
export LOCKSTEP_HOME="$work/local-home"
mkdir -p "$LOCKSTEP_HOME"
"$ls" image import "$work/busybox-rootfs" --tag localhost/busybox:test >/dev/null
local_ms=()
for r in $(seq "$runs"); do
  t0=$(now_ms)
  (cd "$work/src" && "$ls" run .github/workflows/ci.yml -j 2 >"$work/local.log" 2>&1) || { echo "run.sh: error: lockstep run failed:" >&2; tail -5 "$work/local.log" >&2; exit 1; }
  local_ms+=($(( $(now_ms) - t0 )))
done
export LOCKSTEP_HOME="$work/server-home"
s=$(printf '%s\n' "${server_ms[@]}" | median)
l=$(printf '%s\n' "${local_ms[@]}" | median)
echo "end to end, $cells cells of 'true' in busybox, median of $runs:"
awk -v s="$s" -v l="$l" -v c="$cells" 'BEGIN {
  printf "  server + 2 agents: %.0f ms (%.1f ms per job)\n", s, s / c
  printf "  lockstep run -j 2: %.0f ms (%.1f ms per job)\n", l, l / c
  printf "  ratio server / lockstep run: %.2fx\n", s / l }'
fi

# Dispatch: the fake executor, 4 agents.
mkdir -p "$work/src/.github/workflows"
dwf="name: dispatch
on: push
jobs:
  j:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        a: [$(seq -s, 1 $(( (jobs + 9) / 10 )))]
        b: [0,1,2,3,4,5,6,7,8,9]
    steps:
      - run: echo ok
"
start_agents 4 fake
push .github/workflows/ci.yml "$dwf"
id=$run_id
webhook_ms=$elapsed_ms
p50p99() {  # SQL of a column ms: "p50 p99" in ms, one decimal
  psql lockstep "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) || ' ' || round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1) FROM ($1) x"
}
count=$(psql lockstep "SELECT count(*) FROM jobs WHERE run_id = $id")
# The jobs of a run were queued when its delivery was marked planned.
queued="pg_xact_commit_timestamp(d.xmin)"
from="FROM attempts a JOIN jobs j ON j.id = a.job_id JOIN runs r ON r.id = j.run_id JOIN deliveries d ON d.id = r.delivery_id"
drain_ms=$(psql lockstep "SELECT round(extract(epoch FROM max(j.finished_at) - min($queued)) * 1000) $from WHERE j.run_id = $id")
wait_lat=$(p50p99 "SELECT extract(epoch FROM a.started_at - $queued) * 1000 AS ms $from WHERE j.run_id = $id")

pwf="name: pickup
on: push
jobs:
  one:
    runs-on: ubuntu-latest
    steps:
      - run: echo ok
"
first=0
for i in $(seq "$pickups"); do
  push .github/workflows/ci.yml "$pwf# $i
"
  [ "$first" = 0 ] && first=$run_id
  echo "$run_id $push_t0" >> "$work/pickup-webhooks"
done
last=$run_id
stop_agents
[ "$pickups" -gt 0 ] || first=$((last + 1))  # none: an empty range
pick_sql="$from WHERE j.run_id BETWEEN $first AND $last"
pick_start=$(p50p99 "SELECT extract(epoch FROM a.started_at - $queued) * 1000 AS ms $pick_sql")
pick_claim=$(p50p99 "SELECT extract(epoch FROM a.claimed_at - $queued) * 1000 AS ms $pick_sql")
pick_n=$(psql lockstep "SELECT count(*) $pick_sql")
# Webhook to first job started: from the moment the signed delivery was sent
# (this host's clock, as PostgreSQL's) to the job's start.
pick_hook="- -"
if [ -s "$work/pickup-webhooks" ]; then
  pick_hook=$(while read -r rid sent; do
    started=$(psql lockstep "SELECT round(extract(epoch FROM min(a.started_at)) * 1000) FROM attempts a JOIN jobs j ON j.id = a.job_id WHERE j.run_id = $rid")
    echo $((started - sent))
  done < "$work/pickup-webhooks" | sort -n | awk '{a[NR]=$1} END {
    i50 = int(0.5 * (NR - 1)) + 1; i99 = int(0.99 * (NR - 1)) + 1
    printf "%.0f %.0f", a[i50], a[i99] }')
fi

echo "dispatch, fake executor on 4 agents, PostgreSQL $([ "${BENCH_PG_NONDURABLE:-0}" = 1 ] && echo 'without fsync' || echo durable):"
awk -v ms="$webhook_ms" -v d="$drain_ms" -v c="$count" -v w="$wait_lat" -v ps="$pick_start" \
  -v pc="$pick_claim" -v pn="$pick_n" -v ph="$pick_hook" 'BEGIN {
  split(w, W, " "); split(ps, S, " "); split(pc, C, " "); split(ph, H, " ")
  printf "  throughput: %d jobs queued at once: %.0f jobs/s from the first queued to the last finished (%.0f ms); %.0f jobs/s from the webhook to the run end (%.0f ms)\n", c, c * 1000 / d, d, c * 1000 / ms, ms
  printf "  backlog wait (queued to start, behind the other %d): p50 %s ms, p99 %s ms\n", c - 1, W[1], W[2]
  printf "  pickup with a free slot (queued to start, %d one-job pushes): p50 %s ms, p99 %s ms (queued to claim: p50 %s ms, p99 %s ms)\n", pn, S[1], S[2], C[1], C[2]
  printf "  webhook to first job started (%d pushes, nearest rank): p50 %s ms, p99 %s ms\n", pn, H[1], H[2] }'
if [ "${BENCH_PG_STATEMENTS:-0}" = 1 ]; then
  echo "statements by total time (ms total, calls, ms mean):"
  psql lockstep "SELECT round(total_exec_time) || ' ' || calls || ' ' || round(mean_exec_time::numeric, 3) || '  ' || left(regexp_replace(query, '\s+', ' ', 'g'), 110) FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 25" | sed 's/^/  /'
fi
