#!/usr/bin/env bash
# Runs inside the guest of scripts/test-cgroup2-vm.sh (started by
# lockstep-vm-boot, as root, on a pure cgroup v2 kernel). Writes to RESULTS:
#   info.txt     facts about the guest (kernel, init, cgroup2 mount, controllers)
#   results.txt  one line per check: "PASS name", "FAIL name: why",
#                "SKIP name: reason" (a skip fails the run: the guest has
#                every prerequisite)
#   logs/        the full output of every test binary and command
#   bench.txt    with --bench: bench/executor/run.sh's output
# Progress goes to the serial console as "lockstep-vm: ..." lines.
#
# Usage: guest.sh --src DIR --build DIR --results DIR [--suite=quick|full]
#                 [--bench=RUNS] [--only=GTEST_FILTER] [--timeout=SECONDS]
# --only runs just the suite's tests that match, and nothing else;
# --timeout limits each test binary and command (TCG runs ~10x slower than
# the host).
set -uo pipefail
src= build= results= suite=quick bench_runs=0 only= per_binary=1200
while [ $# -gt 0 ]; do
  case "$1" in
    --src) src=$2; shift ;;
    --build) build=$2; shift ;;
    --results) results=$2; shift ;;
    --suite=*) suite=${1#--suite=} ;;
    --bench=*) bench_runs=${1#--bench=} ;;
    --only=*) only=${1#--only=} ;;
    --timeout=*) per_binary=${1#--timeout=} ;;
    *) echo "guest.sh: error: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$results/logs"
out=$results/results.txt
: > "$out"
say() { echo "lockstep-vm: $*" > /dev/ttyS0; }
record() { echo "$*" >> "$out"; }
# Runs a command with its output in LOG and the time limit above. One that
# runs out of time is killed, after the state of every process (and its
# kernel stack) is written to LOG.hang. Returns the command's status, 124
# when it was killed.
run_limited() {
  local log=$1 pid start=$SECONDS p
  shift
  "$@" > "$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    if [ $((SECONDS - start)) -ge "$per_binary" ]; then
      {
        echo "timed out after $per_binary s: $*"
        ps -eo pid,ppid,stat,wchan:32,etime,args
        for p in $(ps -o pid= --ppid 2 -N); do
          echo "--- $p $(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null)"
          cat "/proc/$p/stack" 2>/dev/null
        done
      } > "$log.hang"
      kill -TERM "$pid" 2>/dev/null
      sleep 10
      kill -KILL "$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
      return 124
    fi
    sleep 1
  done
  wait "$pid"
}
export TMPDIR=/tmp LANG=C.UTF-8

# /tmp on the disk the host gave for it (ext4, like the host's /tmp).
if [ -b /dev/vdb ]; then
  mount -t ext4 /dev/vdb /tmp && chmod 1777 /tmp || echo "guest.sh: cannot mount /dev/vdb on /tmp" >&2
fi

# --- the guest itself --------------------------------------------------------
controllers=$(cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null)
{
  echo "kernel: $(uname -r)"
  echo "init: $(cat /proc/1/comm)"
  echo "cgroup2 mount: $(awk '$5 == "/sys/fs/cgroup" { print $6, $NF }' /proc/self/mountinfo)"
  echo "cgroup.controllers: $controllers"
  echo "root subtree_control: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
  echo "cgroup v1 mounts: $(grep -c ' - cgroup ' /proc/self/mountinfo)"
  echo "this shell's cgroup: $(cat /proc/self/cgroup)"
  echo "cpus: $(nproc), memory: $(awk '/MemTotal/ { print int($2 / 1024) " MiB" }' /proc/meminfo)"
  echo "boot to tests: $(cut -d' ' -f1 /proc/uptime) s"
  echo "/tmp: $(df -T /tmp | awk 'NR == 2 { print $2, $1 }')"
} > "$results/info.txt"
missing=
for c in memory pids cpu; do
  case " $controllers " in *" $c "*) ;; *) missing="$missing $c" ;; esac
done
if [ -z "$missing" ] && ! grep -q ' - cgroup ' /proc/self/mountinfo; then
  record "PASS guest: pure cgroup v2 with memory, pids and cpu"
