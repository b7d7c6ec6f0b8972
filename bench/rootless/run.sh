#!/usr/bin/env bash
# Start-to-exit of /bin/true without root: lockstep rootless against lockstep
# as root and against rootless `podman run --rm` (Debian podman), on the same
# busybox rootfs, network none, interleaved in rounds. Prints medians and the
# ratios. As root: it creates a user of its own (useradd, a subordinate range)
# for the rootless runs and removes it, and everything else, at the end.
# Usage: bench/rootless/run.sh [BUILD_DIR] [RUNS_PER_ROUND] [ROUNDS]
#
# lockstep as root applies cgroup limits (memory 256 MiB, pids 512, 1 CPU);
# rootless on this cgroup v1 host gets none (docs/rootless.md), nor does
# rootless podman here. podman gets --rootfs so that no image store is
# involved.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$here/build}
per_round=${2:-10}
rounds=${3:-5}
bench="$build/bench/rootless/bench_rootless"
if command -v cmake >/dev/null; then
  cmake --build "$build" --target bench_rootless >/dev/null
fi
[ -x "$bench" ] || { echo "run.sh: error: $bench is not built" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "run.sh: error: run as root (it creates the benchmark's user)" >&2; exit 2; }
for tool in podman newuidmap setpriv useradd; do
  command -v "$tool" >/dev/null || { echo "run.sh: error: $tool is missing (scripts/setup.sh installs it)" >&2; exit 2; }
done

work=$(mktemp -d /tmp/lockstep-bench-rootless.XXXXXX)
chmod 755 "$work"
user="lsbench$$"
created_user=0
cleanup() {
  # podman's rootless pause process holds the user's namespaces.
  local pid
  pid=$(cat "$work/xdg/libpod/tmp/pause.pid" 2>/dev/null || true)
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  [ "$created_user" = 1 ] && userdel -f "$user" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

useradd -M -d "$work/home" -s /bin/sh -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$user"
created_user=1
first=$((3000000 + ($$ % 1000) * 65536))
usermod --add-subuids "$first-$((first + 65535))" --add-subgids "$first-$((first + 65535))" "$user"
uid=$(id -u "$user")
gid=$(id -g "$user")
mkdir -p "$work/home" "$work/xdg" "$work/state-user" "$work/state-root"
chown "$uid:$gid" "$work/home" "$work/xdg" "$work/state-user"
chmod 700 "$work/xdg"

# The rootfs: busybox-static and its applets, owned by the user (podman
# --rootfs writes into it: /etc/mtab).
r="$work/rootfs"
mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$r/proc" "$r/dev" "$r/sys"
cp /bin/busybox "$r/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$r/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$r/etc/passwd"
echo 'root:x:0:' > "$r/etc/group"
chown -R "$uid:$gid" "$r"

as_user() {
  setpriv --reuid="$uid" --regid="$gid" --clear-groups -- \
    env HOME="$work/home" XDG_RUNTIME_DIR="$work/xdg" "$@"
}

: > "$work/rootful.txt"; : > "$work/rootless.txt"; : > "$work/podman.txt"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)  ($(nproc) cores)"
for ((round = 0; round < rounds; round++)); do
  "$bench" --rootfs "$r" --state "$work/state-root" --runs "$per_round" >> "$work/rootful.txt"
  as_user "$bench" --rootfs "$r" --state "$work/state-user" --runs "$per_round" >> "$work/rootless.txt"
  # One warm-up start (the pause process), then timed runs.
  as_user podman run --rm --network=none --rootfs "$r" /bin/true 2>"$work/podman.err" ||
    { echo "run.sh: error: podman run failed: $(tail -1 "$work/podman.err")" >&2; exit 1; }
  for ((i = 0; i < per_round; i++)); do
    t0=$(date +%s%N)
    as_user podman run --rm --network=none --rootfs "$r" /bin/true 2>/dev/null
    t1=$(date +%s%N)
    echo "scale=3; ($t1 - $t0) / 1000000" | bc >> "$work/podman.txt"
  done
done

python3 - "$work" "$((per_round * rounds))" <<'PY'
import statistics, sys
work, n = sys.argv[1], sys.argv[2]
med = {k: statistics.median(float(x) for x in open(f"{work}/{k}.txt") if x.strip())
       for k in ("rootful", "rootless", "podman")}
print(f"start-to-exit of /bin/true, network none, median of {n} runs each (ms)")
print(f"  lockstep as root (cgroup limits)   {med['rootful']:8.2f}")
print(f"  lockstep rootless (no cgroup)      {med['rootless']:8.2f}")
print(f"  podman run --rm rootless           {med['podman']:8.2f}")
print(f"  rootless / root lockstep:  {med['rootless'] / med['rootful']:.2f}x  (target <= 1.5x)")
print(f"  podman / rootless lockstep: {med['podman'] / med['rootless']:.1f}x  (target >= 10x)")
PY
