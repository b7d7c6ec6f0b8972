#!/usr/bin/env bash
# Benchmark: what a step costs when it is an action.
#  1. A JavaScript action that only sets one output, per step, against
#     `node -e` of the same script started directly on the host (the peer):
#     target <= node's own start-up + 15 ms.
#  2. A composite action of three run steps against the same steps written
#     inline: per composite step, and the ratio.
#  3. Resolving an action in a new run when the mirror is current (and when a
#     lock pins it), against `git fetch` of the same repository: target <= 5 ms.
# Per-step figures are (job with N steps - job with 0 steps) / N, medians of
# REPEATS runs. Usage: bench/actions/run.sh [REPEATS] [N]  (root, after setup)
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
lockstep="$here/build/runner/lockstep"
repeats=${1:-5}
n=${2:-20}
work=$(mktemp -d /tmp/lockstep-bench-actions.XXXXXX)
trap 'rm -rf "$work"' EXIT
export LOCKSTEP_HOME="$work/home"
"$here/scripts/busybox-rootfs.sh" "$work/rootfs"
"$lockstep" image import "$work/rootfs" --tag localhost/busybox:bench >/dev/null

git_commit() {  # DIR: init, commit everything, tag v1
  git -C "$1" init -q -b main
  git -C "$1" add -A
  git -C "$1" -c user.name=b -c user.email=b@e commit -qm bench
  git -C "$1" tag v1
}
script="require('fs').appendFileSync(process.env.GITHUB_OUTPUT, 'x=1\n')"
mkdir -p "$work/forge/bench/out" "$work/forge/bench/comp"
printf 'name: out\noutputs:\n  x: {description: one output}\nruns:\n  using: node20\n  main: index.js\n' \
  > "$work/forge/bench/out/action.yml"
echo "$script" > "$work/forge/bench/out/index.js"
git_commit "$work/forge/bench/out"
cat > "$work/forge/bench/comp/action.yml" <<'YML'
name: comp
runs:
  using: composite
  steps:
    - run: "true"
      shell: sh
    - run: "true"
      shell: sh
    - id: last
      run: echo "x=1" >> "$GITHUB_OUTPUT"
      shell: sh
YML
git_commit "$work/forge/bench/comp"

# job WORKFLOW_FILE STEP_YAML COUNT
job() {
  {
    printf 'on: push\njobs:\n  t:\n    runs-on: ubuntu-latest\n    container: localhost/busybox:bench\n    steps:\n'
    printf '      - uses: bench/out@v1\n'   # every variant mounts the runtime
    for _ in $(seq "$3"); do printf '%s\n' "$2"; done
  } > "$1"
}
job "$work/zero.yml" "" 0
job "$work/js.yml" "      - uses: bench/out@v1" "$n"
job "$work/comp.yml" "      - uses: bench/comp@v1" "$n"
inline='      - run: "true"
      - run: "true"
      - run: echo "x=1" >> "$GITHUB_OUTPUT"'
job "$work/inline.yml" "$inline" "$n"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
now_us() { date +%s%6N; }
time_run() {  # WORKFLOW -> microseconds of `lockstep run`
  local t0 t1
  t0=$(now_us)
  "$lockstep" run "$1" --actions-url "$work/forge" >"$work/out.txt" 2>&1 || { cat "$work/out.txt"; exit 1; }
  t1=$(now_us)
  echo $((t1 - t0))
}
time_run "$work/js.yml" >/dev/null   # warm-up: runtime bundle, mirrors, trees
time_run "$work/comp.yml" >/dev/null

declare -A med
for wf in zero js comp inline; do
  ts=()
  for _ in $(seq "$repeats"); do ts+=("$(time_run "$work/$wf.yml")"); done
  med[$wf]=$(printf '%s\n' "${ts[@]}" | median)
done
# The peer: the same script with the host's node, started directly.
node_ts=()
for _ in $(seq $((repeats * n))); do
  t0=$(now_us)
  GITHUB_OUTPUT="$work/peer-out" node -e "$script"
  t1=$(now_us)
  node_ts+=($((t1 - t0)))
done
node_med=$(printf '%s\n' "${node_ts[@]}" | median)

awk -v z="${med[zero]}" -v js="${med[js]}" -v c="${med[comp]}" -v i="${med[inline]}" \
    -v nd="$node_med" -v n="$n" -v r="$repeats" 'BEGIN {
  js_step = (js - z) / n / 1000; node = nd / 1000
  printf "JavaScript action step:  %.1f ms per step (median of %d runs of %d steps)\n", js_step, r, n
  printf "node -e on the host:     %.1f ms per start (median of %d)\n", node, r * n
  printf "  overhead over node:    %+.1f ms (target <= +15 ms); ratio %.2f\n", js_step - node, js_step / node
  cs = (c - z) / n / 1000; is = (i - z) / n / 1000
  printf "composite action step (3 run steps): %.1f ms; the same 3 steps inline: %.1f ms; ratio %.2f\n", cs, is, cs / is
}'
"$here/build/bench/actions/bench_action_fetch" "$work/forge" --runs 50 --state "$work/fetch-state"