else
  record "FAIL guest: pure cgroup v2 with memory, pids and cpu: missing${missing:- nothing}, v1 mounts $(grep -c ' - cgroup ' /proc/self/mountinfo)"
fi

# --- GoogleTest binaries -----------------------------------------------------
# Runs one binary and turns its per-test lines into PASS/FAIL/SKIP. A test
# that started but never reported (the binary crashed or timed out) fails.
gtest() {
  local bin=$1 filter=${2:-*} name log status
  name=$(basename "$bin")
  log=$results/logs/$name.log
  if [ ! -x "$bin" ]; then
    record "FAIL $name: $bin is not built"
    return
  fi
  # --only: the suite's filter and this one (gtest has no intersection, but
  # a positive pattern list that is a subset does the same here).
  [ -n "$only" ] && filter=$only
  say "running $name ($filter)"
  (cd /tmp && run_limited "$log" "$bin" --gtest_filter="$filter" --gtest_color=no)
  status=$?
  awk -v bin="$name" -v status="$status" -v only="$only" '
    /^\[ RUN      \] / { running = $4; reason = ""; next }
    /^\[       OK \] .*\(.* ms\)$/ { print "PASS " $4; running = ""; passed++; next }
    /^\[  FAILED  \] .*\(.* ms\)$/ { print "FAIL " $4; running = ""; failed++; next }
    /^\[  SKIPPED \] .*\(.* ms\)$/ { print "SKIP " $4 ": " reason; running = ""; failed++; next }
    running != "" && prev ~ /: Skipped$/ { reason = $0 }
    { prev = $0 }
    END {
      if (running != "") {
        print "FAIL " running ": never finished (" bin (status == 124 ? " timed out, see logs/" bin ".log.hang" : " exited " status) ")"
        failed++
      } else if (status != 0 && failed == 0) print "FAIL " bin ": exited " status " with no failing test"
      if (passed + failed == 0 && status == 0 && only == "") print "FAIL " bin ": ran no test"
    }' "$log" >> "$out"
}

sec=$build/tests/integration/executor-security
exe=$build/tests/integration/executor
gtest "$sec/executor_security_cgroup_v2_test"
gtest "$sec/executor_security_limits_test"
gtest "$sec/executor_security_escape_test"
# Rootless runs in a delegated scope of a user's systemd manager: limits,
# OOM, reaping, verify, and the warning outside such a scope.
gtest "$build/tests/integration/rootless/rootless_delegated_test"
if [ "$suite" = full ]; then
  gtest "$exe/executor_integration_test"
  gtest "$sec/executor_security_caps_test"
  gtest "$sec/executor_security_confinement_test"
  gtest "$build/tests/unit/executor-security/executor_security_unit_test" 'FakeV2.*:CgroupRoots.*'
  gtest "$build/tests/integration/run/run_integration_test" 'InterruptTest.*'
else
  # Under TCG the whole executor suite takes too long for CI: the tests of
  # limits (OOM named), cleanup (daemons, SIGKILLed owner, 200 containers)
  # and the cgroup namespace.
  gtest "$exe/executor_integration_test" "$(
    printf '%s:' \
      ExecutorTest.MemoryHogIsReportedAsOutOfMemory ExecutorTest.TimeoutKillsDoubleForkedDaemon \
      ExecutorTest.DestructorStopsAContainerWithADaemon ExecutorTest.ReapStaleAfterOwnerWasKilled \
      ExecutorTest.ReapStaleLeavesLiveContainersAlone ExecutorTest.StopWhileAStepRunsCancelsIt \
      ExecutorTest.TwoHundredContainersLeaveNothing ExecutorTest.HostProcessesAreInvisible \
      ExecutorTest.StepsStartWithNoSignalBlockedOrIgnored
  )"
fi

