#!/usr/bin/env bash
# Benchmark: a 64-job matrix of `true` steps at --jobs 2. Prints wall time and
# per-job overhead (wall / jobs) for lockstep, and for the same 64 containers
# started with `crun run` two at a time from the same rootfs, as the peer.
# Usage: bench/engine/run.sh [REPEATS]   (as root, after scripts/setup.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
lockstep="$here/build/runner/lockstep"
repeats=${1:-5}
work=$(mktemp -d /tmp/lockstep-bench-engine.XXXXXX)
trap 'rm -rf "$work"' EXIT
export LOCKSTEP_HOME="$work/home"

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
        a: [1, 2, 3, 4, 5, 6, 7, 8]
        b: [1, 2, 3, 4, 5, 6, 7, 8]
    steps:
      - run: "true"
YML

# Warm-up: unpack the layer once.
"$lockstep" run "$work/wf.yml" --jobs 2 --network none --matrix a=1 --matrix b=1 >/dev/null

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
now_ms() { date +%s%3N; }

ours=()
for _ in $(seq "$repeats"); do
  t0=$(now_ms)
  # --network none: a namespace with only loopback, as crun's below.
  "$lockstep" run "$work/wf.yml" --jobs 2 --network none >"$work/out.txt" 2>&1 || { cat "$work/out.txt"; exit 1; }
  t1=$(now_ms)
  grep -q "64 of 64 jobs passed" "$work/out.txt" || { cat "$work/out.txt"; exit 1; }
  ours+=($((t1 - t0)))
done
ours_med=$(printf '%s\n' "${ours[@]}" | median)

peer_med=""
if command -v crun >/dev/null; then
  bundle="$work/bundle"
  "$here/bench/engine/crun-bundle.sh" "$work/rootfs" "$bundle"
  peer=()
  for _ in $(seq "$repeats"); do
    t0=$(now_ms)
    for i in $(seq 32); do
      crun run --bundle "$bundle" "bench-a-$$-$i" >/dev/null 2>&1 &
      crun run --bundle "$bundle" "bench-b-$$-$i" >/dev/null 2>&1
      wait
    done
    t1=$(now_ms)
    peer+=($((t1 - t0)))
  done
  peer_med=$(printf '%s\n' "${peer[@]}" | median)
fi

echo "64-job matrix of 'true' at --jobs 2, median of $repeats runs"
# Memory cgroups that were removed but still hold page-cache charges stay
# "dying" and make every cgroup operation dearer: on this machine 140 of them
# took a run from ~9 to ~17 ms per job. Printed so runs can be compared;
# `sync; echo 3 > /proc/sys/vm/drop_caches` frees them.
echo "  host: $(awk '$1 == "memory" {print $3}' /proc/cgroups) memory cgroups (live and dying)"
printf '  lockstep run:                %6s ms wall, %6.1f ms per job (runs: %s)\n' "$ours_med" \
  "$(echo "$ours_med / 64" | bc -l)" "${ours[*]}"
if [ -n "$peer_med" ]; then
  printf '  crun run x64, 2 at a time:   %6s ms wall, %6.1f ms per job (runs: %s)\n' "$peer_med" \
    "$(echo "$peer_med / 64" | bc -l)" "${peer[*]}"
  printf '  ratio lockstep/crun: %.2f\n' "$(echo "$ours_med / $peer_med" | bc -l)"
fi
echo "  target: per-job overhead under 15 ms"
