#!/usr/bin/env bash
# The peer's container for the engine benchmarks: an OCI bundle in BUNDLE
# whose read-only root is a copy of ROOTFS and whose process is /bin/true in
# new pid, network, ipc, uts and mount namespaces (what lockstep gives a job
# on --network none). Mounts the v1 hugetlb hierarchy crun needs on this
# hybrid cgroup layout when it is missing.
# Usage: bench/engine/crun-bundle.sh ROOTFS BUNDLE
set -euo pipefail
rootfs=$1
bundle=$2
# crun refuses the hybrid cgroup layout while cgroup2 still owns hugetlb.
if [ -d /sys/fs/cgroup/unified ] && ! mountpoint -q /sys/fs/cgroup/hugetlb 2>/dev/null; then
  mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb || true
fi
mkdir -p "$bundle"
cp -a "$rootfs" "$bundle/rootfs"
(cd "$bundle" && crun spec >/dev/null 2>&1)
python3 - "$bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
c["root"]["readonly"] = True
c["linux"]["namespaces"] = [{"type": t} for t in ["pid", "network", "ipc", "uts", "mount"]]
json.dump(c, open(p, "w"))
PY
