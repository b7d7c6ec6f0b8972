#!/usr/bin/env bash
# Start-to-exit of /bin/true: lockstep's executor vs `crun run` and `runc run`
# on the same unpacked busybox rootfs, in the same run, with cgroup limits
# (memory 256 MiB, pids 512, 1 CPU) and the same seccomp allow-list (ours,
# converted to OCI form) for all three. Prints medians, ratios, and our cost
# split. Usage: bench/executor/run.sh [BUILD_DIR] [RUNS]   (as root)
#
# crun 1.8 refuses the hybrid cgroup layout while the cgroup2 mount owns
# hugetlb; like HOST-NOTES says, a v1 hugetlb hierarchy is mounted for the run
# (and removed afterwards if this script mounted it).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$here/build}
runs=${2:-50}
bench="$build/bench/executor/bench_executor"
# Where there is no cmake (the guest of scripts/test-cgroup2-vm.sh), the
# binary must have been built already.
if command -v cmake >/dev/null; then
  cmake --build "$build" --target bench_executor >/dev/null
fi
[ -x "$bench" ] || { echo "run.sh: error: $bench is not built" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "run.sh: error: run as root" >&2; exit 2; }

work=$(mktemp -d /tmp/lockstep-bench-executor.XXXXXX)
mounted_hugetlb=0
cleanup() {
  if [ "$mounted_hugetlb" = 1 ]; then
    umount /sys/fs/cgroup/hugetlb 2>/dev/null && rmdir /sys/fs/cgroup/hugetlb 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# The rootfs: busybox-static and its applets, as the integration tests build it.
r="$work/rootfs"
mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$r/proc" "$r/dev" "$r/sys"
cp /bin/busybox "$r/bin/busybox"
for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -s busybox "$r/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' > "$r/etc/passwd"
echo 'root:x:0:' > "$r/etc/group"

if grep -qw hugetlb /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null && \
   ! mountpoint -q /sys/fs/cgroup/hugetlb; then
  mkdir -p /sys/fs/cgroup/hugetlb
  mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb
  mounted_hugetlb=1
fi

"$bench" --print-seccomp > "$work/seccomp.json"
for rt in crun runc; do
  mkdir -p "$work/$rt"
  (cd "$work/$rt" && runc spec)
  python3 - "$work/$rt/config.json" "$r" "$work/seccomp.json" <<'PY'
import json, sys
cfg_path, rootfs, prof_path = sys.argv[1:4]
cfg = json.load(open(cfg_path))
prof = json.load(open(prof_path))
cfg["root"] = {"path": rootfs, "readonly": True}
cfg["process"]["args"] = ["/bin/true"]
cfg["process"]["terminal"] = False
cfg["hostname"] = "lockstep"
lx = cfg["linux"]
lx["namespaces"] = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")]
lx["resources"] = {"memory": {"limit": 256 << 20, "swap": 256 << 20},
                   "pids": {"limit": 512}, "cpu": {"quota": 100000, "period": 100000}}
# Docker profile -> OCI: the unconditional rules and those whose capability
# conditions hold for the default set (no CAP_SYS_ADMIN etc.).
default_caps = set(cfg["process"]["capabilities"]["bounding"])
rules = []
for s in prof["syscalls"]:
    inc = s.get("includes", {}).get("caps", [])
    exc = s.get("excludes", {}).get("caps", [])
    if any(c not in default_caps for c in inc) or any(c in default_caps for c in exc):
        continue
    rule = {"names": s["names"], "action": s["action"]}
    if s.get("args"): rule["args"] = s["args"]
    if "errnoRet" in s: rule["errnoRet"] = s["errnoRet"]
    rules.append(rule)
lx["seccomp"] = {"defaultAction": prof["defaultAction"],
                 "defaultErrnoRet": prof.get("defaultErrnoRet", 1),
                 "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                 "syscalls": rules}
json.dump(cfg, open(cfg_path, "w"), indent=1)
PY
done

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)  ($(nproc) cores)"
"$bench" --rootfs "$r" --state "$work/state" --runs "$runs" \
  --peer crun="$work/crun" --peer runc="$work/runc"
