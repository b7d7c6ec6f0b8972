#!/usr/bin/env bash
# Benchmark: per-job overhead over a long stretch of jobs, and what it does to
# the host's memory cgroups. Runs BATCHES batches of 200 `true` jobs (a 10x20
# matrix at --jobs 2, network none) and, after each, the same 200 containers
# with `crun run` two at a time, printing per batch: ms per job for each, the
# ratio, and the number of memory cgroups the kernel holds (live and dying:
# removed cgroups still charged with page cache stay "dying" and make every
# cgroup operation dearer). Steady ratio and count = no decay over time.
# Usage: bench/engine/long.sh [BATCHES]   (as root, after scripts/setup.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
lockstep="$here/build/runner/lockstep"
batches=${1:-10}
work=$(mktemp -d /tmp/lockstep-bench-long.XXXXXX)
trap 'rm -rf "$work"' EXIT
export LOCKSTEP_HOME="$work/home"
command -v crun >/dev/null || { echo "crun is not installed (scripts/setup.sh)" >&2; exit 1; }

"$here/scripts/busybox-rootfs.sh" "$work/rootfs"
"$lockstep" image import "$work/rootfs" --tag localhost/busybox:bench >/dev/null
cat > "$work/wf.yml" <<'YML'
on: push
jobs:
  t:
    runs-on: ubuntu-latest
    container: localhost/busybox:bench
    strategy:
      fail-fast: false
      matrix:
        a: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
        b: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]
    steps:
      - run: "true"
YML
"$lockstep" run "$work/wf.yml" --jobs 2 --network none --matrix a=1 --matrix b=1 >/dev/null

bundle="$work/bundle"
"$here/bench/engine/crun-bundle.sh" "$work/rootfs" "$bundle"

now_ms() { date +%s%3N; }
memcgs() { awk '$1 == "memory" {print $3}' /proc/cgroups; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
echo "batches of 200 'true' jobs at --jobs 2 (lockstep) and 2 at a time (crun)"
echo "memory cgroups at start: $(memcgs)"
printf '%6s %10s %10s %7s %8s\n' batch "lockstep" crun ratio memcgs
ratios=()
for b in $(seq "$batches"); do
  t0=$(now_ms)
  "$lockstep" run "$work/wf.yml" --jobs 2 --network none >"$work/out.txt" 2>&1 || { tail "$work/out.txt"; exit 1; }
  t1=$(now_ms)
  grep -q "200 of 200 jobs passed" "$work/out.txt" || { tail "$work/out.txt"; exit 1; }
  "$lockstep" runs prune --keep 1 >/dev/null 2>&1 || true
  t2=$(now_ms)
  for i in $(seq 100); do
    crun run --bundle "$bundle" "long-a-$$-$i" >/dev/null 2>&1 &
    crun run --bundle "$bundle" "long-b-$$-$i" >/dev/null 2>&1
    wait
  done
  t3=$(now_ms)
  ours=$(echo "($t1 - $t0) / 200" | bc -l)
  peer=$(echo "($t3 - $t2) / 200" | bc -l)
  ratio=$(echo "$ours / $peer" | bc -l)
  ratios+=("$ratio")
  printf '%6d %7.1f ms %7.1f ms %7.2f %8s\n' "$b" "$ours" "$peer" "$ratio" "$(memcgs)"
done
printf 'median ratio lockstep/crun over %d jobs: %.2f (target under 1.3)\n' \
  "$((batches * 200))" "$(printf '%s\n' "${ratios[@]}" | median)"
