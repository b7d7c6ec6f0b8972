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
# Usage: guest.sh --src DIR --build DIR --results DIR [--suite quick|full]
#                 [--bench RUNS]
set -uo pipefail
src= build= results= suite=quick bench_runs=0
while [ $# -gt 0 ]; do
  case "$1" in
    --src) src=$2; shift ;;
    --build) build=$2; shift ;;
    --results) results=$2; shift ;;
    --suite=*) suite=${1#--suite=} ;;
    --bench=*) bench_runs=${1#--bench=} ;;
    *) echo "guest.sh: error: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$results/logs"
out=$results/results.txt
: > "$out"
say() { echo "lockstep-vm: $*" > /dev/ttyS0; }
record() { echo "$*" >> "$out"; }
# Each binary or command gets this long; TCG runs ~10x slower than the host.
per_binary=${LOCKSTEP_VM_PER_BINARY_TIMEOUT:-1200}
export TMPDIR=/tmp LANG=C.UTF-8

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
  say "running $name ($filter)"
  (cd /tmp && timeout -k 10 "$per_binary" "$bin" --gtest_filter="$filter" --gtest_color=no) > "$log" 2>&1
  status=$?
  awk -v bin="$name" -v status="$status" '
    /^\[ RUN      \] / { running = $4; reason = ""; next }
    /^\[       OK \] .*\(.* ms\)$/ { print "PASS " $4; running = ""; passed++; next }
    /^\[  FAILED  \] .*\(.* ms\)$/ { print "FAIL " $4; running = ""; failed++; next }
    /^\[  SKIPPED \] .*\(.* ms\)$/ { print "SKIP " $4 ": " reason; running = ""; failed++; next }
    running != "" && prev ~ /: Skipped$/ { reason = $0 }
    { prev = $0 }
    END {
      if (running != "") { print "FAIL " running ": never finished (" bin " exited " status ")"; failed++ }
      else if (status != 0 && failed == 0) print "FAIL " bin ": exited " status " with no failing test"
      if (passed + failed == 0 && status == 0) print "FAIL " bin ": ran no test"
    }' "$log" >> "$out"
}

sec=$build/tests/integration/executor-security
exe=$build/tests/integration/executor
gtest "$sec/executor_security_cgroup_v2_test"
gtest "$sec/executor_security_limits_test"
gtest "$sec/executor_security_escape_test"
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
      'ExecutorTest.Cgroup*'
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
cgroups() { find /sys/fs/cgroup/lockstep -mindepth 1 -maxdepth 1 -type d 2>/dev/null | wc -l; }

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
  (cd "$work/sleeper" && exec "$lockstep" run ci.yml) > "$log" 2>&1 &
  pid=$!
  for i in $(seq 600); do
    grep -q sleeping "$log" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  left_behind=$(cgroups)
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  if ! grep -q sleeping "$log" || [ "$left_behind" = 0 ]; then
    record "FAIL lockstep run SIGKILLed mid-job: the job never started (logs/lockstep-run-sigkilled.log)"
    return
  fi
  echo "after SIGKILL: $left_behind cgroup(s), $(pgrep -cx sleep) sleep process(es)" >> "$log"
}

hello() {
  local log=$results/logs/lockstep-run-hello.log status greetings
  say "running lockstep run examples/hello"
  cp -r "$src/examples/hello" "$work/hello"
  (cd "$work/hello" && timeout -k 10 "$per_binary" "$lockstep" run ci.yml) > "$log" 2>&1
  status=$?
  greetings=$(grep -cE '(hello|bonjour), (world|lockstep)! \(from lockstep\)' "$log")
  if [ "$status" = 0 ] && [ "$greetings" -ge 4 ]; then
    record "PASS lockstep run examples/hello"
  else
    record "FAIL lockstep run examples/hello: exit $status, $greetings of 4 greetings (logs/lockstep-run-hello.log)"
  fi
}

sigkill_runner
hello
if grep -q "after SIGKILL" "$results/logs/lockstep-run-sigkilled.log" 2>/dev/null; then
  if [ "$(cgroups)" = 0 ] && ! pgrep -x sleep >/dev/null; then
    record "PASS lockstep run SIGKILLed mid-job: the next run reaped its cgroup and processes"
  else
    record "FAIL lockstep run SIGKILLed mid-job: after the next run $(cgroups) cgroup(s) and $(pgrep -cx sleep) sleep process(es) are left"
  fi
fi
unset LOCKSTEP_HOME
rm -rf "$work"

# --- nothing left behind -------------------------------------------------------
left=$(find /sys/fs/cgroup/lockstep -mindepth 1 -maxdepth 1 -type d 2>/dev/null | wc -l)
if [ "$left" = 0 ]; then
  record "PASS no cgroup left under /sys/fs/cgroup/lockstep"
else
  record "FAIL no cgroup left under /sys/fs/cgroup/lockstep: $left left: $(ls /sys/fs/cgroup/lockstep | head -5 | tr '\n' ' ')"
fi

# --- the benchmark ---------------------------------------------------------------
if [ "$bench_runs" -gt 0 ]; then
  say "running bench/executor/run.sh ($bench_runs runs)"
  timeout -k 10 "$per_binary" "$src/bench/executor/run.sh" "$build" "$bench_runs" \
    > "$results/bench.txt" 2>&1 || echo "bench/executor/run.sh failed: exit $?" >> "$results/bench.txt"
fi
say "tests finished"
grep -q '^\(FAIL\|SKIP\) ' "$out" && exit 1
exit 0