# --- the lockstep program --------------------------------------------------------
# One state dir for both checks: the second run must reap what the SIGKILLed
# first one left (every lockstep run reaps stale containers when it starts).
lockstep=$build/runner/lockstep
work=$(mktemp -d /tmp/lockstep-run.XXXXXX)
export LOCKSTEP_HOME=$work/home
"$src/scripts/busybox-rootfs.sh" "$work/rootfs" > "$results/logs/image-import.log" 2>&1 &&
  "$lockstep" image import "$work/rootfs" --tag localhost/busybox:1.35 \
    >> "$results/logs/image-import.log" 2>&1 ||
  record "FAIL lockstep image import: logs/image-import.log"
# Container cgroups, by name.
cgroups() { find /sys/fs/cgroup/lockstep -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null | sort; }

sigkill_runner() {
  local log=$results/logs/lockstep-run-sigkilled.log pid i
  say "running lockstep run, then SIGKILL"
  mkdir -p "$work/sleeper"
  cat > "$work/sleeper/ci.yml" <<'YML'
name: sleeper
on: push
jobs:
  sleep:
    runs-on: ubuntu-latest
    container:
      image: localhost/busybox:1.35
    steps:
      - run: |
          setsid sleep 1000 </dev/null >/dev/null 2>&1 &
          echo sleeping
          exec sleep 1001
YML
  cgroups > "$work/cgroups.before"
  (cd "$work/sleeper" && exec "$lockstep" run ci.yml) > "$log" 2>&1 &
  pid=$!
  for i in $(seq 600); do
    grep -q sleeping "$log" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  # What the killed run left: the next run must reap exactly these.
  cgroups | comm -13 "$work/cgroups.before" - > "$work/cgroups.left"
  if ! grep -q sleeping "$log" || [ ! -s "$work/cgroups.left" ]; then
    record "FAIL lockstep run SIGKILLed mid-job: the job never started (logs/lockstep-run-sigkilled.log)"
    rm -f "$work/cgroups.left"
    return
  fi
  echo "after SIGKILL: cgroups $(tr '\n' ' ' < "$work/cgroups.left")and $(pgrep -cx sleep) sleep process(es)" >> "$log"
}

hello() {
  local log=$results/logs/lockstep-run-hello.log status greetings
  say "running lockstep run examples/hello"
  cp -r "$src/examples/hello" "$work/hello"
  (cd "$work/hello" && run_limited "$log" "$lockstep" run ci.yml)
  status=$?
  greetings=$(grep -cE '(hello|bonjour), (world|lockstep)! \(from lockstep\)' "$log")
  if [ "$status" = 0 ] && [ "$greetings" -ge 4 ]; then
    record "PASS lockstep run examples/hello"
  else
    record "FAIL lockstep run examples/hello: exit $status, $greetings of 4 greetings (logs/lockstep-run-hello.log)"
  fi
}

if [ -z "$only" ]; then
  sigkill_runner
  hello
  if [ -s "$work/cgroups.left" ]; then
    still=$(cgroups | comm -12 "$work/cgroups.left" - | tr '\n' ' ')
    if [ -z "$still" ] && ! pgrep -x sleep >/dev/null; then
      record "PASS lockstep run SIGKILLed mid-job: the next run reaped its cgroup and processes"
    else
      record "FAIL lockstep run SIGKILLed mid-job: after the next run, cgroups ${still:-none} and $(pgrep -cx sleep) sleep process(es) are left"
    fi
  fi
fi
unset LOCKSTEP_HOME
rm -rf "$work"

# --- nothing left behind -------------------------------------------------------
left=$(cgroups | tr '\n' ' ')
if [ -z "$left" ]; then
  record "PASS no cgroup left under /sys/fs/cgroup/lockstep"
else
  record "FAIL no cgroup left under /sys/fs/cgroup/lockstep: $left"
fi

# --- the benchmark ---------------------------------------------------------------
if [ "$bench_runs" -gt 0 ]; then
  say "running bench/executor/run.sh ($bench_runs runs)"
  run_limited "$results/bench.txt" "$src/bench/executor/run.sh" "$build" "$bench_runs" ||
    echo "bench/executor/run.sh failed: exit $?" >> "$results/bench.txt"
fi
say "tests finished"
grep -q '^\(FAIL\|SKIP\) ' "$out" && exit 1
exit 0
